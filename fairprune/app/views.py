"""What the dashboard pages show, computed from the results store without Streamlit.

Every function takes the tidy long table (``ResultsStore.export_long``) or predictions and returns
plain DataFrames or text, so the numbers on screen are tested directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairprune.metrics import pruning_disparity

LOSS_LABELS = {
    "ce": "cross-entropy",
    "pw": "PW loss",
    "pw_weights": "PW weights only",
    "pw_soft": "PW soft targets only",
    "dense": "dense",
    "none": "no fine-tuning",
}
_KNOWN_ORDER = ["light", "medium", "dark", "female", "male"]
INTERSECT_SEP = " × "  # as written by fairprune.metrics.intersect


def group_base(name: str) -> str:
    """The attribute a group name starts with, lower-case: "dark × malignant" → "dark",
    "light (1-2)" → "light" (Fitzpatrick17k), "Male" → "male"."""
    head = str(name).split(INTERSECT_SEP)[0].strip().lower()
    return head.split(" ")[0] if head else head


def group_order(groups) -> list[str]:
    """Groups in a stable, meaningful order (skin tones light→dark, then alphabetical).

    Intersectional groups ("dark × benign") follow their first attribute; "overall" is dropped.
    """
    groups = list(dict.fromkeys(g for g in groups if g != "overall"))

    def key(g: str) -> tuple[int, str]:
        base = group_base(g)
        return (_KNOWN_ORDER.index(base) if base in _KNOWN_ORDER else len(_KNOWN_ORDER), str(g))

    return sorted(groups, key=key)


def order_rows(table: pd.DataFrame) -> pd.DataFrame:
    """A per-group table (``group_metrics``/``audit``) in :func:`group_order`, "overall" last."""
    order = group_order(table["group"]) + [g for g in table["group"] if g == "overall"]
    return table.set_index("group").loc[order].reset_index()


def _group_means(d: pd.DataFrame) -> pd.Series:
    """Mean accuracy per group (over seeds), the "overall" row excluded."""
    return d[d["group"] != "overall"].groupby("group")["accuracy"].mean()


def with_dense_baseline(long: pd.DataFrame) -> pd.DataFrame:
    """Copy each sweep's dense rows into every (criterion, loss) line at FLOPs reduction 0.

    Charts then start every line at the dense model, as the paper's figures do.
    """
    if long.empty:
        return long
    dense = long[long["criterion"] == "dense"]
    pruned = long[long["criterion"] != "dense"]
    if pruned.empty:
        return long
    parts = [pruned]
    for (sweep, crit, loss), _ in pruned.groupby(["sweep_id", "criterion", "loss"]):
        d = dense[dense["sweep_id"] == sweep].copy()
        d["criterion"], d["loss"] = crit, loss
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def gaps_table(long: pd.DataFrame) -> pd.DataFrame:
    """Per (criterion, loss, target level), seeds averaged: overall accuracy, the gap (max − min
    group accuracy), best and worst group. Dense rows start every line at level 0."""
    rows = []
    data = with_dense_baseline(long)
    # one point per target level: seeds reach slightly different FLOPs, so x is their mean
    for (crit, loss, target), d in data.groupby(["criterion", "loss", "target_reduction"]):
        groups = _group_means(d)
        overall = d[d["group"] == "overall"]["accuracy"].mean()
        if groups.empty:
            continue
        rows.append(
            {
                "criterion": crit,
                "loss": loss,
                "flops_reduction": float(d["flops_reduction"].mean()),
                "target_reduction": target,
                "overall_accuracy": overall,
                "gap": groups.max() - groups.min(),
                "worst_group": groups.idxmin(),
                "best_group": groups.idxmax(),
                "worst_accuracy": groups.min(),
            }
        )
    return pd.DataFrame(rows)


def disparity_table(long: pd.DataFrame) -> pd.DataFrame:
    """Per pruned cell and group: Δg vs its sweep's dense model, std of Δg and max ψ."""
    if long.empty:
        return pd.DataFrame()
    rows = []
    dense_by_sweep = {
        s: d[["group", "accuracy"]]
        for s, d in long[long["criterion"] == "dense"].groupby("sweep_id")
    }
    for key, d in long[long["criterion"] != "dense"].groupby("cell_key"):
        dense = dense_by_sweep.get(d["sweep_id"].iloc[0])
        if dense is None:
            continue
        disp = pruning_disparity(dense, d[["group", "accuracy"]])
        first = d.iloc[0]
        for g, delta in disp["delta"].items():
            rows.append(
                {
                    "cell_key": key,
                    "criterion": first["criterion"],
                    "loss": first["loss"],
                    "seed": first["seed"],
                    "target_reduction": first["target_reduction"],
                    "flops_reduction": first["flops_reduction"],
                    "group": g,
                    "delta": delta,
                    "delta_overall": disp["delta_overall"],
                    "std_delta": disp["std_delta"],
                    "max_psi": disp["max_psi"],
                    "max_psi_group": disp["max_psi_group"],
                }
            )
    return pd.DataFrame(rows)


