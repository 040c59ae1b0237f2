"""What the dashboard pages show, computed from the results store without Streamlit.

Every function takes the tidy long table (``ResultsStore.export_long``) or predictions and returns
plain DataFrames or text, so the numbers on screen are tested directly.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fairprune import intervals
from fairprune.config import SweepConfig, config_from_dict
from fairprune.metrics import pruning_disparity
from fairprune.sweep.grid import iter_cells
from fairprune.sweep.pairing import method_label

LOSS_LABELS = {
    "ce": "cross-entropy",
    "pw": "PW loss",
    "pw_weights": "PW weights only",
    "pw_soft": "PW soft targets only",
    "constrained": "constrained (Balancing Act)",
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
    """Per (criterion, loss, target level), seeds averaged: overall accuracy, the gap (the mean of
    the seeds' own max − min group accuracy, :func:`fairprune.intervals.seed_gap` — the one gap of
    every page), the range of the seeds' own gaps, best and worst group (of the seed-averaged
    accuracies). Dense rows start every line at level 0."""
    rows = []
    data = with_dense_baseline(long)
    # one point per target level: seeds reach slightly different FLOPs, so x is their mean
    for (crit, loss, target), d in data.groupby(["criterion", "loss", "target_reduction"]):
        groups = _group_means(d)
        overall = d[d["group"] == "overall"]["accuracy"].mean()
        if groups.empty:
            continue
        # each seed's own gap (max − min over its groups): their mean is the gap, their range
        # the whiskers
        acc = d[d["group"] != "overall"].pivot_table(
            index="cell_key", columns="group", values="accuracy", aggfunc="mean"
        )
        seed_gaps = pd.Series(intervals.seed_gaps(acc.to_numpy()), index=acc.index)
        rows.append(
            {
                "criterion": crit,
                "loss": loss,
                "flops_reduction": float(d["flops_reduction"].mean()),
                "target_reduction": target,
                "overall_accuracy": overall,
                "gap": intervals.seed_gap(acc.to_numpy()),
                "gap_seed_min": float(seed_gaps.min()),
                "gap_seed_max": float(seed_gaps.max()),
                "seeds": int(d["seed"].nunique()) if "seed" in d else 1,
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


VERDICT_WORDS = {
    "wider": "wider",
    "narrower": "narrower",
    "no_difference": "cannot tell",
    None: "—",
}


def _ci_text(est, low, high, signed: bool = True) -> str:
    if est is None or pd.isna(est):
        return "—"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(est)} [{f.format(low)}, {f.format(high)}]"


def findings_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The findings table (``fairprune.sweep.findings.findings_frame``) worded for a page.

    Gaps are the mean over seeds of max − min group accuracy, in points; the differences carry
    their paired 95% bootstrap interval in brackets and the smallest difference the run could have
    detected (mde, 80% power); the verdict says "cannot tell" unless the interval excludes 0.
    Columns name the two methods compared (e.g. "gap taylor + ce").
    """
    if frame.empty:
        return frame
    first = frame.iloc[0]
    base = method_name(first["baseline"])
    meth = method_name(first["method"]) if first["method"] else "method"
    axis = str(first["axis"])

    def ci(name: str, signed: bool = True) -> list[str]:
        return [
            _ci_text(e, lo, hi, signed)
            for e, lo, hi in zip(
                frame[name], frame[f"{name}_low"], frame[f"{name}_high"], strict=True
            )
        ]

    def num(name: str) -> pd.Series:
        return pd.to_numeric(frame[name], errors="coerce").round(1)

    return pd.DataFrame(
        {
            f"{axis} (%)": (frame["reached"] * 100).round(1),
            "seeds": frame["seeds"],
            "gap dense [95% CI]": ci("gap_dense", signed=False),
            f"gap {base}": num("gap_baseline"),
            f"{base} − dense [95% CI]": ci("baseline_vs_dense"),
            f"{base} vs dense": frame["verdict_baseline"].map(lambda v: VERDICT_WORDS.get(v, v)),
            f"gap {meth}": num("gap_method"),
            f"{meth} − {base} [95% CI]": ci("method_vs_baseline"),
            f"{meth} vs {base}": frame["verdict_method"].map(lambda v: VERDICT_WORDS.get(v, v)),
            "detectable (mde, points)": num("mde_method_vs_baseline"),
            f"significantly hurt by {base}": frame["hurt_by_baseline"],
        }
    )


def method_name(key: str) -> str:
    """``taylor:ce`` → ``taylor + ce`` (the label every page uses)."""
    crit, _, loss = str(key).partition(":")
    return method_label(crit, loss)


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


def sweep_progress(sweeps: pd.DataFrame, sweep_id: str | None) -> tuple[int, int]:
    """(cells stored, cells in the grid + the dense baseline) of a sweep, from its config."""
    row = sweeps[sweeps["sweep_id"] == sweep_id]
    if row.empty:
        return 0, 0
    config = config_from_dict(SweepConfig, json.loads(row["config_json"].iloc[0]))
    return int(row["cells"].iloc[0]), len(list(iter_cells(config))) + 1


