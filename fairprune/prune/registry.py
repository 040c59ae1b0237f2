"""The pruning criteria: name → ``CriterionSpec``, and ``prune_model``, which runs any of them.

Every criterion has one interface, ``spec.prune(model, config, context) -> PruneResult``
(``fairprune.prune.context``), whatever its method: the FLOPs ratio search over a Torch-Pruning
importance (``targeting.RatioSearch``), a loop of its own topped up by magnitude
(``targeting.TopUp``: AutoBot, iterative Taylor) or single weights zeroed
(``unstructured.ZeroWeights``: the target is then weight sparsity, FLOPs do not fall).

The table itself imports no Torch: a page that only needs the names, labels and targets
(``is_unstructured``, the select boxes) does not pay for Torch-Pruning. ``spec.prune`` is built,
and Torch-Pruning imported, on first use.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fairprune.errors import FairpruneError

if TYPE_CHECKING:
    from torch import nn

    from fairprune.config import PruneConfig
    from fairprune.prune.context import PruneFn, PruneResult
    from fairprune.utils import Progress

log = logging.getLogger(__name__)


ERR_UNKNOWN = "unknown pruning criterion {name!r}; choose one of: {choices}."


# the values of ``context.FLOPS`` and ``context.WEIGHT_SPARSITY`` (context imports Torch);
# tests/test_imports.py checks that they agree
FLOPS = "FLOPs reduction"
WEIGHT_SPARSITY = "weight sparsity"


@dataclass(frozen=True)
class CriterionSpec:
    """A pruning criterion."""

    label: str  # shown in the UI and --help
    needs_data: bool  # needs calibration data (context.calib, or context.split if unstructured)
    needs_dense: bool  # needs the dense model's outputs (PW forms)
    build: Callable[[], PruneFn]  # makes ``prune``; imports Torch-Pruning, so run on first use
    target: str = FLOPS  # what config.target_reduction measures: FLOPS or WEIGHT_SPARSITY

    @functools.cached_property
    def prune(self) -> PruneFn:
        """``prune(model, config, context) -> PruneResult``: a pruned copy, model untouched."""
        return self.build()


def _tp(importance: str, **kwargs) -> Callable[[], object]:
    """A fresh Torch-Pruning importance ``tp.importance.<importance>(**kwargs)`` per call."""

    def make():
        import torch_pruning as tp

        return getattr(tp.importance, importance)(**kwargs)

    return make


def _ratio(label: str, importance: Callable[[], object], *, data=False, dense=False):
    def build():
        from fairprune.prune.targeting import RatioSearch

        return RatioSearch(importance, needs_data=data)

    return CriterionSpec(label, data, dense, build)


def _own_loop(label: str, run: Callable[[], Callable[..., nn.Module]], *, dense=False):
    def build():
        from fairprune.prune.targeting import TopUp

        return TopUp(run(), needs_data=True)

    return CriterionSpec(label, True, dense, build)


def _zeros(label: str, run: Callable[[], Callable[..., tuple]], *, data=False):
    def build():
        from fairprune.prune.unstructured import ZeroWeights

        return ZeroWeights(run(), needs_data=data)

    return CriterionSpec(label, data, False, build, WEIGHT_SPARSITY)


# each criterion's own loop, imported when its spec is first used
def _autobot():
    from fairprune.prune import autobot

    return autobot.prune


def _iter_taylor():
    from fairprune.prune import taylor

    return taylor.prune


def _unstructured():
    from fairprune.prune import unstructured

    return unstructured.prune


def _fairgrape():
    from fairprune.prune import fairgrape

    return fairgrape.prune


def _fairprune():
    from fairprune.prune import hessian_saliency

    return hessian_saliency.prune


CRITERIA: dict[str, CriterionSpec] = {
    "random": _ratio("random", _tp("RandomImportance")),
    "l1": _ratio("magnitude (L1)", _tp("GroupMagnitudeImportance", p=1)),
    "l2": _ratio("magnitude (L2)", _tp("GroupMagnitudeImportance", p=2)),
    "taylor": _ratio("first-order Taylor (CE)", _tp("GroupTaylorImportance"), data=True),
    "pw_taylor": _ratio(
        "first-order Taylor (PW loss)", _tp("GroupTaylorImportance"), data=True, dense=True
    ),
    "autobot": _own_loop("AutoBot (CE)", _autobot),
    "pw_autobot": _own_loop("AutoBot (PW loss)", _autobot, dense=True),
    "iter_taylor": _own_loop("iterative Taylor (CE)", _iter_taylor),
    "pw_iter_taylor": _own_loop("iterative Taylor (PW loss)", _iter_taylor, dense=True),
    # unstructured: the target is weight sparsity; FLOPs do not fall on dense kernels
    "unstructured": _zeros("global magnitude, unstructured", _unstructured),
    "fairgrape": _zeros("FairGRAPE (Lin et al. 2022), unstructured", _fairgrape, data=True),
    "fairprune": _zeros("FairPrune (Wu et al. 2022), unstructured", _fairprune, data=True),
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
    from fairprune.prune.context import PruneContext
    from fairprune.utils import seed_everything

    spec = get_criterion(config.criterion)
    seed_everything(config.seed)  # random importance, AutoBot's gates, Taylor's SGD steps
    context = PruneContext(input_size, calib, split, group_names, progress)
    return spec.prune(model, config, context)