def headline_facts(long: pd.DataFrame) -> dict | None:
    """The numbers behind :func:`headline`, or None when there is nothing to compare.

    The level is the pruned (criterion, target level) where cross-entropy fine-tuning leaves the
    widest gap (max − min group accuracy, seeds averaged); without cross-entropy cells, the first
    loss present stands in. The gap is then followed for that model's best and worst groups
    through the dense model and the PW loss at the same criterion and level, so the three numbers
    compare the same pair of groups.

    Returns
    -------
    dict or None
        ``criterion``, ``target_reduction``, ``flops_reduction`` (mean reached), ``loss`` (the
        loss the level was chosen on, "ce" when present), ``best``, ``worst`` (groups),
        ``dense_gap``, ``gap`` (that loss), ``pw_gap`` (None without PW cells), as fractions;
        ``n_criteria`` (criteria in the table).
    """
    if long.empty:
        return None
    dense = long[long["criterion"] == "dense"]
    pruned = long[long["criterion"] != "dense"]
    if pruned.empty or dense.empty or len(_group_means(dense)) < 2:
        return None
    loss = "ce" if (pruned["loss"] == "ce").any() else sorted(pruned["loss"].unique())[0]
    worst_cell, worst_gap = None, -np.inf
    for (crit, level), d in pruned[pruned["loss"] == loss].groupby(
        ["criterion", "target_reduction"]
    ):
        acc = _group_means(d)
        if len(acc) >= 2 and acc.max() - acc.min() > worst_gap:
            worst_cell, worst_gap = (crit, level), float(acc.max() - acc.min())
    if worst_cell is None:
        return None
    crit, level = worst_cell
    at = pruned[(pruned["criterion"] == crit) & (pruned["target_reduction"] == level)]
    acc = _group_means(at[at["loss"] == loss])
    best, worst = str(acc.idxmax()), str(acc.idxmin())
    dense_acc = _group_means(dense)

    def pair_gap(values: pd.Series) -> float | None:
        if best not in values or worst not in values:
            return None
        return float(values[best] - values[worst])

    pw = at[at["loss"] == "pw"]
    return {
        "criterion": crit,
        "target_reduction": float(level),
        "flops_reduction": float(at.loc[at["loss"] == loss, "flops_reduction"].mean()),
        "loss": loss,
        "best": best,
        "worst": worst,
        "dense_gap": pair_gap(dense_acc),
        "gap": worst_gap,
        "pw_gap": None if pw.empty or loss == "pw" else pair_gap(_group_means(pw)),
        "n_criteria": int(pruned["criterion"].nunique()),
    }


def _pp(value: float) -> str:
    return f"{value * 100:.1f}"


