"""The performance-weighted (PW) loss of Meyer & Wong (arXiv 2211.10285) and its ablations.

For a sample (x, y) let q be the dense model's probabilities and p = q_y. Then

- weight  w = w_min + (1 - w_min) * (1 - p) ** gamma   (hard samples for the dense model count more)
- target  t = q where the dense model is right (argmax q == y), else one-hot(y)
- loss    = mean_i  w_i * CE(pruned(x_i), t_i)

Single-logit binary models use the sigmoid form. The dense outputs are an input, never computed
here: callers compute them once per (dense model, dataset) and reuse them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ERR_MIN_WEIGHT = "min_weight must be in [0, 1], got {value}; the paper uses 0.3 to 0.95."
ERR_GAMMA = "gamma must be >= 0, got {value}; the paper uses 0.5 to 5."
ERR_REDUCTION = "reduction must be 'mean', 'sum' or 'none', got {value!r}."
ERR_SHAPE = (
    "logits {logits} and dense_logits {dense} must have the same shape, with {n} targets; "
    "pass the dense model's outputs for the same samples."
)
ERR_TARGET_RANGE = "targets must be class indices in [0, {classes}), got values in [{lo}, {hi}]."
ERR_BINARY_TARGET = "single-logit binary targets must be 0 or 1, got {values}."
ERR_UNKNOWN_LOSS = "unknown loss {name!r}; choose one of: {choices}."


def _check_args(min_weight: float, gamma: float, reduction: str) -> None:
    if not 0.0 <= float(min_weight) <= 1.0:
        raise ValueError(ERR_MIN_WEIGHT.format(value=min_weight))
    if float(gamma) < 0.0:
        raise ValueError(ERR_GAMMA.format(value=gamma))
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(ERR_REDUCTION.format(value=reduction))


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _is_single_logit(logits: Tensor) -> bool:
    return logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1)


def performance_weighted_loss(
    logits: Tensor,
    targets: Tensor,
    dense_logits: Tensor,
    *,
    min_weight: float,
    gamma: float,
    soft_targets: bool = True,
    sample_weights: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Performance-weighted cross-entropy of a pruned model against its dense parent.

    Parameters
    ----------
    logits : Tensor
        Pruned model outputs, (N, C) for multiclass or (N,) / (N, 1) for single-logit binary.
    targets : Tensor
        (N,) class indices; 0/1 (int or float) for single-logit binary.
    dense_logits : Tensor
        The dense model's outputs for the same samples, same shape as ``logits``. Treated as
        constants (no gradient flows into them).
    min_weight : float
        w_min in [0, 1]: the weight of samples the dense model gets right with certainty.
    gamma : float
        Focusing exponent >= 0 on (1 - p).
    soft_targets : bool, default True
        Use the dense probabilities as target where the dense model is right; False gives the
        "weights-only" ablation (plain one-hot targets).
    sample_weights : bool, default True
        Weight samples by w; False gives the "soft-targets-only" ablation (all weights 1).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or (N,) per-sample losses with ``reduction="none"``.
    """
    _check_args(min_weight, gamma, reduction)
    n = targets.shape[0] if targets.dim() > 0 else -1
    if logits.shape != dense_logits.shape or logits.shape[0] != n:
        raise ValueError(
            ERR_SHAPE.format(logits=tuple(logits.shape), dense=tuple(dense_logits.shape), n=n)
        )
    dense_logits = dense_logits.detach()
    if _is_single_logit(logits):
        return _binary_pw(
            logits.reshape(-1),
            targets,
            dense_logits.reshape(-1),
            min_weight=min_weight,
            gamma=gamma,
            soft_targets=soft_targets,
            sample_weights=sample_weights,
            reduction=reduction,
        )
    num_classes = logits.shape[1]
    targets = targets.long()
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(ERR_TARGET_RANGE.format(classes=num_classes, lo=lo, hi=hi))

    q = F.softmax(dense_logits.float(), dim=1)  # (N, C) dense probabilities
    p = q.gather(1, targets[:, None]).squeeze(1)  # (N,) dense probability of the true class
    one_hot = F.one_hot(targets, num_classes).to(q.dtype)  # (N, C)
    if soft_targets:
        dense_right = (q.argmax(dim=1) == targets)[:, None]  # (N, 1)
        t = torch.where(dense_right, q, one_hot)  # (N, C)
    else:
        t = one_hot
    ce = -(t * F.log_softmax(logits.float(), dim=1)).sum(dim=1)  # (N,)
    if sample_weights:
        w = min_weight + (1.0 - min_weight) * (1.0 - p).clamp_min(0.0) ** gamma  # (N,)
        ce = w * ce
    return _reduce(ce, reduction)


