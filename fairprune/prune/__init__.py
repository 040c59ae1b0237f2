"""Pruning: the criteria table (``CRITERIA``) and ``prune_model``, which runs any criterion.

Every criterion is one ``CriterionSpec`` in ``registry`` with one interface,
``spec.prune(model, config, context) -> PruneResult`` (``context``): the FLOPs ratio search over a
Torch-Pruning importance (random, magnitude, Taylor) or a loop of its own (``autobot``,
``taylor``'s iterative form), both over the channel groups of ``groups`` and reaching the target
by ``targeting``; or single weights zeroed (``unstructured``, ``fairgrape``,
``hessian_saliency``), whose target is weight sparsity.
"""

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
