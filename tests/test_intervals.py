"""Paired bootstrap intervals against a plain NumPy reference, and the verdict rule."""

import numpy as np
import pytest

from fairprune.intervals import (
    ERR_SHAPE,
    Interval,
    group_accuracy,
    paired_gap_difference,
    paired_group_drops,
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
    q = [(1 - ci) / 2, 1 - (1 - ci) / 2]
    return np.quantile(diffs, q), np.quantile(np.array(drops), q, axis=0)


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
    (lo, hi), _ = _reference(dense[None], pruned, groups, 300, 3)
    assert iv.low == pytest.approx(lo, abs=1e-12)
    assert iv.high == pytest.approx(hi, abs=1e-12)
    acc_d = [dense[groups == g].mean() for g in range(3)]
    gaps_p = [max(r) - min(r) for r in ([p[groups == g].mean() for g in range(3)] for p in pruned)]
    assert iv.estimate == pytest.approx(np.mean(gaps_p) - (max(acc_d) - min(acc_d)), abs=1e-12)


def test_paired_seed_arms_share_the_seed_draw(data):
    groups, _, pruned, pw = data
    iv = paired_gap_difference(pruned, pw, groups, n_boot=200, seed=5)
    (lo, hi), _ = _reference(pruned, pw, groups, 200, 5, paired_seeds=True)
    assert (iv.low, iv.high) == pytest.approx((lo, hi), abs=1e-12)
    unpaired = paired_gap_difference(pruned, pw, groups, n_boot=200, seed=5, paired_seeds=False)
    (lo2, hi2), _ = _reference(pruned, pw, groups, 200, 5, paired_seeds=False)
    assert (unpaired.low, unpaired.high) == pytest.approx((lo2, hi2), abs=1e-12)


def test_group_drops_match_the_reference(data):
    groups, dense, pruned, _ = data
    drops = paired_group_drops(dense, pruned, groups, n_boot=250, seed=11)
    _, (lo, hi) = _reference(dense[None], pruned, groups, 250, 11)
    assert [d.low for d in drops] == pytest.approx(list(lo), abs=1e-12)
    assert [d.high for d in drops] == pytest.approx(list(hi), abs=1e-12)
    est = group_accuracy(dense, groups)[0] - group_accuracy(pruned, groups).mean(0)
    assert [d.estimate for d in drops] == pytest.approx(list(est), abs=1e-12)


def test_identical_models_give_a_zero_width_interval(data):
    groups, dense, _, _ = data
    iv = paired_gap_difference(dense, dense, groups, n_boot=100)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
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
