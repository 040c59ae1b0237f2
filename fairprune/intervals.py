"""Paired bootstrap intervals for the comparisons people read: one resampling, used everywhere.

"Pruned vs dense" and "PW vs CE" are comparisons of models evaluated on the SAME test images, so
their difference is estimated with a paired bootstrap: each replicate draws one resample of the
test set (stratified by group, so every group keeps its size) and measures every model on it.
Seeds are the unit of evidence for training randomness, so each replicate also resamples the seeds
(with replacement; two arms that share seeds — PW and CE fine-tuning of the same pruned model —
draw the same seeds). The point estimate is the difference of the seed-averaged statistics on the
original data; the interval is the *basic* (pivotal) bootstrap interval
[2θ̂ − q_hi, 2θ̂ − q_lo] of the replicates, not the percentile one: a gap is a max − min, whose
bootstrap replicates sit above the estimate (the maximum of noisy group accuracies is biased
upward), and the basic interval reflects that bias back instead of inheriting it. A stated estimate
always lies inside its interval: where the replicates do not straddle the estimate (the bias is
larger than the spread), the interval is widened to reach it, never narrowed.

Beside every comparison the smallest difference the run could have detected is reported:
:func:`mde`, the minimum detectable effect at 80% power and a two-sided 5% level,
(z_0.975 + z_0.8) × the bootstrap standard error of the difference.

A difference is called a difference only when its interval excludes zero (:func:`verdict`).
The Overview, the Sweep page, the Audit page's A/B comparison, the Methods page, the report and
the CLI all resample through :func:`arm_replicates` (once per comparison, every arm on the same
replicates) and read differences off it (:func:`gap_difference`, :func:`group_drops`);
:func:`paired_gap_difference` / :func:`paired_group_drops` are the two-arm shorthands. Nothing
else resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

ERR_SHAPE = "correct must be (seeds, N) booleans with N = len(groups); got {shape} for N = {n}."
ERR_EMPTY_GROUP = "group code {code} has no samples; every group needs test samples."
ERR_FEW_GROUPS = "a gap needs at least two groups; got {n}."

DEFAULT_N_BOOT = 2000
WIDER, NARROWER, NO_DIFFERENCE = "wider", "narrower", "no_difference"


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval (same units as the estimate)."""

    estimate: float
    low: float
    high: float
    se: float = float("nan")  # bootstrap standard error (the replicates' standard deviation)

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


def seed_gaps(acc) -> np.ndarray:
    """Each model's max − min group accuracy: (…, G) group accuracies → (…)."""
    acc = np.asarray(acc, dtype=float)
    return acc.max(axis=-1) - acc.min(axis=-1)


def _basic(replicates: np.ndarray, estimate: float, ci: float) -> Interval:
    """The basic bootstrap interval around ``estimate``, widened to contain it if need be."""
    q_lo, q_hi = np.quantile(replicates, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    est = float(estimate)
    low, high = 2 * est - float(q_hi), 2 * est - float(q_lo)
    se = float(np.std(replicates, ddof=1)) if len(replicates) > 1 else 0.0
    return Interval(est, min(low, est), max(high, est), se)


def mde(iv: Interval, *, ci: float = 0.95, power: float = 0.8) -> float:
    """The minimum detectable effect of a comparison: the smallest true difference the run would
    call a difference (its interval excluding 0) with probability ``power``, from the bootstrap
    standard error: (z_(1 − α/2) + z_power) · se (2.80 · se at 95% and 80% power)."""
    z = NormalDist()
    return float((z.inv_cdf(1 - (1 - ci) / 2) + z.inv_cdf(power)) * iv.se)


def seed_gap(acc) -> float:
    """THE gap of a set of models: the mean over seeds of each seed's max − min group accuracy.

    ``acc`` is (S, G) (one row per seed's model; a single model is (1, G) or (G,)). Every page,
    chart, table, report and CLI output states this number (as points, ×100).
    """
    a = np.asarray(acc, dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    return float(seed_gaps(a).mean())


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
    diffs = seed_gaps(rep_b).mean(axis=1) - seed_gaps(rep_a).mean(axis=1)
    return _basic(diffs, seed_gap(est_b) - seed_gap(est_a), ci)


def gap_interval(arm, ci: float = 0.95) -> Interval:
    """One arm's gap (:func:`seed_gap`) with its interval, from an :func:`arm_replicates` arm."""
    est, rep = arm
    return _basic(seed_gaps(rep).mean(axis=1), seed_gap(est), ci)


def group_drops(a, b, ci: float = 0.95) -> list[Interval]:
    """Per group, accuracy(A) − accuracy(B), seeds averaged, from two arms of one
    :func:`arm_replicates` call; one Interval per group code."""
    (est_a, rep_a), (est_b, rep_b) = a, b
    drop, est = rep_a.mean(axis=1) - rep_b.mean(axis=1), est_a.mean(axis=0) - est_b.mean(axis=0)
    return [_basic(drop[:, g], est[g], ci) for g in range(drop.shape[1])]


def interval(replicates, estimate: float, ci: float = 0.95) -> Interval:
    """The basic bootstrap interval of a statistic's replicates around its estimate (the one
    interval rule of the project; it always contains the estimate)."""
    return _basic(np.asarray(replicates, dtype=float), float(estimate), ci)


__all__ = [
    "DEFAULT_N_BOOT",
    "Interval",
    "NARROWER",
    "NO_DIFFERENCE",
    "WIDER",
    "arm_replicates",
    "gap_difference",
    "gap_interval",
    "group_accuracy",
    "group_drops",
    "interval",
    "mde",
    "paired_gap_difference",
    "paired_group_drops",
    "require_two_groups",
    "seed_gap",
    "seed_gaps",
    "verdict",
]
