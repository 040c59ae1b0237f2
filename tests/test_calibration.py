"""The calibration conditions of a SynthDerm setting (issue #22): the checks against hand-computed
gaps, then the demo's biased setting meeting them, the way the demo runs."""

from __future__ import annotations

import numpy as np
import pytest

from fairprune.calibration import (
    CHECK_CEILING,
    CHECK_DENSE_GAP,
    CHECK_WIDENS,
    calibrate,
    setting_checks,
)
from fairprune.demo import DEMO_LEVELS, demo_options


def _correct(accuracies, n_per_group, rng=None):
    """(N,) correctness with exactly these per-group accuracies; groups 0..G-1 in blocks."""
    rows = []
    for a in accuracies:
        k = round(a * n_per_group)
        block = np.r_[np.ones(k, bool), np.zeros(n_per_group - k, bool)]
        rows.append(rng.permutation(block) if rng is not None else block)
    return np.concatenate(rows)


def test_the_checks_match_hand_computed_gaps():
    rng = np.random.default_rng(0)
    n = 1000
    groups = np.repeat(np.arange(3), n)
    dense = _correct([0.85, 0.87, 0.75], n, rng)  # gap 12 points
    # three seeds of a pruned model: gaps 20, 18, 22 -> mean 20, widening +8
    pruned = np.stack(
        [
            _correct([0.80, 0.82, 0.62], n, rng),
            _correct([0.81, 0.80, 0.63], n, rng),
            _correct([0.84, 0.82, 0.62], n, rng),
        ]
    )
    check = setting_checks(dense, pruned, groups, n_boot=500)
    assert check.dense_accuracy == pytest.approx([0.85, 0.87, 0.75])
    assert check.pruned_accuracy == pytest.approx([0.8167, 0.8133, 0.6233], abs=1e-4)
    assert check.dense_gap.estimate == pytest.approx(0.12)
    assert check.widening.estimate == pytest.approx(0.20 - 0.12)
    assert check.dense_gap.low <= 0.12 <= check.dense_gap.high
    assert check.checks == {CHECK_DENSE_GAP: True, CHECK_CEILING: True, CHECK_WIDENS: True}
    assert check.passed

    # a fair dense model (gap 1 point), a group at 99%, pruning that narrows the gap: all fail
    fair = _correct([0.99, 0.985, 0.98], n, rng)
    narrower = np.stack([_correct([0.95, 0.95, 0.95], n, rng)] * 2)
    check = setting_checks(fair, narrower, groups, n_boot=500)
    assert check.dense_gap.estimate == pytest.approx(0.01)
    assert check.checks == {CHECK_DENSE_GAP: False, CHECK_CEILING: False, CHECK_WIDENS: False}
    assert not check.passed


def test_the_demo_setting_meets_the_conditions(tmp_path):
    # the demo's own data (the biased preset, 6,000 training and 2,000 test images per skin tone),
    # its 16-epoch dense training and Taylor + CE settings at its top level, seeds 0 and 1: the
    # calibration itself, two seeds of the five. (Half the training split, 3,000 images, does not
    # meet the widening condition: the rare group's few hundred images are too few to be fitted
    # and then lost, so the setting is checked at the demo's size.)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        r = calibrate(
            demo_options(), (0, 1), DEMO_LEVELS[-1], tmp_path / "m", tmp_path / "r.sqlite", 1000
        )
    finally:
        torch.set_num_threads(threads)
    assert r["checks"] == {CHECK_DENSE_GAP: True, CHECK_CEILING: True, CHECK_WIDENS: True}, {
        k: r[k] for k in ("dense_accuracy", "taylor_ce_accuracy", "taylor_ce_minus_dense_gap")
    }
    acc = r["dense_accuracy"]
    assert acc["dark"] == min(acc.values())  # the group rare in training is the one hurt
    assert r["taylor_ce_accuracy"]["dark"] < acc["dark"]  # and pruning costs it more
    # README, seeds 0-1 of the fresh run on the idle 2-core machine: dense gap 13.1, Taylor + CE
    # widening +9.7 [+6.9, +12.8]; another CPU rounds differently, so only the sizes are pinned
    assert r["dense_gap"]["estimate"] >= 5
    assert r["taylor_ce_minus_dense_gap"]["estimate"] >= 3
