"""Pruning: the criteria table (``CRITERIA``) and ``prune_model``, which reaches a FLOPs target.

Every criterion is one ``CriterionSpec`` in ``registry``: a Torch-Pruning importance for the
one-shot criteria (random, magnitude, Taylor) or a loop of its own (``autobot``, ``taylor``'s
iterative form), both over the channel groups of ``groups``. ``targeting`` searches the channel
ratio that reaches the target; ``unstructured`` zeroes single weights.
"""

from fairprune.prune.objective import accumulate_gradients
from fairprune.prune.registry import CRITERIA, CriterionSpec, get_criterion
from fairprune.prune.targeting import PruneResult, prune_model
from fairprune.prune.unstructured import unstructured_prune

__all__ = [
    "CRITERIA",
    "CriterionSpec",
    "PruneResult",
    "accumulate_gradients",
    "get_criterion",
    "prune_model",
    "unstructured_prune",
]
