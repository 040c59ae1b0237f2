"""Pruning methods side by side: one table per sweep, every number with its paired interval.

A *method* is a (pruning criterion, fine-tuning loss) pair of a sweep, e.g. ``fairgrape + ce``
or ``unstructured + constrained``. At each level (weight sparsity for unstructured criteria,
FLOPs reduction for structured ones) every method's seeds are measured on the SAME bootstrap
replicates as the dense model and every other method (:func:`fairprune.intervals.arm_replicates`,
the one resampling of the project), so:

- each method's overall accuracy, per-group accuracy, gap (max − min group accuracy) and max ψ_g
  (ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse), Hashemizadeh et al. 2024) has a 95%
  basic bootstrap interval over test resamples and seeds (:mod:`fairprune.intervals`);
- the two comparisons of the fair protocol are paired differences: the *fine-tuning objective*
  (a loss against CE, same criterion, same pruned models) and the *pruning criterion* (a criterion
  against the reference criterion — ``unstructured`` magnitude pruning when the sweep has it —
  with the same loss). "Wider"/"narrower" only when the interval excludes zero.
- a method is on the Pareto front at its level when no other method there has both a higher or
  equal accuracy and a smaller or equal gap (one of them strictly), on the point estimates.

Everything is read from the per-sample predictions in the results store: no model is re-run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairprune.errors import FairpruneError
from fairprune.intervals import DEFAULT_N_BOOT, arm_replicates, interval, seed_gaps, verdict
from fairprune.prune.registry import is_unstructured
from fairprune.sweep.findings import ERR_NO_PRUNED, correct_matrix, sweep_cells, sweep_config_json
from fairprune.sweep.pairing import configured_criteria, method_label

ERR_NO_METHODS = (
    "sweep {sweep} has no pruned cells with a dense baseline yet: run it first, e.g. "
    "`python -m fairprune sweep --dense MODEL --criteria unstructured fairgrape fairprune "
    "--losses ce pw constrained --levels 0.5 0.9 --seeds 0 1 2`."
)
ERR_NO_REFERENCE = "sweep {sweep} has no criterion {criterion!r}; it has: {have}."
REFERENCE_CRITERION = "unstructured"
BASE_LOSS = "ce"
STATS = ("accuracy", "gap", "max_psi")


def _overall(acc: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Overall accuracy from group accuracies (the stratified resample keeps group sizes)."""
    return acc @ weights


