"""Paired bootstrap intervals against a plain NumPy reference, and the verdict rule."""

import numpy as np
import pytest

from fairprune.intervals import (
    ERR_SHAPE,
    Interval,
    arm_replicates,
    gap_difference,
    gap_interval,
    group_accuracy,
    interval,
    mde,
    paired_gap_difference,
    paired_group_drops,
    seed_gap,
    verdict,
)


def _reference(a, b, groups, n_boot, seed, paired_seeds=True, ci=0.95):
    """The same resampling written as plain loops: replicate by replicate, seed by seed."""
    rng = np.random.default_rng(seed)
    pos = [np.flatnonzero(groups == g) for g in range(groups.max() + 1)]
    draws = [rng.integers(0, len(p), size=(n_boot, len(p))) for p in pos]
    seed_draws, shared = [], None
    for arm in (a, b):
        s = len(arm)
        if s == 1:
            seed_draws.append(np.zeros((n_boot, 1), dtype=int))
        elif paired_seeds and shared is not None and shared.shape[1] == s:
            seed_draws.append(shared)
        else:
            d = rng.integers(0, s, size=(n_boot, s))
            shared = d if shared is None else shared
            seed_draws.append(d)
    diffs, drops = [], []
    for r in range(n_boot):
        gaps, accs = [], []
        for arm, sd in zip((a, b), seed_draws, strict=True):
            arm_gaps, arm_accs = [], []
            for s in sd[r]:
                acc = [arm[s][p[draws[gi][r]]].mean() for gi, p in enumerate(pos)]
                arm_gaps.append(max(acc) - min(acc))
                arm_accs.append(acc)
            gaps.append(np.mean(arm_gaps))
            accs.append(np.mean(arm_accs, axis=0))
        diffs.append(gaps[1] - gaps[0])
        drops.append(accs[0] - accs[1])
    return np.array(diffs), np.array(drops)


def _basic_ref(reps, est, ci=0.95):
    """The basic bootstrap interval written out: [2θ̂ − q_hi, 2θ̂ − q_lo], holding θ̂."""
    q_lo, q_hi = np.quantile(reps, [(1 - ci) / 2, 1 - (1 - ci) / 2], axis=0)
    return np.minimum(2 * est - q_hi, est), np.maximum(2 * est - q_lo, est)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    groups = np.repeat([0, 1, 2], [40, 30, 50])
    rng.shuffle(groups)
    dense = rng.random(120) < 0.85
    pruned = np.stack([rng.random(120) < np.where(groups == 2, 0.6, 0.8) for _ in range(3)])
    pw = np.stack([rng.random(120) < 0.75 for _ in range(3)])
    return groups, dense, pruned, pw


def test_gap_difference_matches_the_reference_loop(data):
    groups, dense, pruned, _ = data
    iv = paired_gap_difference(dense, pruned, groups, n_boot=300, seed=3)
    acc_d = [dense[groups == g].mean() for g in range(3)]
    gaps_p = [max(r) - min(r) for r in ([p[groups == g].mean() for g in range(3)] for p in pruned)]
    est = np.mean(gaps_p) - (max(acc_d) - min(acc_d))
    assert iv.estimate == pytest.approx(est, abs=1e-12)
    diffs, _ = _reference(dense[None], pruned, groups, 300, 3)
    lo, hi = _basic_ref(diffs, est)
    assert iv.low == pytest.approx(lo, abs=1e-12)
    assert iv.high == pytest.approx(hi, abs=1e-12)
    assert iv.se == pytest.approx(np.std(diffs, ddof=1), abs=1e-12)


def test_paired_seed_arms_share_the_seed_draw(data):
    groups, _, pruned, pw = data
    iv = paired_gap_difference(pruned, pw, groups, n_boot=200, seed=5)
    diffs, _ = _reference(pruned, pw, groups, 200, 5, paired_seeds=True)
    assert (iv.low, iv.high) == pytest.approx(_basic_ref(diffs, iv.estimate), abs=1e-12)
    unpaired = paired_gap_difference(pruned, pw, groups, n_boot=200, seed=5, paired_seeds=False)
    diffs2, _ = _reference(pruned, pw, groups, 200, 5, paired_seeds=False)
    assert unpaired.estimate == iv.estimate
    assert (unpaired.low, unpaired.high) == pytest.approx(
        _basic_ref(diffs2, iv.estimate), abs=1e-12
    )


def test_group_drops_match_the_reference(data):
    groups, dense, pruned, _ = data
    drops = paired_group_drops(dense, pruned, groups, n_boot=250, seed=11)
    est = group_accuracy(dense, groups)[0] - group_accuracy(pruned, groups).mean(0)
    assert [d.estimate for d in drops] == pytest.approx(list(est), abs=1e-12)
    _, reps = _reference(dense[None], pruned, groups, 250, 11)
    lo, hi = _basic_ref(reps, est)
    assert [d.low for d in drops] == pytest.approx(list(lo), abs=1e-12)
    assert [d.high for d in drops] == pytest.approx(list(hi), abs=1e-12)


def test_identical_models_give_a_zero_width_interval(data):
    groups, dense, _, _ = data
    iv = paired_gap_difference(dense, dense, groups, n_boot=100)
    assert (iv.estimate, iv.low, iv.high, iv.se) == (0.0, 0.0, 0.0, 0.0)
    assert mde(iv) == 0.0
    assert verdict(iv) == "no_difference"


