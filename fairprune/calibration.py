"""Is a setting biased the way the paper's are? The conditions a SynthDerm preset is calibrated on.

Issue #22 asks only about the *setting*, never about the method under test: the dense model's gap
(max − min group accuracy) is at least 5 points with its 95% interval above 0, no group is above
98% (a ceiling would hide any widening), and pruning with the baseline (Taylor + CE) widens the gap
with its paired 95% interval above 0. The PW arm never enters, so nothing is tuned toward it.

``calibrate`` runs the check the way the demo runs (its dense training, Taylor + CE with its
settings, stored predictions) and ``setting_checks`` judges it: the same path for
``scripts/calibrate_synthderm.py`` (the demo's own figures) and the tests (a small SynthDerm).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fairprune.intervals import (
    Interval,
    arm_replicates,
    gap_difference,
    gap_interval,
    group_accuracy,
    seed_gaps,
)

MIN_DENSE_GAP = 0.05  # the dense model's gap, accuracy units
MAX_GROUP_ACCURACY = 0.98  # no dense group above this

CHECK_DENSE_GAP = "dense gap >= 5 points, interval above 0"
CHECK_CEILING = "no dense group above 98%"
CHECK_WIDENS = "Taylor + CE widens the gap (interval above 0)"


@dataclass(frozen=True)
class SettingCheck:
    """The figures of one calibration check (accuracy units) and its three verdicts."""

    dense_accuracy: np.ndarray  # (G,)
    pruned_accuracy: np.ndarray  # (G,) mean over the baseline's seeds
    dense_gap: Interval
    widening: Interval  # baseline gap − dense gap, paired

    @property
    def checks(self) -> dict[str, bool]:
        """Each condition by name: True where the setting meets it."""
        return {
            CHECK_DENSE_GAP: bool(
                self.dense_gap.estimate >= MIN_DENSE_GAP and self.dense_gap.low > 0
            ),
            CHECK_CEILING: bool(self.dense_accuracy.max() <= MAX_GROUP_ACCURACY),
            CHECK_WIDENS: bool(self.widening.low > 0),
        }

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


def setting_checks(dense, pruned, groups, *, n_boot: int = 2000, seed: int = 0) -> SettingCheck:
    """Check a setting from stored predictions.

    Parameters
    ----------
    dense : array-like of bool, shape (N,)
        Whether the dense model got each test sample right.
    pruned : array-like of bool, shape (S, N)
        The same for the baseline's pruned models, one row per pruning / fine-tuning seed.
    groups : array-like of int, shape (N,)
        Group code of each test sample.
    n_boot, seed : int
        Bootstrap replicates (test samples resampled within group, seeds resampled) and their seed.

    Returns
    -------
    SettingCheck
    """
    dense = np.asarray(dense, dtype=bool)[None, :]
    pruned = np.atleast_2d(np.asarray(pruned, dtype=bool))
    arm_d, arm_p = arm_replicates([dense, pruned], groups, n_boot=n_boot, seed=seed)
    return SettingCheck(
        dense_accuracy=arm_d[0][0],
        pruned_accuracy=arm_p[0].mean(axis=0),
        dense_gap=gap_interval(arm_d),
        widening=gap_difference(arm_d, arm_p),
    )


def calibrate(options: dict, seeds, level: float, models_dir, results, n_boot: int = 2000) -> dict:
    """Train (or find) the demo's dense model on SynthDerm ``options``, run Taylor + CE at
    ``level`` for ``seeds`` with the demo's settings, and check the setting.

    Returns the figures (accuracies and gaps in points), the three verdicts under ``"checks"``
    (a plain JSON-ready dict).
    """
    from dataclasses import replace

    from fairprune.demo import demo_sweep_config, ensure_demo_model
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep

    t0 = time.perf_counter()
    record = ensure_demo_model(models_dir, options=options)
    trained_s = time.perf_counter() - t0
    config = replace(
        demo_sweep_config(record.path, seeds=tuple(seeds), options=options),
        criteria=("taylor",),
        losses=("ce",),
        reductions=(level,),
        name="SynthDerm calibration",
    )
    store = ResultsStore(results)
    sweep_id = run_sweep(config, store=store, models_dir=models_dir)
    cells = store.cells(sweep_id)
    dense_key = cells.loc[cells["criterion"] == "dense", "cell_key"].iloc[0]
    pruned = cells[cells["criterion"] == "taylor"].sort_values("seed")
    preds = store.predictions([dense_key, *pruned["cell_key"]])
    groups = preds[dense_key].groups
    names = list(preds[dense_key].group_names)
    dense = preds[dense_key].correct  # (N,)
    taylor = np.stack([preds[k].correct for k in pruned["cell_key"]])  # (S, N)
    check = setting_checks(dense, taylor, groups, n_boot=n_boot)
    dense_acc, pruned_acc = check.dense_accuracy, check.pruned_accuracy
    dense_gap, widen = check.dense_gap, check.widening
    checks = check.checks
    return {
        "options": options,
        "dense_model": record.path,
        "dense_trained_or_found_s": round(trained_s, 1),
        "level": level,
        "seeds": list(seeds),
        "dense_accuracy": {n: round(100 * a, 1) for n, a in zip(names, dense_acc, strict=True)},
        "dense_gap": dense_gap.as_dict(100),
        "taylor_ce_accuracy": {
            n: round(100 * a, 1) for n, a in zip(names, pruned_acc, strict=True)
        },
        "taylor_ce_gaps": [
            round(100 * float(g), 1) for g in seed_gaps(group_accuracy(taylor, groups))
        ],
        "taylor_ce_minus_dense_gap": widen.as_dict(100),
        "flops_reduction": [round(float(r), 4) for r in pruned["flops_reduction"]],
        "checks": checks,
        "seconds": round(time.perf_counter() - t0, 1),
    }
