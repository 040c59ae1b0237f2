"""The pruning criteria: name → ``CriterionSpec`` (Torch-Pruning importances, custom loops and
the unstructured criteria, whose target is weight sparsity)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch_pruning as tp

from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)


ERR_UNKNOWN = "unknown pruning criterion {name!r}; choose one of: {choices}."


@dataclass(frozen=True)
class CriterionSpec:
    """A pruning criterion."""

    label: str  # shown in the UI and --help
    needs_data: bool  # needs calibration batches
    needs_dense: bool  # needs the dense model's outputs (PW forms)
    method: str  # "oneshot" (ratio search), "custom" (own loop), "unstructured" (single weights)
    importance: Callable[[], object] | None = None  # tp importance factory (oneshot)
    run: Callable | None = None  # custom: run(model, config, input_size, calib, progress)
    # unstructured: run(model, config, *, split, input_size, progress, group_names)
    #   -> (pruned copy with zeros in place, weight sparsity); target_reduction = weight sparsity


UNSTRUCTURED_METHOD = "unstructured"


def _register_custom() -> None:
    from fairprune.prune import autobot, fairgrape, hessian_saliency, taylor, unstructured

    CRITERIA["autobot"] = CriterionSpec("AutoBot (CE)", True, False, "custom", run=autobot.prune)
    CRITERIA["pw_autobot"] = CriterionSpec(
        "AutoBot (PW loss)", True, True, "custom", run=autobot.prune
    )
    CRITERIA["iter_taylor"] = CriterionSpec(
        "iterative Taylor (CE)", True, False, "custom", run=taylor.prune
    )
    CRITERIA["pw_iter_taylor"] = CriterionSpec(
        "iterative Taylor (PW loss)", True, True, "custom", run=taylor.prune
    )
    # unstructured: the target is weight sparsity; FLOPs do not fall on dense kernels
    CRITERIA["unstructured"] = CriterionSpec(
        "global magnitude, unstructured", False, False, UNSTRUCTURED_METHOD, run=unstructured.prune
    )
    CRITERIA["fairgrape"] = CriterionSpec(
        "FairGRAPE (Lin et al. 2022), unstructured",
        True,
        False,
        UNSTRUCTURED_METHOD,
        run=fairgrape.prune,
    )
    CRITERIA["fairprune"] = CriterionSpec(
        "FairPrune (Wu et al. 2022), unstructured",
        True,
        False,
        UNSTRUCTURED_METHOD,
        run=hessian_saliency.prune,
    )


CRITERIA: dict[str, CriterionSpec] = {
    "random": CriterionSpec("random", False, False, "oneshot", tp.importance.RandomImportance),
    "l1": CriterionSpec(
        "magnitude (L1)",
        False,
        False,
        "oneshot",
        lambda: tp.importance.GroupMagnitudeImportance(p=1),
    ),  # fmt: skip
    "l2": CriterionSpec(
        "magnitude (L2)",
        False,
        False,
        "oneshot",
        lambda: tp.importance.GroupMagnitudeImportance(p=2),
    ),  # fmt: skip
    "taylor": CriterionSpec(
        "first-order Taylor (CE)", True, False, "oneshot", tp.importance.GroupTaylorImportance
    ),
    "pw_taylor": CriterionSpec(
        "first-order Taylor (PW loss)", True, True, "oneshot", tp.importance.GroupTaylorImportance
    ),
}


try:
    _register_custom()
except ImportError:  # pragma: no cover - the modules ship together
    log.warning("AutoBot / iterative Taylor / unstructured criteria unavailable")


def get_criterion(name: str) -> CriterionSpec:
    """Look a criterion up by name, with a clear error."""
    if name not in CRITERIA:
        raise FairpruneError(ERR_UNKNOWN.format(name=name, choices=", ".join(CRITERIA)))
    return CRITERIA[name]


def is_unstructured(name: str) -> bool:
    """True for criteria that zero single weights (target = weight sparsity, FLOPs unchanged)."""
    spec = CRITERIA.get(name)
    return spec is not None and spec.method == UNSTRUCTURED_METHOD