def paired_comparison(preds_a, preds_b, group_names: list[str], *, n_boot: int = 2000):
    """Model B against model A on the same split: per-group accuracy change and gap change,
    each with the paired 95% bootstrap interval (one test resample for both models).

    Returns
    -------
    (table, gap_interval, verdict)
        ``table``: group, n, A and B accuracy (%), "B − A [95% CI]" (points) and whether B is
        significantly lower/higher; ``gap_interval``: gap(B) − gap(A) (fractions).
    """
    from fairprune.intervals import arm_replicates, gap_difference, group_drops, verdict

    if not np.array_equal(preds_a.y_true, preds_b.y_true) or not np.array_equal(
        preds_a.groups, preds_b.groups
    ):
        raise ValueError("the two predictions are not on the same split")
    groups = np.asarray(preds_a.groups)
    present = np.unique(groups)
    codes = np.searchsorted(present, groups)  # dense codes 0..G-1 of the groups present
    # one resampling for both: the per-group changes and the gap change share the replicates
    arm_a, arm_b = arm_replicates([preds_a.correct, preds_b.correct], codes, n_boot=n_boot)
    drops = group_drops(arm_a, arm_b)
    rows = []
    for i, g in enumerate(present):
        in_g = groups == g
        d = drops[i]
        rows.append(
            {
                "group": group_names[int(g)],
                "n": int(in_g.sum()),
                "A accuracy (%)": float(preds_a.correct[in_g].mean() * 100),
                "B accuracy (%)": float(preds_b.correct[in_g].mean() * 100),
                "B − A [95% CI]": _ci_text(-d.estimate * 100, -d.high * 100, -d.low * 100),
                "B vs A": "lower" if d.low > 0 else "higher" if d.high < 0 else "cannot tell",
            }
        )
    gap = None
    if len(present) >= 2:
        gap = gap_difference(arm_a, arm_b)
    return pd.DataFrame(rows), gap, (verdict(gap) if gap is not None else None)


def _subject_names(cells: pd.DataFrame, sweeps: pd.DataFrame | None) -> dict:
    names = {}
    if sweeps is not None and not sweeps.empty:
        for row in sweeps.itertuples():
            names[("sweep", row.sweep_id)] = f"sweep · {row.name or row.sweep_id}"
    if cells is not None and not cells.empty:
        for row in cells.itertuples():
            names[("model", row.model_hash)] = f"model · {row.model}"
    return names


def decisions_display(
    decisions: pd.DataFrame, cells: pd.DataFrame, sweeps: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Review decisions worded for a page or the report, oldest first: time (UTC), what they are
    about (the sweep's or model's name, else its id/hash), decision, reviewer, the reviewer's
    email (decisions signed in), comment, subject."""
    if decisions.empty:
        return pd.DataFrame(columns=["time (UTC)", "about", "decision", "reviewer", "email",
                                     "comment", "subject"])  # fmt: skip
    decisions = decisions.reset_index(drop=True)
    names = _subject_names(cells, sweeps)
    about = [
        names.get((k, s), f"{k} · {s[:12] if k == 'model' else s}")
        for k, s in zip(decisions["kind"], decisions["subject"], strict=True)
    ]
    return pd.DataFrame(
        {
            "time (UTC)": decisions["created"].str.replace("T", " ").str.rstrip("Z"),
            "about": about,
            "decision": decisions["decision"],
            "reviewer": decisions["reviewer"],
            "email": _column(decisions, "reviewer_email"),
            "comment": decisions["comment"],
            "subject": decisions["subject"],
        }
    )


DECISION_CSV_COLUMNS = [
    "sweep_decision", "sweep_decided_by", "sweep_decided_by_email", "sweep_decided_at",
    "sweep_decision_comment",
    "model_decision", "model_decided_by", "model_decided_by_email", "model_decided_at",
    "model_decision_comment",
]  # fmt: skip


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, or empty strings for a table from before the column existed."""
    if name in frame.columns:
        return frame[name].fillna("").astype(str)
    return pd.Series([""] * len(frame), index=frame.index, dtype=object)


def with_decisions(long: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The long table with the latest review decision on each row's sweep and on its model
    (``DECISION_CSV_COLUMNS``, empty where none): what the CSV download carries. The whole
    history stays in the store (``python -m fairprune decisions``)."""
    out = long.copy()
    decisions = decisions.assign(reviewer_email=_column(decisions, "reviewer_email"))
    latest = decisions.sort_values("id").groupby(["kind", "subject"]).tail(1)
    for kind, col in (("sweep", "sweep_id"), ("model", "model_hash")):
        last = latest[latest["kind"] == kind].set_index("subject")
        for field, name in (("decision", "decision"), ("reviewer", "decided_by"),
                            ("reviewer_email", "decided_by_email"), ("created", "decided_at"),
                            ("comment", "decision_comment")):  # fmt: skip
            out[f"{kind}_{name}"] = out[col].map(last[field]).fillna("") if len(out) else ""
    return out


ACTION_DISPLAY_COLUMNS = ["time (UTC)", "action", "subject", "by", "email", "detail"]


def actions_display(actions: pd.DataFrame) -> pd.DataFrame:
    """Operator actions (``ResultsStore.actions``) worded for a page or the report, newest
    first: time (UTC), action, subject, by (the actor), email, detail."""
    if actions.empty:
        return pd.DataFrame(columns=ACTION_DISPLAY_COLUMNS)
    actions = actions.sort_values("id", ascending=False).reset_index(drop=True)
    return pd.DataFrame(
        {
            "time (UTC)": actions["created"].astype(str).str.replace("T", " ").str.rstrip("Z"),
            "action": actions["action"],
            "subject": actions["subject"],
            "by": actions["actor"],
            "email": _column(actions, "actor_email"),
            "detail": _column(actions, "detail"),
        }
    )


def sweep_label(sweeps: pd.DataFrame, sweep_id: str) -> str:
    """ "sweep SynthDerm demo (sw-…)": how a sweep is named in a decision form."""
    row = sweeps[sweeps["sweep_id"] == sweep_id]
    name = str(row["name"].iloc[0]) if not row.empty and row["name"].iloc[0] else ""
    return f"sweep {name} ({sweep_id})" if name else f"sweep {sweep_id}"
