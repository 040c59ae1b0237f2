"""Paired bootstrap intervals for the comparisons people read: one resampling, used everywhere.

"Pruned vs dense" and "PW vs CE" are comparisons of models evaluated on the SAME test images, so
their difference is estimated with a paired bootstrap: each replicate draws one resample of the
test set (stratified by group, so every group keeps its size) and measures every model on it.
Seeds are the unit of evidence for training randomness, so each replicate also resamples the seeds
(with replacement; two arms that share seeds — PW and CE fine-tuning of the same pruned model —
draw the same seeds). The point estimate is the difference of the seed-averaged statistics on the
original data; the interval is the percentile interval of the replicates.

A difference is called a difference only when its interval excludes zero (:func:`verdict`).
The Overview, the Sweep page, the Audit page's A/B comparison, the Methods page, the report and
the CLI all resample through :func:`arm_replicates` (once per comparison, every arm on the same
replicates) and read differences off it (:func:`gap_difference`, :func:`group_drops`);
:func:`paired_gap_difference` / :func:`paired_group_drops` are the two-arm shorthands. Nothing
else resamples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ERR_SHAPE = "correct must be (seeds, N) booleans with N = len(groups); got {shape} for N = {n}."
ERR_EMPTY_GROUP = "group code {code} has no samples; every group needs test samples."
ERR_FEW_GROUPS = "a gap needs at least two groups; got {n}."

DEFAULT_N_BOOT = 2000
WIDER, NARROWER, NO_DIFFERENCE = "wider", "narrower", "no_difference"


@dataclass(frozen=True)
class Interval:
    """An estimate with its percentile interval (same units as the estimate)."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self, scale: float = 1.0) -> dict:
        """``{"estimate", "low", "high"}``, multiplied by ``scale`` (100 for points)."""
        return {
            "estimate": float(self.estimate * scale),
            "low": float(self.low * scale),
            "high": float(self.high * scale),
        }


def verdict(interval: Interval) -> str:
    """``"wider"`` when the whole interval is above 0, ``"narrower"`` below, else no difference."""
    if interval.low > 0:
        return WIDER
    if interval.high < 0:
        return NARROWER
    return NO_DIFFERENCE


def _as_matrix(correct, n: int) -> np.ndarray:
    arr = np.asarray(correct, dtype=bool)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n or arr.shape[0] == 0:
        raise ValueError(ERR_SHAPE.format(shape=tuple(np.shape(correct)), n=n))
    return arr


def _positions(groups: np.ndarray) -> list[np.ndarray]:
    codes = np.asarray(groups, dtype=np.int64)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    pos = [np.flatnonzero(codes == g) for g in range(n_groups)]
    for g, p in enumerate(pos):
        if len(p) == 0:
            raise ValueError(ERR_EMPTY_GROUP.format(code=g))
    return pos