def headline(long: pd.DataFrame) -> str:
    """One sentence answering "who does pruning hurt, and does the PW loss help?".

    Measured on the store (see :func:`headline_facts`) and worded by what the numbers show, e.g.
    "At 94% FLOPs reduction, cross-entropy fine-tuning widens the light–dark accuracy gap from
    3.0 to 17.0 points; the PW loss keeps it at 6.0."
    """
    if long.empty or (long["criterion"] != "dense").sum() == 0:
        return "No pruned models in the results store yet: run the demo or a sweep."
    facts = headline_facts(long)
    if facts is None:
        return "The results have a single group or no dense baseline: there is no gap to compare."
    f = facts
    where = f"At {f['flops_reduction']:.0%} FLOPs reduction"
    if f["n_criteria"] > 1:
        where += f" ({f['criterion']} pruning)"
    name = LOSS_LABELS.get(f["loss"], f["loss"])
    pair = f"{f['best']}–{f['worst']}"
    dense_gap, gap = f["dense_gap"], f["gap"]
    if gap > dense_gap + 0.005:
        text = f"{where}, {name} fine-tuning widens the {pair} accuracy gap from "
        text += f"{_pp(dense_gap)} to {_pp(gap)} points"
    elif gap < dense_gap - 0.005:
        text = f"{where}, {name} fine-tuning narrows the {pair} accuracy gap from "
        text += f"{_pp(dense_gap)} to {_pp(gap)} points"
    else:
        text = f"{where}, {name} fine-tuning keeps the {pair} accuracy gap at {_pp(gap)} points"
    pw = f["pw_gap"]
    if pw is None:
        return text + "."
    if pw < gap - 0.005:
        return text + f"; the PW loss keeps it at {_pp(pw)}."
    if pw > gap + 0.005:
        return text + f"; with the PW loss it is {_pp(pw)}, wider than with {name}."
    return text + f"; the PW loss gives about the same ({_pp(pw)})."


def forgotten(
    dense_preds, pruned_preds, group_names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples the dense model gets right and the pruned model gets wrong.

    Returns
    -------
    (samples, rates)
        ``samples``: one row per forgotten sample (index, group, label, both models' confidence
        in the true class), hardest-hit first; ``rates``: per group, n, forgotten count and rate
        (share of the group's samples), and the share of what the dense model got right.
    """
    if len(dense_preds.y_true) != len(pruned_preds.y_true) or not np.array_equal(
        dense_preds.y_true, pruned_preds.y_true
    ):
        raise ValueError("the two predictions are not on the same split")
    mask = dense_preds.correct & ~pruned_preds.correct
    idx = np.flatnonzero(mask)
    names = np.asarray(group_names, dtype=object)
    samples = pd.DataFrame(
        {
            "index": idx,
            "group": names[dense_preds.groups[idx]],
            "label": dense_preds.y_true[idx],
            "dense_confidence": dense_preds.confidence_true[idx],
            "pruned_confidence": pruned_preds.confidence_true[idx],
        }
    ).sort_values("pruned_confidence")
    rows = []
    for gi, g in enumerate(group_names):
        in_g = dense_preds.groups == gi
        right = dense_preds.correct & in_g
        rows.append(
            {
                "group": g,
                "n": int(in_g.sum()),
                "forgotten": int((mask & in_g).sum()),
                "rate": float((mask & in_g).sum() / max(in_g.sum(), 1)),
                "of_dense_correct": float((mask & in_g).sum() / max(right.sum(), 1)),
            }
        )
    return samples.reset_index(drop=True), pd.DataFrame(rows)


def cells_overview(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells table trimmed and renamed for display."""
    if cells.empty:
        return cells
    cols = {
        "model": "model",
        "criterion": "criterion",
        "loss": "loss",
        "seed": "seed",
        "target_reduction": "target FLOPs red.",
        "flops_reduction": "FLOPs red. reached",
        "accuracy": "accuracy",
        "gap": "gap",
        "std_delta": "std Δg",
        "max_psi": "max ψ",
        "macs": "MACs",
        "params": "params",
        "latency_ms": "latency ms/img",
    }
    out = cells[[c for c in cols if c in cells.columns]].rename(columns=cols)
    return out.sort_values(["criterion", "loss", "target FLOPs red."]).reset_index(drop=True)