def _binary_pw(
    logits: Tensor,
    targets: Tensor,
    dense_logits: Tensor,
    *,
    min_weight: float,
    gamma: float,
    soft_targets: bool,
    sample_weights: bool,
    reduction: str,
) -> Tensor:
    y = targets.reshape(-1).float()  # (N,)
    bad = y[(y != 0) & (y != 1)]
    if bad.numel():
        raise ValueError(ERR_BINARY_TARGET.format(values=sorted(set(bad.tolist()))[:5]))
    q = torch.sigmoid(dense_logits.float())  # (N,) dense P(y = 1)
    p = torch.where(y == 1, q, 1.0 - q)  # (N,) dense probability of the true label
    if soft_targets:
        dense_right = (q > 0.5).float() == y
        t = torch.where(dense_right, q, y)
    else:
        t = y
    bce = F.binary_cross_entropy_with_logits(logits.float(), t, reduction="none")  # (N,)
    if sample_weights:
        w = min_weight + (1.0 - min_weight) * (1.0 - p).clamp_min(0.0) ** gamma
        bce = w * bce
    return _reduce(bce, reduction)


def cross_entropy(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Plain cross-entropy, in the sigmoid form for single-logit binary outputs."""
    if _is_single_logit(logits):
        return F.binary_cross_entropy_with_logits(
            logits.reshape(-1).float(), targets.reshape(-1).float(), reduction=reduction
        )
    return F.cross_entropy(logits.float(), targets.long(), reduction=reduction)


LossFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]


@dataclass(frozen=True)
class LossSpec:
    """A fine-tuning loss: a label for the UI, whether it needs the dense outputs, a factory."""

    label: str  # shown in the dashboard and CLI help
    uses_dense: bool  # needs the dense model's outputs for each batch
    soft_targets: bool  # PW soft targets on
    sample_weights: bool  # PW sample weights on
    constrained: bool = False  # CE under per-group excess-gap constraints (fairprune.constrained)

    def make(self, min_weight: float = 0.75, gamma: float = 5.0) -> LossFn:
        """Return ``fn(logits, targets, dense_logits) -> scalar loss``.

        For ``constrained`` this is the objective alone (cross-entropy); the constraints live in
        ``fairprune.constrained``, which ``fairprune.train.finetune`` dispatches to.
        """
        if self.constrained or not self.uses_dense:
            return lambda logits, targets, dense_logits=None: cross_entropy(logits, targets)
        _check_args(min_weight, gamma, "mean")

        def fn(logits: Tensor, targets: Tensor, dense_logits: Tensor | None) -> Tensor:
            return performance_weighted_loss(
                logits,
                targets,
                dense_logits,
                min_weight=min_weight,
                gamma=gamma,
                soft_targets=self.soft_targets,
                sample_weights=self.sample_weights,
            )

        return fn


LOSSES: dict[str, LossSpec] = {
    "ce": LossSpec("cross-entropy", False, False, False),
    "pw": LossSpec("performance-weighted (PW)", True, True, True),
    "pw_weights": LossSpec("PW weights only (ablation)", True, False, True),
    "pw_soft": LossSpec("PW soft targets only (ablation)", True, True, False),
    # Hashemizadeh et al. 2024: CE with ψ_g ≤ ε per group; needs the dense outputs for ψ_g
    "constrained": LossSpec(
        "CE, constrained excess gaps (Balancing Act)", True, False, False, True
    ),
}

PW_PRESETS: dict[str, tuple[float, float]] = {
    "reference default": (0.75, 5.0),
    "CelebA, AutoBot": (0.3, 1.0),
    "CelebA, Taylor": (0.8, 0.5),
    "Fitzpatrick17k": (0.8, 2.5),
    "Fitzpatrick17k, Taylor": (0.95, 3.0),
}
"""The paper's (w_min, γ) settings, by experiment."""


def get_loss(name: str) -> LossSpec:
    """Look up a loss by name, with a clear error for unknown names."""
    try:
        return LOSSES[name]
    except KeyError:
        from fairprune.errors import FairpruneError

        raise FairpruneError(
            ERR_UNKNOWN_LOSS.format(name=name, choices=", ".join(LOSSES))
        ) from None
