"""Pruning: the criteria table (``CRITERIA``) and ``prune_model``, which runs any criterion.

Every criterion is one ``CriterionSpec`` in ``registry`` with one interface,
``spec.prune(model, config, context) -> PruneResult`` (``context``): the FLOPs ratio search over a
Torch-Pruning importance (random, magnitude, Taylor) or a loop of its own (``autobot``,
``taylor``'s iterative form), both over the channel groups of ``groups`` and reaching the target
by ``targeting``; or single weights zeroed (``unstructured``, ``fairgrape``,
``hessian_saliency``), whose target is weight sparsity.

Names are resolved on first use (PEP 562): importing ``fairprune.prune.registry`` for the
criterion names does not pull in Torch through this ``__init__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairprune.utils import lazy_exports

if TYPE_CHECKING:
    from fairprune.prune.context import PruneContext, PruneResult
    from fairprune.prune.objective import accumulate_gradients
    from fairprune.prune.registry import (
        CRITERIA,
        CriterionSpec,
        get_criterion,
        is_unstructured,
        prune_model,
    )
    from fairprune.prune.unstructured import unstructured_prune

_EXPORTS: dict[str, str] = {
    "CRITERIA": "fairprune.prune.registry",
    "CriterionSpec": "fairprune.prune.registry",
    "PruneContext": "fairprune.prune.context",
    "PruneResult": "fairprune.prune.context",
    "accumulate_gradients": "fairprune.prune.objective",
    "get_criterion": "fairprune.prune.registry",
    "is_unstructured": "fairprune.prune.registry",
    "prune_model": "fairprune.prune.registry",
    "unstructured_prune": "fairprune.prune.unstructured",
}

__all__ = [
    "CRITERIA",
    "CriterionSpec",
    "PruneContext",
    "PruneResult",
    "accumulate_gradients",
    "get_criterion",
    "is_unstructured",
    "prune_model",
    "unstructured_prune",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