def test_same_seed_same_interval_and_shapes_are_checked(data):
    groups, dense, pruned, _ = data
    assert paired_gap_difference(dense, pruned, groups, n_boot=50, seed=1) == paired_gap_difference(
        dense, pruned, groups, n_boot=50, seed=1
    )
    with pytest.raises(ValueError) as err:
        paired_gap_difference(dense[:10], pruned, groups)
    assert str(err.value) == ERR_SHAPE.format(shape=(10,), n=120)


def test_verdict_only_when_the_interval_excludes_zero():
    assert verdict(Interval(0.04, 0.01, 0.07)) == "wider"
    assert verdict(Interval(-0.04, -0.07, -0.01)) == "narrower"
    assert verdict(Interval(0.04, -0.001, 0.08)) == "no_difference"
    assert verdict(Interval(0.0, 0.0, 0.0)) == "no_difference"
    assert Interval(0.012, 0.003, 0.021).as_dict(100) == pytest.approx(
        {"estimate": 1.2, "low": 0.3, "high": 2.1}
    )


def test_a_large_true_widening_is_detected_and_a_null_one_is_not():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 2000)
    dense = rng.random(6000) < 0.9
    hurt = np.stack([rng.random(6000) < np.where(groups == 2, 0.80, 0.9) for _ in range(3)])
    same = np.stack([rng.random(6000) < 0.9 for _ in range(3)])
    assert verdict(paired_gap_difference(dense, hurt, groups, n_boot=400)) == "wider"
    drops = paired_group_drops(dense, hurt, groups, n_boot=400)
    assert [d.low > 0 for d in drops] == [False, False, True]
    assert verdict(paired_gap_difference(dense, same, groups, n_boot=400)) == "no_difference"


def test_the_gap_is_the_mean_of_the_seeds_gaps():
    acc = np.array([[0.90, 0.80, 0.85], [0.70, 0.75, 0.72]])  # two seeds, three groups
    # seed gaps 0.10 and 0.05; NOT the gap of the seed-averaged accuracies (0.80, 0.775, 0.785)
    assert seed_gap(acc) == pytest.approx(0.075, abs=1e-15)
    assert seed_gap(acc[0]) == pytest.approx(0.10, abs=1e-15)


def test_the_basic_interval_reflects_the_bias_and_always_holds_its_estimate():
    # replicates that sit above the estimate (a max − min's upward bias): the percentile interval
    # [1.0, 3.0] would exclude the estimate 0.8; the basic one is [2·0.8 − 3.0, 2·0.8 − 1.0]
    reps = np.linspace(1.0, 3.0, 4001)
    iv = interval(reps, 0.8)
    assert iv.low == pytest.approx(2 * 0.8 - np.quantile(reps, 0.975), abs=1e-12)
    assert iv.high == 0.8  # 2·0.8 − q_lo = 0.55 < 0.8: widened to reach the estimate
    assert iv.se == pytest.approx(np.std(reps, ddof=1), abs=1e-12)
    assert mde(iv) == pytest.approx((1.959964 + 0.841621) * iv.se, rel=1e-5)


def test_every_stated_estimate_lies_inside_its_interval():
    rng = np.random.default_rng(3)
    for trial in range(40):
        n = int(rng.integers(20, 200))
        groups = rng.integers(0, 3, n)
        groups[:3] = [0, 1, 2]
        arms = [rng.random((int(rng.integers(1, 4)), n)) < rng.uniform(0.5, 1.0, 3)[groups]
                for _ in range(3)]  # fmt: skip
        reps = arm_replicates(arms, groups, n_boot=200, seed=trial)
        stated = [gap_interval(a) for a in reps]
        stated += [gap_difference(reps[0], reps[i]) for i in (1, 2)]
        for iv in stated:
            assert iv.low <= iv.estimate <= iv.high, (trial, iv)


def _coverage(true_acc, n_per, sims):
    """Share of simulated test sets whose 95% gap interval holds the true gap: (basic, percentile)."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(len(true_acc)), n_per)
    truth = max(true_acc) - min(true_acc)
    basic = percentile = 0
    for s in range(sims):
        correct = rng.random(len(groups)) < np.asarray(true_acc)[groups]
        (arm,) = arm_replicates([correct], groups, n_boot=400, seed=s)
        iv = gap_interval(arm)
        basic += iv.low <= truth <= iv.high
        reps = arm[1].max(-1).mean(1) - arm[1].min(-1).mean(1)  # each replicate's gap
        lo, hi = np.quantile(reps, [0.025, 0.975])  # the percentile interval used before
        percentile += lo <= truth <= hi
    return basic / sims, percentile / sims


def test_gap_interval_coverage_on_simulated_cases_with_a_known_gap():
    # 2,000 test samples per group, as in the demo. A known gap of 4 points:
    basic, _ = _coverage([0.85, 0.84, 0.81], 2000, 150)
    assert basic >= 0.90  # nominal 95%; 150 simulations: about ±1.8 points of Monte-Carlo error
    # a fair model (true gap 0): the maximum of three noisy accuracies minus their minimum is
    # always above 0, so the percentile interval NEVER holds the truth; the basic one does
    basic, percentile = _coverage([0.85, 0.85, 0.85], 2000, 150)
    assert basic >= 0.83
    assert percentile <= 0.02
