"""The one interface every pruning criterion has: ``prune(model, config, context) -> PruneResult``.

Torch-Pruning gives every importance one ``__call__(group)``; here every criterion, whatever its
method (a channel ratio search over an importance, a loop of its own, single weights zeroed), is a
``PruneFn`` taking the model, its ``PruneConfig`` and a ``PruneContext`` (what the run provides:
input size, calibration data, the training split, group names, progress), and returning a pruned
copy with what it costs (``PruneResult``). A criterion reads the context fields it needs and
ignores the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from fairprune.config import PruneConfig
from fairprune.utils import Progress

FLOPS = "FLOPs reduction"
"""``CriterionSpec.target`` of structured criteria: ``target_reduction`` is a FLOPs reduction."""
WEIGHT_SPARSITY = "weight sparsity"
"""``CriterionSpec.target`` of unstructured criteria: single weights are zeroed, FLOPs unchanged."""


@dataclass(frozen=True)
class PruneContext:
    """What a pruning run provides besides the model and its config; each criterion reads what
    it needs."""

    input_size: int | None  # square input side S: tracing and MAC counting
    calib: list | None = None  # (x, y, dense_logits) batches: data-driven structured criteria
    split: Any = None  # the training SplitData: unstructured criteria draw (x, y, g) batches
    group_names: list[str] | None = None  # names of the group indices (groups named by the user)
    progress: Progress | None = None  # progress(done, total, info) during long searches


@dataclass
class PruneResult:
    """A pruned copy of a model and what it costs."""

    model: nn.Module  # the pruned copy (the input model is untouched)
    macs_before: int  # MACs per image of the input model
    macs_after: int  # MACs per image of the pruned model
    params_before: int
    params_after: int
    flops_reduction: float  # 1 − macs_after / macs_before, as reached
    channel_ratio: float | None  # per-layer channel ratio used (None for iterative methods)
    weight_sparsity: float = 0.0  # share of zeroed prunable weights (unstructured criteria)


PruneFn = Callable[[nn.Module, PruneConfig, PruneContext], PruneResult]
"""``prune(model, config, context) -> PruneResult``: the interface of every criterion."""
