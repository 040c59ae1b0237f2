"""views: the numbers pages show, from a hand-built long table and hand-built predictions."""

import numpy as np
import pandas as pd
import pytest

from fairprune.app import views
from fairprune.evaluate import Predictions
from fairprune.metrics import pruning_disparity
from fairprune.sweep.results import LONG_COLUMNS


def make_long(cells) -> pd.DataFrame:
    """cells: (criterion, loss, target, reached, seed, {group: accuracy}, overall accuracy)."""
    rows = []
    for i, (crit, loss, target, reached, seed, accs, overall) in enumerate(cells):
        for group, acc in [*accs.items(), ("overall", overall)]:
            rows.append(
                {
                    "sweep_id": "sw-1", "cell_key": f"c-{i}", "model": f"m{i}",
                    "model_hash": f"{i:064x}", "dataset": "synthderm", "arch": "demo_cnn",
                    "criterion": crit, "loss": loss, "seed": seed, "target_reduction": target,
                    "flops_reduction": reached, "macs": 1000, "params": 100, "group": group,
                    "n": 100, "accuracy": acc, "accuracy_low": acc - 0.05,
                    "accuracy_high": acc + 0.05, "balanced_accuracy": acc, "auroc": acc,
                    "tpr": acc, "fpr": 1 - acc, "selection_rate": 0.5,
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


DENSE = ("dense", "dense", 0.0, 0.0, 0, {"light": 0.90, "medium": 0.89, "dark": 0.87}, 0.89)
CELLS = [
    DENSE,
    ("l1", "ce", 0.5, 0.51, 0, {"light": 0.88, "medium": 0.86, "dark": 0.80}, 0.85),
    ("l1", "pw", 0.5, 0.51, 0, {"light": 0.88, "medium": 0.87, "dark": 0.84}, 0.86),
    ("l1", "ce", 0.9375, 0.94, 0, {"light": 0.85, "medium": 0.80, "dark": 0.68}, 0.78),
    ("l1", "pw", 0.9375, 0.94, 0, {"light": 0.84, "medium": 0.82, "dark": 0.78}, 0.81),
]


def test_gaps_table_gives_the_seeds_spread():
    cells = [
        DENSE,
        ("l1", "ce", 0.9, 0.89, 0, {"light": 0.90, "medium": 0.85, "dark": 0.70}, 0.8),
        ("l1", "ce", 0.9, 0.91, 1, {"light": 0.80, "medium": 0.85, "dark": 0.80}, 0.8),
    ]
    row = (
        views.gaps_table(make_long(cells)).set_index(["loss", "target_reduction"]).loc[("ce", 0.9)]
    )
    # the seeds' own gaps are 0.20 and 0.05: the gap is their mean, 0.125 (the seed-averaged
    # accuracies, light 0.85, medium 0.85, dark 0.75, would give 0.10: not the project's gap)
    assert row["gap"] == pytest.approx(0.125)
    assert (row["gap_seed_min"], row["gap_seed_max"]) == pytest.approx((0.05, 0.20))
    assert row["seeds"] == 2
    assert row["flops_reduction"] == pytest.approx(0.90)


def test_sweep_progress_counts_the_grid_from_the_config():
    import json

    from fairprune.config import SweepConfig, config_to_dict

    cfg = SweepConfig(dense_model="d", criteria=("l1",), losses=("ce", "pw"),
                      reductions=(0.5, 0.9), seeds=(0, 1, 2))  # fmt: skip
    sweeps = pd.DataFrame(
        [{"sweep_id": "s1", "config_json": json.dumps(config_to_dict(cfg)), "cells": 7}]
    )
    assert views.sweep_progress(sweeps, "s1") == (7, 13)  # 12 cells + the dense baseline
    assert views.sweep_progress(sweeps, "other") == (0, 0)


def test_gaps_table_starts_every_line_at_the_dense_model():
    gaps = views.gaps_table(make_long(CELLS)).set_index(["loss", "target_reduction"])
    assert len(gaps) == 6  # (ce, pw) × (dense, 0.5, 0.9375)
    assert gaps.loc[("ce", 0.0), "gap"] == pytest.approx(0.03)
    assert gaps.loc[("pw", 0.0), "gap"] == pytest.approx(0.03)
    assert gaps.loc[("ce", 0.9375), "gap"] == pytest.approx(0.17)
    assert gaps.loc[("ce", 0.9375), "worst_group"] == "dark"
    assert gaps.loc[("pw", 0.5), "overall_accuracy"] == pytest.approx(0.86)
    assert gaps.loc[("pw", 0.9375), "flops_reduction"] == pytest.approx(0.94)


def test_disparity_table_equals_pruning_disparity():
    long = make_long(CELLS)
    disp = views.disparity_table(long)
    assert len(disp) == 4 * 3  # four pruned cells × three groups
    cell = disp[disp["cell_key"] == "c-3"].set_index("group")
    expected = pruning_disparity(
        long[long["cell_key"] == "c-0"][["group", "accuracy"]],
        long[long["cell_key"] == "c-3"][["group", "accuracy"]],
    )
    assert cell.loc["dark", "delta"] == pytest.approx(0.19)
    assert cell.loc["light", "delta"] == pytest.approx(expected["delta"]["light"])
    assert cell["max_psi"].iloc[0] == pytest.approx(0.19 - 0.11)
    assert cell["max_psi_group"].iloc[0] == "dark"


def test_group_order_and_base():
    assert views.group_order(["dark", "overall", "light", "medium"]) == ["light", "medium", "dark"]
    assert views.group_order(["dark (5-6)", "light (1-2)", "medium (3-4)"]) == [
        "light (1-2)", "medium (3-4)", "dark (5-6)",
    ]  # fmt: skip
    assert views.group_order(["dark × benign", "light × malignant", "light × benign"]) == [
        "light × benign", "light × malignant", "dark × benign",
    ]  # fmt: skip
    assert views.group_order(["truck", "cat", "Male", "Female"]) == [
        "Female", "Male", "cat", "truck",
    ]  # fmt: skip
    assert views.group_base("Dark (5-6) × malignant") == "dark"


def _preds(y_true, y_pred, p_true, groups) -> Predictions:
    y_true, y_pred, p_true = np.array(y_true), np.array(y_pred), np.array(p_true, dtype=float)
    probs = np.zeros((len(y_true), 2))
    probs[np.arange(len(y_true)), y_true] = p_true
    probs[np.arange(len(y_true)), 1 - y_true] = 1 - p_true
    return Predictions(np.log(probs), probs, y_pred, y_true, np.array(groups))


def test_forgotten_counts_dense_right_pruned_wrong_per_group():
    y = [0, 1, 0, 1, 0, 1]
    groups = [0, 0, 0, 1, 1, 1]
    dense = _preds(y, [0, 1, 0, 1, 1, 1], [0.9, 0.8, 0.7, 0.9, 0.4, 0.6], groups)
    pruned = _preds(y, [1, 1, 0, 0, 1, 0], [0.3, 0.7, 0.6, 0.2, 0.4, 0.45], groups)
    samples, rates = views.forgotten(dense, pruned, ["light", "dark"])
    assert list(samples["index"]) == [3, 0, 5]  # lowest pruned confidence first
    assert list(samples["group"]) == ["dark", "light", "dark"]
    assert samples["dense_confidence"].tolist() == pytest.approx([0.9, 0.9, 0.6])
    assert rates["forgotten"].tolist() == [1, 2]
    assert rates["rate"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert rates["of_dense_correct"].tolist() == pytest.approx([1 / 3, 1.0])


def test_forgotten_refuses_predictions_on_different_splits():
    a = _preds([0, 1], [0, 1], [0.9, 0.9], [0, 0])
    b = _preds([1, 1], [0, 1], [0.9, 0.9], [0, 0])
    with pytest.raises(ValueError, match="^the two predictions are not on the same split$"):
        views.forgotten(a, b, ["light"])


def test_cells_overview_renames_and_sorts():
    cells = pd.DataFrame(
        {"model": ["b", "a"], "criterion": ["l1", "l1"], "loss": ["pw", "ce"], "seed": [0, 0],
         "target_reduction": [0.5, 0.5], "flops_reduction": [0.51, 0.5], "accuracy": [0.8, 0.7],
         "gap": [0.1, 0.2], "config_json": ["{}", "{}"]}
    )  # fmt: skip
    out = views.cells_overview(cells)
    assert list(out["model"]) == ["a", "b"]
    assert "config_json" not in out.columns
    assert out["target FLOPs red."].tolist() == [0.5, 0.5]


def test_order_rows_puts_groups_light_to_dark_and_overall_last():
    table = pd.DataFrame({"group": ["dark", "light", "overall", "medium"], "n": [1, 2, 6, 3]})
    out = views.order_rows(table)
    assert list(out["group"]) == ["light", "medium", "dark", "overall"]
    assert list(out["n"]) == [2, 3, 1, 6]


DECISIONS = pd.DataFrame(
    {"id": [1, 2, 3, 4], "created": ["2026-03-04T05:06:07Z", "2026-03-04T05:10:00Z",
                                     "2026-03-04T05:20:00Z", "2026-03-04T05:30:00Z"],
     "kind": ["sweep", "model", "model", "sweep"], "subject": ["sw-1", f"{3:064x}", f"{3:064x}", "sw-1"],
     "decision": ["needs work", "reject", "accept", "accept"], "reviewer": ["Ana", "Bo", "Bo", "Ana"],
     "comment": ["one more seed", "", "after PW", "ok"]}
)  # fmt: skip


def test_decisions_are_named_after_their_sweep_or_model():
    long = make_long(CELLS)
    cells = long.drop_duplicates("cell_key")[["model", "model_hash"]]
    sweeps = pd.DataFrame({"sweep_id": ["sw-1"], "name": ["demo"]})
    shown = views.decisions_display(DECISIONS, cells, sweeps)
    assert list(shown["about"]) == ["sweep · demo", "model · m3", "model · m3", "sweep · demo"]
    assert shown.loc[0, "time (UTC)"] == "2026-03-04 05:06:07"
    unknown = views.decisions_display(DECISIONS.iloc[1:2], cells.iloc[:0], None)
    assert unknown.loc[0, "about"] == "model · 000000000000"  # a hash prefix when not a cell
    assert views.decisions_display(DECISIONS.iloc[:0], cells).empty
    assert views.sweep_label(sweeps, "sw-1") == "sweep demo (sw-1)"
    assert views.sweep_label(sweeps, "sw-2") == "sweep sw-2"


def test_the_csv_carries_the_latest_decision_on_each_rows_sweep_and_model():
    long = make_long(CELLS)
    out = views.with_decisions(long, DECISIONS)
    assert list(out.columns) == [*long.columns, *views.DECISION_CSV_COLUMNS]
    assert len(out) == len(long)
    assert set(out["sweep_decision"]) == {"accept"}  # the later of the two sweep decisions
    assert set(out["sweep_decision_comment"]) == {"ok"}
    m3 = out[out["model"] == "m3"]
    assert set(m3["model_decision"]) == {"accept"} and set(m3["model_decided_by"]) == {"Bo"}
    assert set(m3["model_decided_at"]) == {"2026-03-04T05:20:00Z"}
    assert set(out[out["model"] != "m3"]["model_decision"]) == {""}
    none = views.with_decisions(long, DECISIONS.iloc[:0])
    assert (none[views.DECISION_CSV_COLUMNS] == "").all().all()
