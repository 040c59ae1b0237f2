"""Findings of a sweep, worded only as strongly as the data allow.

For each (criterion, level): the gap (max − min group accuracy, one definition everywhere) of the
dense model, of cross-entropy and of PW fine-tuning, seeds averaged; the paired bootstrap
intervals of "CE vs dense" and "PW vs CE" (:mod:`fairprune.intervals`, on the per-sample
predictions kept in the results store, so no model is re-run); the groups pruning significantly
hurts; and the headline sentence the Overview, the report and ``python -m fairprune summary``
show. "Wider"/"narrower"/"hurt" are said only when the interval excludes zero.
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
    group_accuracy,
    group_drops,
    require_two_groups,
    verdict,
)

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
GAP_LABEL = "gap (max − min group accuracy, points)"
LOSS_WORDS = {"ce": "cross-entropy", "pw": "the PW loss"}


@dataclass(frozen=True)
class LevelFinding:
    """CE and PW against the dense model at one (criterion, level) of a sweep."""

    sweep_id: str
    criterion: str
    level: float  # target reduction
    flops_reduction: float  # mean reached over the cells
    seeds: list[int]
    groups: list[str]
    gap_dense: float  # points
    gap_ce: float | None
    gap_pw: float | None
    ce_vs_dense: Interval | None  # gap_ce − gap_dense (fractions)
    pw_vs_ce: Interval | None  # gap_pw − gap_ce (fractions)
    ce_drops: list[Interval] | None  # per group, dense − CE accuracy (fractions)

    @property
    def verdict_ce(self) -> str | None:
        return None if self.ce_vs_dense is None else verdict(self.ce_vs_dense)

    @property
    def verdict_pw(self) -> str | None:
        return None if self.pw_vs_ce is None else verdict(self.pw_vs_ce)

    def hurt(self) -> list[tuple[str, Interval]]:
        """Groups whose accuracy drop (dense − CE) is significant: its interval is above 0."""
        drops = self.ce_drops or []
        return [(g, d) for g, d in zip(self.groups, drops, strict=False) if d.low > 0]


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def _ci(iv: Interval) -> str:
    return f"{_pts(iv.estimate)} points, 95% CI {_pts(iv.low)} to {_pts(iv.high)}"


def headline(f: LevelFinding) -> str:
    """The sentence a review meeting reads: only interval-backed words."""
    where = f"At {f.flops_reduction:.0%} FLOPs reduction"
    if f.criterion == "unstructured":
        where = f"At {f.level:.0%} weight sparsity"
    where += f" ({f.criterion} pruning, {len(f.seeds)} seed{'s' if len(f.seeds) != 1 else ''})"
    if f.gap_ce is None or f.ce_vs_dense is None:
        return f"{where}, there are no cross-entropy cells to compare with the dense model."
    v = f.verdict_ce
    if v in (WIDER, NARROWER):
        verb = "widens" if v == WIDER else "narrows"
        text = (
            f"{where}, cross-entropy fine-tuning {verb} the gap between groups "
            f"(max − min accuracy) from {f.gap_dense:.1f} to {f.gap_ce:.1f} points "
            f"({_ci(f.ce_vs_dense)})"
        )
    else:
        text = (
            f"{where}, the gap between groups (max − min accuracy) is {f.gap_ce:.1f} points "
            f"after cross-entropy fine-tuning and {f.gap_dense:.1f} for the dense model: the data "
            f"cannot tell them apart ({_ci(f.ce_vs_dense)})"
        )
    hurt = f.hurt()
    if hurt:
        worst = sorted(hurt, key=lambda gd: -gd[1].estimate)
        text += "; it significantly lowers the accuracy of " + ", ".join(
            f"{g} ({_pts(-d.estimate)} points)" for g, d in worst
        )
    text += "."
    if f.gap_pw is None or f.pw_vs_ce is None:
        return text
    v = f.verdict_pw
    if v in (WIDER, NARROWER):
        word = "wider" if v == WIDER else "narrower"
        text += (
            f" With the PW loss the gap is {f.gap_pw:.1f} points, {word} than with cross-entropy "
            f"({_ci(f.pw_vs_ce)})."
        )
    else:
        text += (
            f" With the PW loss it is {f.gap_pw:.1f} points: the data cannot tell it from "
            f"cross-entropy ({_ci(f.pw_vs_ce)})."
        )
    return text


def _correct(preds: dict, keys: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
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


def compare_cells(store, keys_a, keys_b, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> dict:
    """Paired comparison of two sets of cells (e.g. two models in the Audit page's A/B view).

    Returns
    -------
    dict
        ``gap_a``, ``gap_b`` (points, seeds averaged), ``gap_difference`` (Interval of
        gap(B) − gap(A), fractions), ``verdict``, ``groups`` (names) and ``drops`` (per group,
        Interval of accuracy(A) − accuracy(B)).
    """
    keys_a, keys_b = list(keys_a), list(keys_b)
    preds = store.predictions(keys_a + keys_b)
    a, groups, key_a = _correct(preds, keys_a)
    b, groups_b, key_b = _correct(preds, keys_b)
    if key_a != key_b or not np.array_equal(groups, groups_b):
        raise FairpruneError(ERR_NOT_SAME_ROWS.format(a=key_a, b=key_b))
    paired = len(keys_a) == len(keys_b)
    require_two_groups(groups)
    arm_a, arm_b = arm_replicates([a, b], groups, n_boot=n_boot, seed=seed, paired_seeds=paired)
    diff, drops = gap_difference(arm_a, arm_b), group_drops(arm_a, arm_b)
    names = preds[keys_a[0]].group_names
    acc_a, acc_b = group_accuracy(a, groups).mean(0), group_accuracy(b, groups).mean(0)
    return {
        "groups": list(names),
        "gap_a": float((acc_a.max() - acc_a.min()) * 100),
        "gap_b": float((acc_b.max() - acc_b.min()) * 100),
        "gap_difference": diff,
        "verdict": verdict(diff),
        "drops": drops,
    }


def _seed_gap(a: np.ndarray, groups: np.ndarray) -> float:
    acc = group_accuracy(a, groups)
    return float((acc.max(axis=1) - acc.min(axis=1)).mean() * 100)


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


def level_findings(
    store,
    sweep_id: str | None = None,
    *,
    criterion: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> list[LevelFinding]:
    """One :class:`LevelFinding` per (criterion, level) of a sweep, levels ascending.

    ``sweep_id`` None takes the newest sweep with pruned cells; ``criterion`` None keeps all.
    """
    sweep_id, cells = sweep_cells(store, sweep_id)
    if sweep_id is None:
        return []
    dense = cells[cells["criterion"] == "dense"]
    pruned = cells[cells["criterion"] != "dense"]
    if criterion is not None:
        have = sorted(pruned["criterion"].unique())
        if criterion not in have:
            raise FairpruneError(
                ERR_NO_CRITERION.format(
                    sweep=sweep_id, criterion=criterion, have=", ".join(have) or "none"
                )
            )
        pruned = pruned[pruned["criterion"] == criterion]
    if dense.empty or pruned.empty:
        return []
    dense_key = dense["cell_key"].iloc[0]
    preds = store.predictions([dense_key, *pruned["cell_key"]])
    d, groups, _ = _correct(preds, [dense_key])
    names = list(preds[dense_key].group_names)
    gap_dense = _seed_gap(d, groups)
    out = []
    for (crit, level), at in pruned.groupby(["criterion", "target_reduction"], sort=True):
        by_loss = {loss: at[at["loss"] == loss].sort_values("seed") for loss in ("ce", "pw")}
        ce_keys = list(by_loss["ce"]["cell_key"])
        pw_keys = list(by_loss["pw"]["cell_key"])
        ce = _correct(preds, ce_keys)[0] if ce_keys else None
        pw = _correct(preds, pw_keys)[0] if pw_keys else None
        same_seeds = list(by_loss["ce"]["seed"]) == list(by_loss["pw"]["seed"])
        ce_vs_dense = pw_vs_ce = ce_drops = None
        if ce is not None:
            # one resampling for every comparison of this level: dense, CE and PW measured on
            # the same replicates (PW and CE of the same seeds share the seed draw)
            require_two_groups(groups)
            arms = arm_replicates([d, ce] + ([pw] if pw is not None else []), groups,
                                  n_boot=n_boot, seed=seed, paired_seeds=same_seeds)  # fmt: skip
            ce_vs_dense, ce_drops = gap_difference(arms[0], arms[1]), group_drops(arms[0], arms[1])
            if pw is not None:
                pw_vs_ce = gap_difference(arms[1], arms[2])
        seeds = sorted({int(s) for s in at["seed"].dropna()})
        out.append(
            LevelFinding(
                sweep_id=str(sweep_id),
                criterion=str(crit),
                level=float(level),
                flops_reduction=float(at["flops_reduction"].mean()),
                seeds=seeds,
                groups=names,
                gap_dense=gap_dense,
                gap_ce=None if ce is None else _seed_gap(ce, groups),
                gap_pw=None if pw is None else _seed_gap(pw, groups),
                ce_vs_dense=ce_vs_dense,
                pw_vs_ce=pw_vs_ce,
                ce_drops=ce_drops,
            )
        )
    return out


def findings_frame(findings: list[LevelFinding]) -> pd.DataFrame:
    """The findings as a table (points), one row per (criterion, level), for pages and reports."""
    rows = []
    for f in findings:
        row = {
            "criterion": f.criterion,
            "level": f.level,
            "flops_reduction": f.flops_reduction,
            "seeds": len(f.seeds),
            "gap_dense": f.gap_dense,
            "gap_ce": f.gap_ce,
            "gap_pw": f.gap_pw,
        }
        for name, iv, v in (
            ("ce_vs_dense", f.ce_vs_dense, f.verdict_ce),
            ("pw_vs_ce", f.pw_vs_ce, f.verdict_pw),
        ):
            d = iv.as_dict(100) if iv is not None else {"estimate": None, "low": None, "high": None}
            row[name] = d["estimate"]
            row[f"{name}_low"] = d["low"]
            row[f"{name}_high"] = d["high"]
            row[f"verdict_{name.split('_')[0]}"] = v
        row["hurt_by_ce"] = ", ".join(g for g, _ in f.hurt()) or "none"
        rows.append(row)
    return pd.DataFrame(rows)


def summary_of(findings: list[LevelFinding], criterion: str | None = None) -> dict:
    """The headline dict of :func:`summary` from already computed findings."""
    if not findings:
        raise FairpruneError(ERR_NO_PRUNED)
    crit = criterion or findings[0].criterion
    mine = [f for f in findings if f.criterion == crit]
    if not mine:
        have = ", ".join(sorted({f.criterion for f in findings}))
        raise FairpruneError(
            ERR_NO_CRITERION.format(sweep=findings[0].sweep_id, criterion=crit, have=have)
        )
    top = max(mine, key=lambda f: f.level)
    return {
        "sweep_id": top.sweep_id,
        "criterion": top.criterion,
        "level": top.level,
        "seeds": top.seeds,
        "groups": top.groups,
        "gap_dense": top.gap_dense,
        "gap_ce": top.gap_ce,
        "gap_pw": top.gap_pw,
        "ce_vs_dense": None if top.ce_vs_dense is None else top.ce_vs_dense.as_dict(100),
        "pw_vs_ce": None if top.pw_vs_ce is None else top.pw_vs_ce.as_dict(100),
        "verdict_ce": top.verdict_ce,
        "verdict_pw": top.verdict_pw,
        "headline": headline(top),
    }


def summary(
    store,
    sweep_id: str | None = None,
    *,
    criterion: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> dict:
    """The headline of a sweep as one JSON-able dict (gaps in points, intervals 95%).

    The level is the sweep's highest; the criterion the one given, else the sweep's first.
    ``sweep_id`` None takes the newest sweep with pruned cells.

    Returns
    -------
    dict
        Exactly the keys ``sweep_id, criterion, level, seeds, groups, gap_dense, gap_ce, gap_pw,
        ce_vs_dense, pw_vs_ce, verdict_ce, verdict_pw, headline``; the two comparisons are
        ``{"estimate", "low", "high"}`` in points (``ce_vs_dense`` = gap_ce − gap_dense,
        ``pw_vs_ce`` = gap_pw − gap_ce), None where a loss is missing.
    """
    findings = level_findings(store, sweep_id, criterion=criterion, n_boot=n_boot, seed=seed)
    return summary_of(findings, criterion)


__all__ = [
    "GAP_LABEL",
    "LevelFinding",
    "compare_cells",
    "findings_frame",
    "headline",
    "level_findings",
    "summary",
    "summary_of",
]
