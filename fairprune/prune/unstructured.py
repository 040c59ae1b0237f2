"""Global unstructured magnitude pruning: weight sparsity, no FLOPs reduction."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils import prune as torch_prune

from fairprune.errors import FairpruneError
from fairprune.nets.architectures import head_of

ERR_AMOUNT = "unstructured sparsity must be in [0, 1), got {amount}."


def unstructured_prune(model: nn.Module, amount: float) -> tuple[nn.Module, float]:
    """Global unstructured magnitude pruning of conv and linear weights (head excluded).

    Parameters
    ----------
    model : nn.Module
        Never modified; a pruned copy is returned.
    amount : float
        Fraction of the prunable weights to zero, in [0, 1).

    Returns
    -------
    (nn.Module, float)
        The copy, with the masks made permanent, and the weight sparsity reached over the prunable
        weights. MACs are unchanged: the zeros are still multiplied.
    """
    if not 0.0 <= amount < 1.0:
        raise FairpruneError(ERR_AMOUNT.format(amount=amount))
    model = copy.deepcopy(model).cpu()
    head = head_of(model)
    params = [
        (m, "weight")
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear) and m is not head
    ]
    torch_prune.global_unstructured(
        params, pruning_method=torch_prune.L1Unstructured, amount=amount
    )
    for m, name in params:
        torch_prune.remove(m, name)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    total = sum(m.weight.numel() for m, _ in params)
    return model.eval(), zeros / total