def _max_psi(acc: np.ndarray, dense: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """max_g ψ_g of every seed's model; ``dense`` broadcasts against ``acc`` (…, G)."""
    delta_g = dense - acc
    delta = _overall(dense, weights) - _overall(acc, weights)
    return (delta_g - delta[..., None]).max(axis=-1)


def _stats(acc: np.ndarray, dense: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Seed-averaged statistics of group accuracies ``acc`` (…, S, G); ``dense`` (…, 1, G)."""
    return {
        "accuracy": _overall(acc, weights).mean(axis=-1),
        "gap": seed_gaps(acc).mean(axis=-1),  # the mean of the seeds' gaps, as everywhere
        "max_psi": _max_psi(acc, dense, weights).mean(axis=-1),
        "groups": acc.mean(axis=-2),
    }


def _pareto(points: list[tuple[float, float]]) -> list[bool]:
    """On the front: no other point has accuracy ≥ and gap ≤, one of them strictly."""
    out = []
    for i, (acc, gap) in enumerate(points):
        dominated = any(
            a >= acc and g <= gap and (a > acc or g < gap)
            for j, (a, g) in enumerate(points)
            if j != i
        )
        out.append(not dominated)
    return out


def _diff(a, b, stat: str):
    """Paired interval of ``stat``(a) − ``stat``(b): both arms' (estimate, replicates) stats
    come from the same bootstrap replicates."""
    (ea, ra), (eb, rb) = a, b
    return interval(ra[stat] - rb[stat], ea[stat] - eb[stat])


def _pts(iv) -> dict:
    return iv.as_dict(100)


def methods_table(
    store,
    sweep_id: str | None = None,
    *,
    reference: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> dict:
    """The methods of a sweep side by side (points; intervals 95%).

    Parameters
    ----------
    store : ResultsStore
    sweep_id : str, optional
        Default: the newest sweep with pruned cells.
    reference : str, optional
        The criterion the others are compared with at equal loss. Default ``unstructured`` when
        the sweep has it, else its first criterion (alphabetically).
    n_boot, seed
        The bootstrap's replicates and seed (equal inputs → equal intervals).

    Returns
    -------
    dict
        ``sweep_id``, ``reference``, ``groups``, ``seeds``, ``dense`` (its accuracy, per-group
        accuracy and gap, each ``{"estimate", "low", "high"}``) and ``methods``: one row per
        (level, criterion, loss) with ``level``, ``level_kind`` (``"weight sparsity"`` or
        ``"FLOPs reduction"``), ``weight_sparsity``, ``flops_reduction``, ``seeds``, ``accuracy``,
        ``group_accuracy`` ({group: interval}), ``gap``, ``max_psi``, ``gap_vs_ce`` /
        ``accuracy_vs_ce`` (this loss − CE, same criterion; None for CE), ``verdict_vs_ce``,
        ``gap_vs_reference`` / ``accuracy_vs_reference`` (this criterion − the reference, same
        loss; None for the reference), ``verdict_vs_reference`` and ``pareto``.
    """
    sweep_id, cells = sweep_cells(store, sweep_id)
    if sweep_id is None:
        raise FairpruneError(ERR_NO_PRUNED)
    dense = cells[cells["criterion"] == "dense"]
    pruned = cells[cells["criterion"] != "dense"]
    if dense.empty or pruned.empty:
        raise FairpruneError(ERR_NO_METHODS.format(sweep=sweep_id))
    criteria = configured_criteria(
        sweep_config_json(store, sweep_id), sorted(pruned["criterion"].unique())
    )
    if reference is None:
        reference = REFERENCE_CRITERION if REFERENCE_CRITERION in criteria else criteria[0]
    elif reference not in criteria:
        raise FairpruneError(
            ERR_NO_REFERENCE.format(sweep=sweep_id, criterion=reference, have=", ".join(criteria))
        )
    dense_key = str(dense["cell_key"].iloc[0])
    preds = store.predictions([dense_key, *pruned["cell_key"]])
    d, groups, _ = correct_matrix(preds, [dense_key])
    names = [str(g) for g in preds[dense_key].group_names]
    weights = np.bincount(groups, minlength=len(names)) / len(groups)

    rows: list[dict] = []
    dense_out = None
    for level, at in pruned.groupby("target_reduction", sort=True):
        arms = {}  # (criterion, loss) -> (cells sorted by seed)
        for (crit, loss), c in at.groupby(["criterion", "loss"], sort=True):
            arms[(str(crit), str(loss))] = c.sort_values("seed")
        mats = [d] + [correct_matrix(preds, list(c["cell_key"]))[0] for c in arms.values()]
        reps = arm_replicates(mats, groups, n_boot=n_boot, seed=seed)
        (d_est, d_rep), arm_reps = reps[0], reps[1:]
        dense_stats = (_stats(d_est, d_est, weights), _stats(d_rep, d_rep, weights))
        if dense_out is None:
            est, rep = dense_stats
            dense_out = {
                "accuracy": _pts(interval(rep["accuracy"], est["accuracy"])),
                "gap": _pts(interval(rep["gap"], est["gap"])),
                "group_accuracy": {
                    g: _pts(interval(rep["groups"][:, i], est["groups"][i]))
                    for i, g in enumerate(names)
                },
            }
        stats = {}
        for key, (est, rep) in zip(arms, arm_reps, strict=True):
            stats[key] = (_stats(est, d_est, weights), _stats(rep, d_rep, weights))

        front = _pareto([(s[0]["accuracy"], s[0]["gap"]) for s in stats.values()])
        for (key, c), on_front in zip(arms.items(), front, strict=True):
            crit, loss = key
            est, rep = stats[key]
            row = {
                "method": method_label(crit, loss),
                "criterion": crit,
                "loss": loss,
                "level": float(level),
                "level_kind": "weight sparsity" if is_unstructured(crit) else "FLOPs reduction",
                "weight_sparsity": float(c["weight_sparsity"].mean()),
                "flops_reduction": float(c["flops_reduction"].mean()),
                "seeds": [int(s) for s in c["seed"].dropna()],
            }
            for stat in STATS:
                row[stat] = _pts(interval(rep[stat], est[stat]))
            row["group_accuracy"] = {
                g: _pts(interval(rep["groups"][:, i], est["groups"][i]))
                for i, g in enumerate(names)
            }
            for name, other in (("ce", (crit, BASE_LOSS)), ("reference", (reference, loss))):
                if other == key or other not in stats:
                    row[f"gap_vs_{name}"] = row[f"accuracy_vs_{name}"] = None
                    row[f"verdict_vs_{name}"] = None
                    continue
                gap_iv = _diff(stats[key], stats[other], "gap")
                row[f"gap_vs_{name}"] = _pts(gap_iv)
                row[f"accuracy_vs_{name}"] = _pts(_diff(stats[key], stats[other], "accuracy"))
                row[f"verdict_vs_{name}"] = verdict(gap_iv)
            row["pareto"] = bool(on_front)
            rows.append(row)
    return {
        "sweep_id": str(sweep_id),
        "reference": reference,
        "groups": names,
        "seeds": sorted({int(s) for s in pruned["seed"].dropna()}),
        "dense": dense_out,
        "methods": rows,
    }


def methods_frame(table: dict) -> pd.DataFrame:
    """:func:`methods_table` flattened for pages, the report and CSV: one row per method and
    level, points, each interval as ``<name>``, ``<name>_low``, ``<name>_high``."""
    out = []
    for row in table["methods"]:
        flat = {
            k: row[k]
            for k in (
                "level",
                "level_kind",
                "method",
                "criterion",
                "loss",
                "weight_sparsity",
                "flops_reduction",
            )  # fmt: skip
        }
        flat["seeds"] = len(row["seeds"])
        cols = [(s, row[s]) for s in STATS]
        cols += [(f"acc {g}", iv) for g, iv in row["group_accuracy"].items()]
        cols += [(k, row[k]) for k in ("gap_vs_ce", "gap_vs_reference", "accuracy_vs_ce",
                                       "accuracy_vs_reference")]  # fmt: skip
        for name, iv in cols:
            for part, suffix in (("estimate", ""), ("low", "_low"), ("high", "_high")):
                flat[f"{name}{suffix}"] = None if iv is None else iv[part]
        flat["verdict_vs_ce"] = row["verdict_vs_ce"]
        flat["verdict_vs_reference"] = row["verdict_vs_reference"]
        flat["pareto"] = row["pareto"]
        out.append(flat)
    return pd.DataFrame(out)


def _fmt(iv: dict | None) -> str:
    if iv is None:
        return "—"
    return f"{iv['estimate']:.1f} [{iv['low']:.1f}, {iv['high']:.1f}]"


def _fmt_diff(iv: dict | None, word: str | None) -> str:
    if iv is None:
        return "—"
    tag = {"wider": " wider", "narrower": " narrower"}.get(word or "", "")
    return f"{iv['estimate']:+.1f} [{iv['low']:+.1f}, {iv['high']:+.1f}]{tag}"


def methods_display(table: dict) -> pd.DataFrame:
    """The table people read: one row per method and level, each cell "estimate [low, high]".

    Columns: level, method, accuracy, one per group, gap, max ψ, Δgap vs CE, Δgap vs the
    reference criterion, Pareto. Differences say "wider"/"narrower" only when the interval
    excludes zero.
    """
    out = []
    for row in table["methods"]:
        line = {
            "level": f"{row['level']:.0%} {row['level_kind']}",
            "method": row["method"],
            "seeds": len(row["seeds"]),
            "accuracy %": _fmt(row["accuracy"]),
        }
        for g, iv in row["group_accuracy"].items():
            line[f"{g} %"] = _fmt(iv)
        line["gap (max − min, points)"] = _fmt(row["gap"])
        line["max ψ (points)"] = _fmt(row["max_psi"])
        line["Δgap vs CE"] = _fmt_diff(row["gap_vs_ce"], row["verdict_vs_ce"])
        line[f"Δgap vs {table['reference']}"] = _fmt_diff(
            row["gap_vs_reference"], row["verdict_vs_reference"]
        )
        line["Pareto front"] = "★" if row["pareto"] else ""
        out.append(line)
    return pd.DataFrame(out)


def methods_text(table: dict) -> str:
    """The table as aligned plain text for the terminal."""
    frame = methods_display(table)
    head = (
        f"sweep {table['sweep_id']}: methods side by side (seeds {table['seeds']}, "
        f"reference criterion {table['reference']}; points, 95% paired bootstrap intervals)"
    )
    dense = table["dense"]
    lines = [
        head,
        f"dense: accuracy {_fmt(dense['accuracy'])}, gap {_fmt(dense['gap'])}",
        frame.to_string(index=False),
    ]
    return "\n".join(lines)


__all__ = [
    "REFERENCE_CRITERION",
    "method_label",
    "methods_display",
    "methods_frame",
    "methods_table",
    "methods_text",
]
