"""The pruning criteria: name → ``CriterionSpec``, and ``prune_model``, which runs any of them.

Every criterion has one interface, ``spec.prune(model, config, context) -> PruneResult``
(``fairprune.prune.context``), whatever its method: the FLOPs ratio search over a Torch-Pruning
importance (``targeting.RatioSearch``), a loop of its own topped up by magnitude
(``targeting.TopUp``: AutoBot, iterative Taylor) or single weights zeroed
(``unstructured.ZeroWeights``: the target is then weight sparsity, FLOPs do not fall).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch_pruning as tp
from torch import nn

from fairprune.config import PruneConfig
from fairprune.errors import FairpruneError
from fairprune.prune import autobot, fairgrape, hessian_saliency, taylor, unstructured
from fairprune.prune.context import FLOPS, WEIGHT_SPARSITY, PruneContext, PruneFn, PruneResult
from fairprune.prune.targeting import RatioSearch, TopUp
from fairprune.prune.unstructured import ZeroWeights
from fairprune.utils import Progress, seed_everything

log = logging.getLogger(__name__)


ERR_UNKNOWN = "unknown pruning criterion {name!r}; choose one of: {choices}."


@dataclass(frozen=True)
class CriterionSpec:
    """A pruning criterion."""

    label: str  # shown in the UI and --help
    needs_data: bool  # needs calibration data (context.calib, or context.split if unstructured)
    needs_dense: bool  # needs the dense model's outputs (PW forms)
    prune: PruneFn  # prune(model, config, context) -> PruneResult: a pruned copy, model untouched
    target: str = FLOPS  # what config.target_reduction measures: FLOPS or WEIGHT_SPARSITY


def _ratio(label: str, importance: Callable[[], object], *, data=False, dense=False):
    return CriterionSpec(label, data, dense, RatioSearch(importance, needs_data=data))


def _own_loop(label: str, run: Callable[..., nn.Module], *, dense=False):
    return CriterionSpec(label, True, dense, TopUp(run, needs_data=True))


def _zeros(label: str, run: Callable[..., tuple[nn.Module, float]], *, data=False):
    return CriterionSpec(label, data, False, ZeroWeights(run, needs_data=data), WEIGHT_SPARSITY)


CRITERIA: dict[str, CriterionSpec] = {
    "random": _ratio("random", tp.importance.RandomImportance),
    "l1": _ratio("magnitude (L1)", lambda: tp.importance.GroupMagnitudeImportance(p=1)),
    "l2": _ratio("magnitude (L2)", lambda: tp.importance.GroupMagnitudeImportance(p=2)),
    "taylor": _ratio("first-order Taylor (CE)", tp.importance.GroupTaylorImportance, data=True),
    "pw_taylor": _ratio(
        "first-order Taylor (PW loss)", tp.importance.GroupTaylorImportance, data=True, dense=True
    ),
    "autobot": _own_loop("AutoBot (CE)", autobot.prune),
    "pw_autobot": _own_loop("AutoBot (PW loss)", autobot.prune, dense=True),
    "iter_taylor": _own_loop("iterative Taylor (CE)", taylor.prune),
    "pw_iter_taylor": _own_loop("iterative Taylor (PW loss)", taylor.prune, dense=True),
    # unstructured: the target is weight sparsity; FLOPs do not fall on dense kernels
    "unstructured": _zeros("global magnitude, unstructured", unstructured.prune),
    "fairgrape": _zeros("FairGRAPE (Lin et al. 2022), unstructured", fairgrape.prune, data=True),
    "fairprune": _zeros(
        "FairPrune (Wu et al. 2022), unstructured", hessian_saliency.prune, data=True
    ),
}


def get_criterion(name: str) -> CriterionSpec:
    """Look a criterion up by name, with a clear error."""
    if name not in CRITERIA:
        raise FairpruneError(ERR_UNKNOWN.format(name=name, choices=", ".join(CRITERIA)))
    return CRITERIA[name]


def is_unstructured(name: str) -> bool:
    """True for criteria that zero single weights (target = weight sparsity, FLOPs unchanged)."""
    spec = CRITERIA.get(name)
    return spec is not None and spec.target == WEIGHT_SPARSITY


def prune_model(
    model: nn.Module,
    config: PruneConfig,
    *,
    input_size: int,
    calib=None,
    split=None,
    group_names: list[str] | None = None,
    progress: Progress | None = None,
) -> PruneResult:
    """Prune a copy of ``model`` with ``config.criterion`` to ``config.target_reduction``.

    Parameters
    ----------
    model : nn.Module
        Trained dense (or already pruned) model; never modified.
    config : PruneConfig
        The target is a FLOPs reduction, or weight sparsity for unstructured criteria
        (``is_unstructured``); it is reached within ``config.tolerance`` or an error is raised.
    input_size : int
        Square input side, for tracing and MAC counting.
    calib : list of (x, y, dense_logits) batches, optional
        Training data for the data-driven structured criteria (Taylor, AutoBot);
        ``dense_logits`` are the dense model's outputs for the PW forms.
    split : SplitData, optional
        The training split, which the data-driven unstructured criteria (FairGRAPE, FairPrune)
        draw their (x, y, group) calibration batches from.
    group_names : list of str, optional
        Names of the split's group indices (FairPrune's named groups).
    progress : callable, optional
        ``progress(step, total, info)`` during the search.

    Returns
    -------
    PruneResult
        ``weight_sparsity`` is set by unstructured criteria (their ``flops_reduction`` is 0).
    """
    spec = get_criterion(config.criterion)
    seed_everything(config.seed)  # random importance, AutoBot's gates, Taylor's SGD steps
    context = PruneContext(input_size, calib, split, group_names, progress)
    return spec.prune(model, config, context)