def group_accuracy(correct: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(S, G) accuracy of each seed's model in each group, on the original data."""
    correct = _as_matrix(correct, len(groups))
    return np.stack([correct[:, p].mean(axis=1) for p in _positions(groups)], axis=1)


def _draw(groups, n_boot: int, n_seeds: tuple[int, ...], paired_seeds: bool, seed: int):
    """The replicates' draws: per group, indices into its samples (B, n_g), drawn with
    replacement; then per arm, seed indices (B, S) — shared by arms of equal size when
    ``paired_seeds``."""
    rng = np.random.default_rng(seed)
    counts = []
    for p in _positions(groups):
        # a stratified resample of the group: n_g of its samples, with replacement
        counts.append(rng.integers(0, len(p), size=(n_boot, len(p))))
    seed_draws = []
    shared = None
    for s in n_seeds:
        if s == 1:
            seed_draws.append(np.zeros((n_boot, 1), dtype=np.int64))
            continue
        if paired_seeds and shared is not None and shared.shape[1] == s:
            seed_draws.append(shared)
            continue
        draw = rng.integers(0, s, size=(n_boot, s))
        shared = draw if shared is None else shared
        seed_draws.append(draw)
    return counts, seed_draws


def _multiplicities(idx: np.ndarray) -> np.ndarray:
    """(B, n_g) how often each of the group's samples is drawn in each replicate."""
    n_boot, n = idx.shape
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    # float32 holds every count exactly (< 2**24), at half the memory of float64
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def _replicate_acc(correct: np.ndarray, groups, counts) -> np.ndarray:
    """(B, S, G) group accuracies of every seed's model in every replicate.

    ``counts`` holds, per group, the (B, n_g) resample indices or their multiplicities
    (:func:`_multiplicities`, computed once and shared by every arm). The accuracy of a
    replicate is (multiplicities · correct) / n_g — integer sums, so exactly the mean of the
    gathered samples, at the cost of one matrix product instead of a (S, B, n_g) gather.
    """
    cols = []
    for p, c in zip(_positions(groups), counts, strict=True):
        mult = c if c.dtype == np.float32 else _multiplicities(c)
        hits = mult @ correct[:, p].T.astype(np.float32)  # (B, S) integer counts, exact
        cols.append(hits.astype(np.float64) / len(p))
    return np.stack(cols, axis=2)


def _gap(acc: np.ndarray) -> np.ndarray:
    return acc.max(axis=-1) - acc.min(axis=-1)


def _percentile(diffs: np.ndarray, estimate: float, ci: float) -> Interval:
    lo, hi = np.quantile(diffs, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return Interval(float(estimate), float(lo), float(hi))


def arm_replicates(
    arms, groups, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, paired_seeds: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seed-averaged group accuracies of several arms on the SAME bootstrap replicates.

    The one resampling every comparison uses: each replicate draws one stratified resample of the
    test set, shared by all arms, and a resample of each arm's seeds (arms with the same number of
    seeds share it when ``paired_seeds``). Any statistic of the group accuracies (gap, overall
    accuracy, ψ) computed per replicate, and any difference of two arms' statistics, is then a
    paired bootstrap.

    Parameters
    ----------
    arms : sequence of array-like of bool, each (S_i, N) or (N,)
        Per arm, whether each seed's model got each test sample right (same rows, same order).
    groups : array-like of int, shape (N,)
        Group code of each sample (0..G-1, every code present).

    Returns
    -------
    list of (estimate, replicates)
        Per arm, the (S, G) group accuracies of its seeds' models on the original data and the
        (B, S, G) ones of every replicate, seeds already resampled (replicate b holds the drawn
        seeds). A statistic is computed per seed over the last axis and then averaged over the
        seed axis (the gap of a method is the mean of its seeds' gaps).
    """
    groups = np.asarray(groups)
    mats = [_as_matrix(a, len(groups)) for a in arms]
    counts, draws = _draw(groups, n_boot, tuple(len(m) for m in mats), paired_seeds, seed)
    # multiplicities once, shared by every arm; each group's indices are freed as it is converted
    counts = [_multiplicities(counts.pop(0)) for _ in range(len(counts))]
    out = []
    for m, draw in zip(mats, draws, strict=True):
        reps = _replicate_acc(m, groups, counts)  # (B, S, G)
        out.append((group_accuracy(m, groups), np.take_along_axis(reps, draw[:, :, None], axis=1)))
    return out


def paired_gap_difference(
    correct_a,
    correct_b,
    groups,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    ci: float = 0.95,
    seed: int = 0,
    paired_seeds: bool = True,
) -> Interval:
    """gap(B) − gap(A), seeds averaged, with a paired bootstrap interval.

    The gap is max − min group accuracy (one definition everywhere).

    Parameters
    ----------
    correct_a, correct_b : array-like of bool, shape (S_a, N) / (S_b, N) or (N,)
        Whether each seed's model got each test sample right, on the same rows in the same order
        (e.g. A = the dense model (one row), B = the pruned models of three seeds).
    groups : array-like of int, shape (N,)
        Group code of each sample (0..G-1, every code present).
    n_boot : int, default 2000
    ci : float, default 0.95
    seed : int, default 0
        Seeds the resampling: equal inputs give equal intervals.
    paired_seeds : bool, default True
        Arms with the same number of seeds share each replicate's seed draw (their seed ``s``
        models come from the same pruned model); False draws them independently.

    Returns
    -------
    Interval
        In accuracy units (fractions); ``as_dict(100)`` gives points.
    """
    require_two_groups(groups)
    a, b = arm_replicates(
        [correct_a, correct_b], groups, n_boot=n_boot, seed=seed, paired_seeds=paired_seeds
    )
    return gap_difference(a, b, ci)


def paired_group_drops(
    correct_a,
    correct_b,
    groups,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    ci: float = 0.95,
    seed: int = 0,
    paired_seeds: bool = True,
) -> list[Interval]:
    """Per group, accuracy(A) − accuracy(B) (a drop when positive), seeds averaged, paired.

    Same resampling as :func:`paired_gap_difference` (same seed → the same replicates).

    Returns
    -------
    list of Interval
        One per group code, in code order.
    """
    a, b = arm_replicates(
        [correct_a, correct_b], groups, n_boot=n_boot, seed=seed, paired_seeds=paired_seeds
    )
    return group_drops(a, b, ci)


def require_two_groups(groups) -> None:
    """A gap needs at least two groups (``ValueError`` otherwise)."""
    n = len(_positions(np.asarray(groups)))
    if n < 2:
        raise ValueError(ERR_FEW_GROUPS.format(n=n))


def gap_difference(a, b, ci: float = 0.95) -> Interval:
    """gap(B) − gap(A), seeds averaged, from two arms of one :func:`arm_replicates` call."""
    (est_a, rep_a), (est_b, rep_b) = a, b
    diffs = _gap(rep_b).mean(axis=1) - _gap(rep_a).mean(axis=1)
    return _percentile(diffs, _gap(est_b).mean() - _gap(est_a).mean(), ci)


def group_drops(a, b, ci: float = 0.95) -> list[Interval]:
    """Per group, accuracy(A) − accuracy(B), seeds averaged, from two arms of one
    :func:`arm_replicates` call; one Interval per group code."""
    (est_a, rep_a), (est_b, rep_b) = a, b
    drop, est = rep_a.mean(axis=1) - rep_b.mean(axis=1), est_a.mean(axis=0) - est_b.mean(axis=0)
    return [_percentile(drop[:, g], est[g], ci) for g in range(drop.shape[1])]


def interval(replicates, estimate: float, ci: float = 0.95) -> Interval:
    """The percentile interval of a statistic's bootstrap replicates around its estimate."""
    return _percentile(np.asarray(replicates, dtype=float), float(estimate), ci)


__all__ = [
    "DEFAULT_N_BOOT",
    "Interval",
    "NARROWER",
    "NO_DIFFERENCE",
    "WIDER",
    "arm_replicates",
    "gap_difference",
    "group_accuracy",
    "group_drops",
    "interval",
    "paired_gap_difference",
    "paired_group_drops",
    "require_two_groups",
    "verdict",
]
