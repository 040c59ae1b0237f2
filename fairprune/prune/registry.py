"""The pruning criteria: name → ``CriterionSpec`` (Torch-Pruning importances and custom loops)."""

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
    method: str  # "oneshot" (ratio search) or "custom" (its own loop: AutoBot, iterative Taylor)
    importance: Callable[[], object] | None = None  # tp importance factory (oneshot)
    run: Callable | None = None  # custom: run(model, config, input_size, calib, progress)


def _register_custom() -> None:
    from fairprune.prune import autobot, taylor

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
    log.warning("AutoBot / iterative Taylor criteria unavailable")


def get_criterion(name: str) -> CriterionSpec:
    """Look a criterion up by name, with a clear error."""
    if name not in CRITERIA:
        raise FairpruneError(ERR_UNKNOWN.format(name=name, choices=", ".join(CRITERIA)))
    return CRITERIA[name]
