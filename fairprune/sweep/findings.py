"""Findings of a sweep, worded only as strongly as the data allow.

A finding compares a *baseline method* with a *method* (each a (criterion, loss) pair,
:mod:`fairprune.sweep.pairing`) at one level of a sweep: the gap of the dense model, of the
baseline and of the method (the gap is always :func:`fairprune.intervals.seed_gap`, the mean of
the seeds' own max − min group accuracy); the paired bootstrap intervals of "baseline vs dense" and
"method vs baseline" (:mod:`fairprune.intervals`, on the per-sample predictions kept in the results
store, so no model is re-run) with the smallest difference the run could have detected (the mde);
the groups the baseline significantly hurts; and the headline sentence the Overview, the report and
``python -m fairprune summary`` show. "Wider"/"narrower"/"hurt" are said only when the interval
excludes zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairprune.errors import FairpruneError
from fairprune.intervals import (
    DEFAULT_N_BOOT,
    NARROWER,
    WIDER,
    Interval,
    arm_replicates,
    gap_difference,
    gap_interval,
    group_drops,
    mde,
    require_two_groups,
    seed_gap,
    verdict,
)
from fairprune.prune.registry import is_unstructured
from fairprune.sweep.pairing import Method, methods_of, resolve_pair

ERR_NO_SWEEP = (
    "the results store has no sweep {sweep!r}; run `python -m fairprune models` or a sweep."
)
ERR_EMPTY_STORE = "the results store has no sweep yet: run `python -m fairprune demo` or a sweep."
ERR_NO_CRITERION = "sweep {sweep} has no pruned cells with criterion {criterion!r}; it has: {have}."
ERR_NO_PREDICTIONS = (
    "cell {cell} has no stored per-sample predictions (written by an older fairprune); "
    "rerun its sweep to compare it with intervals."
)
ERR_NOT_SAME_ROWS = (
    "the models were evaluated on different data ({a} vs {b}); compare models audited on the "
    "same split of the same dataset."
)
ERR_NO_PRUNED = (
    "the sweep has no pruned cells with a dense baseline yet: run it (or the demo) first."
)
NO_PRUNED = "No pruned models in the results store yet: run the demo or a sweep."
GAP_LABEL = "gap (mean over seeds of max − min group accuracy, points)"
LOSS_WORDS = {"ce": "cross-entropy", "pw": "PW-loss"}
SEED_NOTE = (
    "Intervals resample the test images within each group and the pruning/fine-tuning seeds: "
    "they answer whether the method differs for a new seed, not only for these models."
)


def method_words(m: Method) -> str:
    """``taylor pruning + cross-entropy fine-tuning``: a method in a sentence."""
    return f"{m.criterion} pruning + {LOSS_WORDS.get(m.loss, m.loss)} fine-tuning"


@dataclass(frozen=True)
class LevelFinding:
    """A baseline method and a method against the dense model at one level of a sweep."""

    sweep_id: str
    baseline: Method
    method: Method | None
    level: float  # target: FLOPs reduction, or weight sparsity for unstructured criteria
    reached: float  # mean reached over the cells, same axis as the level
    seeds: list[int]
    groups: list[str]
    gap_dense: Interval  # the dense model's gap (fractions) with its interval
    gap_baseline: float | None  # points
    gap_method: float | None  # points
    baseline_vs_dense: Interval | None  # gap_baseline − gap_dense (fractions)
    method_vs_baseline: Interval | None  # gap_method − gap_baseline (fractions)
    baseline_drops: list[Interval] | None  # per group, dense − baseline accuracy (fractions)

    @property
    def criterion(self) -> str:
        return self.baseline.criterion

    @property
    def unstructured(self) -> bool:
        return is_unstructured(self.baseline.criterion)

    @property
    def axis(self) -> str:
        """What the level measures: ``"weight sparsity"`` or ``"FLOPs reduction"``."""
        return "weight sparsity" if self.unstructured else "FLOPs reduction"

    @property
    def verdict_baseline(self) -> str | None:
        return None if self.baseline_vs_dense is None else verdict(self.baseline_vs_dense)

    @property
    def verdict_method(self) -> str | None:
        return None if self.method_vs_baseline is None else verdict(self.method_vs_baseline)

    @property
    def mde(self) -> float | None:
        """Points: the smallest method − baseline gap difference this run could have detected."""
        return None if self.method_vs_baseline is None else mde(self.method_vs_baseline) * 100

    @property
    def mde_baseline(self) -> float | None:
        """Points: the smallest baseline − dense gap difference this run could have detected."""
        return None if self.baseline_vs_dense is None else mde(self.baseline_vs_dense) * 100

    def hurt(self) -> list[tuple[str, Interval]]:
        """Groups whose accuracy drop (dense − baseline) is significant: its interval is above 0."""
        drops = self.baseline_drops or []
        return [(g, d) for g, d in zip(self.groups, drops, strict=False) if d.low > 0]


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def _ci(iv: Interval) -> str:
    return f"{_pts(iv.estimate)} points, 95% CI {_pts(iv.low)} to {_pts(iv.high)}"


def headline(f: LevelFinding) -> str:
    """The sentence a review meeting reads: only interval-backed words."""
    where = f"At {f.reached:.0%} {f.axis} ({len(f.seeds)} seed{'s' if len(f.seeds) != 1 else ''})"
    base = method_words(f.baseline)
    if f.gap_baseline is None or f.baseline_vs_dense is None:
        return f"{where}, there are no {base} cells to compare with the dense model."
    v = f.verdict_baseline
    dense = f.gap_dense.estimate * 100
    if v in (WIDER, NARROWER):
        verb = "widens" if v == WIDER else "narrows"
        text = (
            f"{where}, {base} {verb} the gap between groups (max − min accuracy) "
            f"from {dense:.1f} to {f.gap_baseline:.1f} points ({_ci(f.baseline_vs_dense)})"
        )
    else:
        text = (
            f"{where}, the gap between groups (max − min accuracy) is {f.gap_baseline:.1f} points "
            f"after {base} and {dense:.1f} for the dense model: the data cannot tell them apart "
            f"({_ci(f.baseline_vs_dense)})"
        )
    hurt = f.hurt()
    if hurt:
        worst = sorted(hurt, key=lambda gd: -gd[1].estimate)
        text += "; it significantly lowers the accuracy of " + ", ".join(
            f"{g} ({_pts(-d.estimate)} points)" for g, d in worst
        )
    text += "."
    if f.method is None or f.gap_method is None or f.method_vs_baseline is None:
        return text
    meth = method_words(f.method)
    if f.verdict_method in (WIDER, NARROWER):
        word = "wider" if f.verdict_method == WIDER else "narrower"
        text += (
            f" With {meth} the gap is {f.gap_method:.1f} points, {word} than with {base} "
            f"({_ci(f.method_vs_baseline)}; the run could detect differences from "
            f"{f.mde:.1f} points)."
        )
    else:
        text += (
            f" With {meth} it is {f.gap_method:.1f} points: the data cannot tell it from {base} "
            f"({_ci(f.method_vs_baseline)}; this run could only have detected a difference of "
            f"{f.mde:.1f} points or more)."
        )
    return text


def correct_matrix(preds: dict, keys: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """(S, N) correct matrix of the cells, their groups (N,) and split key; same rows checked."""
    rows, groups, split_key = [], None, None
    for key in keys:
        p = preds.get(key)
        if p is None:
            raise FairpruneError(ERR_NO_PREDICTIONS.format(cell=key))
        if groups is None:
            groups, split_key, y = p.groups, p.split_key, p.y_true
        elif (
            p.split_key != split_key
            or len(p.groups) != len(groups)
            or not np.array_equal(p.y_true, y)
        ):
            raise FairpruneError(ERR_NOT_SAME_ROWS.format(a=split_key, b=p.split_key))
        rows.append(p.correct)
    return np.stack(rows), groups, split_key


def sweep_cells(store, sweep_id: str | None):
    """(sweep id, its cells): ``sweep_id`` None takes the newest sweep with pruned cells
    (None and the store's cells when there is none yet).

    Raises
    ------
    FairpruneError
        ``ERR_EMPTY_STORE`` (no sweep at all) or ``ERR_NO_SWEEP`` (no such sweep).
    """
    cells = store.cells(sweep_id)
    if sweep_id is not None:
        if cells.empty:
            raise FairpruneError(ERR_NO_SWEEP.format(sweep=sweep_id))
        return sweep_id, cells
    if cells.empty:
        raise FairpruneError(ERR_EMPTY_STORE)
    pruned_sweeps = cells[cells["criterion"] != "dense"]["sweep_id"]
    if pruned_sweeps.empty:
        return None, cells
    newest = str(pruned_sweeps.iloc[-1])
    return newest, cells[cells["sweep_id"] == newest]


def sweep_config_json(store, sweep_id: str | None) -> str | None:
    """The stored configuration (JSON text) of a sweep, or None."""
    sweeps = store.sweeps()
    row = sweeps[sweeps["sweep_id"] == sweep_id]
    return None if row.empty else str(row["config_json"].iloc[0])


def sweep_methods(store, sweep_id: str | None) -> tuple[str | None, list[Method]]:
    """(sweep id, its methods in configured order): what a page offers as baseline and method."""
    sweep_id, cells = sweep_cells(store, sweep_id)
    if sweep_id is None:
        return None, []
    return sweep_id, methods_of(cells, sweep_config_json(store, sweep_id))


def level_findings(
    store,
    sweep_id: str | None = None,
    *,
    baseline=None,
    method=None,
    criterion: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> list[LevelFinding]:
    """One :class:`LevelFinding` per level of a sweep, levels ascending, for one comparison.

    Parameters
    ----------
    store : ResultsStore
    sweep_id : str, optional
        None takes the newest sweep with pruned cells.
    baseline, method : str or Method, optional
        ``"criterion:loss"``; default :func:`fairprune.sweep.pairing.default_pair` (the paper's
        X + CE against PW-X + PW when the sweep has both, else CE against PW within the sweep's
        first configured criterion). ``criterion`` restricts that default to one criterion.
    n_boot, seed
        The paired bootstrap's replicates and seed (equal inputs → equal intervals).
    """
    sweep_id, cells = sweep_cells(store, sweep_id)
    if sweep_id is None:
        return []
    have = methods_of(cells, sweep_config_json(store, sweep_id))
    if criterion is not None and criterion not in {m.criterion for m in have}:
        listed = sorted({m.criterion for m in have})
        raise FairpruneError(
            ERR_NO_CRITERION.format(
                sweep=sweep_id, criterion=criterion, have=", ".join(listed) or "none"
            )
        )
    base, meth = resolve_pair(have, sweep_id, baseline=baseline, method=method, criterion=criterion)
    dense = cells[cells["criterion"] == "dense"]
    if dense.empty or base is None:
        return []

    def cells_of(m: Method | None) -> pd.DataFrame:
        if m is None:
            return cells.iloc[0:0]
        return cells[(cells["criterion"] == m.criterion) & (cells["loss"] == m.loss)]

    arms = {"b": cells_of(base), "m": cells_of(meth)}
    dense_key = str(dense["cell_key"].iloc[0])
    preds = store.predictions([dense_key, *arms["b"]["cell_key"], *arms["m"]["cell_key"]])
    d, groups, _ = correct_matrix(preds, [dense_key])
    require_two_groups(groups)
    names = [str(g) for g in preds[dense_key].group_names]
    reach = "weight_sparsity" if is_unstructured(base.criterion) else "flops_reduction"
    levels = sorted(set(arms["b"]["target_reduction"]) | set(arms["m"]["target_reduction"]))
    out = []
    for level in levels:
        at = {k: a[a["target_reduction"] == level].sort_values("seed") for k, a in arms.items()}
        mats = {k: correct_matrix(preds, list(a["cell_key"]))[0] for k, a in at.items() if len(a)}
        same_seeds = list(at["b"]["seed"]) == list(at["m"]["seed"])
        # one resampling for every comparison of this level: dense, baseline and method measured
        # on the same replicates (arms with the same seeds share the seed draw)
        order = ["d", *mats]
        reps = arm_replicates([d, *mats.values()], groups, n_boot=n_boot, seed=seed,
                              paired_seeds=same_seeds)  # fmt: skip
        arm = dict(zip(order, reps, strict=True))
        b_vs_d = m_vs_b = drops = None
        if "b" in arm:
            b_vs_d, drops = gap_difference(arm["d"], arm["b"]), group_drops(arm["d"], arm["b"])
            if "m" in arm:
                m_vs_b = gap_difference(arm["b"], arm["m"])
        both = pd.concat([at["b"], at["m"]])
        out.append(
            LevelFinding(
                sweep_id=str(sweep_id),
                baseline=base,
                method=meth,
                level=float(level),
                reached=float(both[reach].mean()),
                seeds=sorted({int(s) for s in both["seed"].dropna()}),
                groups=names,
                gap_dense=gap_interval(arm["d"]),
                gap_baseline=seed_gap(arm["b"][0]) * 100 if "b" in arm else None,
                gap_method=seed_gap(arm["m"][0]) * 100 if "m" in arm else None,
                baseline_vs_dense=b_vs_d,
                method_vs_baseline=m_vs_b,
                baseline_drops=drops,
            )
        )
    return out


def _worst(f: LevelFinding) -> tuple[str, float | None]:
    """The group the baseline hurts most (largest dense − baseline drop) and that drop (points)."""
    if not f.baseline_drops:
        return "—", None
    i = int(np.argmax([d.estimate for d in f.baseline_drops]))
    return f.groups[i], f.baseline_drops[i].estimate * 100


def findings_frame(findings: list[LevelFinding]) -> pd.DataFrame:
    """The findings as a table (points), one row per level, for pages, reports and the CLI."""
    rows = []
    for f in findings:
        row = {
            "baseline": f.baseline.key,
            "method": f.method.key if f.method else None,
            "level": f.level,
            "axis": f.axis,
            "reached": f.reached,
            "seeds": len(f.seeds),
            "gap_dense": f.gap_dense.estimate * 100,
            "gap_dense_low": f.gap_dense.low * 100,
            "gap_dense_high": f.gap_dense.high * 100,
            "gap_baseline": f.gap_baseline,
            "gap_method": f.gap_method,
        }
        for name, iv, v, m in (
            ("baseline_vs_dense", f.baseline_vs_dense, f.verdict_baseline, f.mde_baseline),
            ("method_vs_baseline", f.method_vs_baseline, f.verdict_method, f.mde),
        ):
            d = iv.as_dict(100) if iv is not None else {"estimate": None, "low": None, "high": None}
            row[name] = d["estimate"]
            row[f"{name}_low"] = d["low"]
            row[f"{name}_high"] = d["high"]
            row[f"verdict_{name.split('_')[0]}"] = v
            row[f"mde_{name}"] = m
        row["hurt_by_baseline"] = ", ".join(g for g, _ in f.hurt()) or "none"
        row["worst_group"], row["worst_drop"] = _worst(f)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_of(findings: list[LevelFinding]) -> dict:
    """The headline dict of :func:`summary` from already computed findings (one comparison)."""
    if not findings:
        raise FairpruneError(ERR_NO_PRUNED)
    top = max(findings, key=lambda f: f.level)
    frame = findings_frame(findings)
    levels = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]
    return {
        "sweep_id": top.sweep_id,
        "criterion": top.baseline.criterion,
        "level": top.level,
        "seeds": top.seeds,
        "groups": top.groups,
        "gap_dense": top.gap_dense.estimate * 100,
        "gap_ce": top.gap_baseline,
        "gap_pw": top.gap_method,
        "ce_vs_dense": None
        if top.baseline_vs_dense is None
        else top.baseline_vs_dense.as_dict(100),
        "pw_vs_ce": None if top.method_vs_baseline is None else top.method_vs_baseline.as_dict(100),
        "verdict_ce": top.verdict_baseline,
        "verdict_pw": top.verdict_method,
        "headline": headline(top),
        "baseline": top.baseline.as_dict(),
        "method": top.method.as_dict() if top.method else None,
        "axis": top.axis,
        "gap_dense_interval": top.gap_dense.as_dict(100),
        "mde": top.mde,
        "mde_ce_vs_dense": top.mde_baseline,
        "levels": levels,
    }


def summary(
    store,
    sweep_id: str | None = None,
    *,
    baseline=None,
    method=None,
    criterion: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> dict:
    """The headline of a sweep as one JSON-able dict (gaps in points, intervals 95%).

    The level is the sweep's highest; the comparison the one given, else the default pair.
    ``sweep_id`` None takes the newest sweep with pruned cells.

    Returns
    -------
    dict
        ``sweep_id, criterion, level, seeds, groups, gap_dense, gap_ce, gap_pw, ce_vs_dense,
        pw_vs_ce, verdict_ce, verdict_pw, headline`` as before — ``gap_ce``/``ce_vs_dense`` are
        the *baseline's* (gap_baseline − gap_dense), ``gap_pw``/``pw_vs_ce`` the *method's*
        (gap_method − gap_baseline), each ``{"estimate", "low", "high"}`` in points — then
        ``baseline`` and ``method`` (``{"criterion", "loss"}``), ``axis``, ``gap_dense_interval``,
        ``mde`` (points, method vs baseline, 80% power), ``mde_ce_vs_dense`` and ``levels`` (every
        level's row of :func:`findings_frame`).
    """
    findings = level_findings(
        store, sweep_id, baseline=baseline, method=method, criterion=criterion,
        n_boot=n_boot, seed=seed,
    )  # fmt: skip
    return summary_of(findings)


__all__ = [
    "GAP_LABEL",
    "LevelFinding",
    "SEED_NOTE",
    "correct_matrix",
    "findings_frame",
    "headline",
    "level_findings",
    "method_words",
    "summary",
    "summary_of",
    "sweep_cells",
    "sweep_methods",
]
