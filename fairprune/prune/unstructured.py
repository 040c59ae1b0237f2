"""Unstructured pruning: single weights are zeroed in place; weight sparsity, no FLOPs reduction.

The shared pieces of every unstructured criterion live here: which weights may be pruned (conv
and linear weights, never the classifier head), masks applied in place, and the sparsity reached.
Global magnitude pruning (``unstructured_prune``) is the simplest criterion of the family;
``fairgrape`` and ``hessian_saliency`` are the fairness-aware ones. ``ZeroWeights`` gives each of
them the one criterion interface, ``prune(model, config, context) -> PruneResult``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from fairprune.config import PruneConfig
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import head_of
from fairprune.nets.flops import count_macs_params
from fairprune.prune.context import PruneContext, PruneResult

ERR_AMOUNT = "unstructured sparsity must be in [0, 1), got {amount}."
ERR_SPARSITY = "the weight-sparsity target must be in (0, 1), got {target}; e.g. 0.5."
ERR_NEEDS_SPLIT = (
    "the {name!r} criterion needs the training split (split) to draw its calibration batches from."
)


@dataclass(frozen=True)
class ZeroWeights:
    """``prune(model, config, context)`` of an unstructured criterion.

    ``run`` zeroes single weights of a copy to ``config.target_reduction`` weight sparsity; the
    MACs are counted before and after (unchanged: dense kernels still multiply the zeros).
    """

    run: Callable[..., tuple[nn.Module, float]]
    # run(model, config, *, split, progress, group_names) -> (copy with zeros, weight sparsity)
    needs_data: bool = False  # draws calibration batches from ``context.split``

    def __call__(self, model: nn.Module, config: PruneConfig, context: PruneContext) -> PruneResult:
        if self.needs_data and context.split is None:
            raise FairpruneError(ERR_NEEDS_SPLIT.format(name=config.criterion))
        pruned, sparsity = self.run(
            model,
            config,
            split=context.split,
            progress=context.progress,
            group_names=context.group_names,
        )
        macs0, params0 = count_macs_params(model, context.input_size)
        macs1, params1 = count_macs_params(pruned, context.input_size)
        reduction = 1.0 - macs1 / macs0 if macs0 else 0.0
        return PruneResult(pruned, macs0, macs1, params0, params1, reduction, None, sparsity)


def sparsity_target(config) -> float:
    """``config.target_reduction`` as the weight-sparsity target of a fairness-aware criterion.

    Raises
    ------
    FairpruneError
        ``ERR_SPARSITY`` outside (0, 1).
    """
    target = float(config.target_reduction)
    if not 0.0 < target < 1.0:
        raise FairpruneError(ERR_SPARSITY.format(target=target))
    return target


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (module name, module) pairs whose ``weight`` unstructured criteria may zero.

    Conv and linear layers, in ``named_modules`` order; the classifier head is never pruned.
    """
    head = head_of(model)
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear) and m is not head
    ]


def weight_sparsity(model: nn.Module) -> float:
    """Share of exact zeros among the prunable weights (0.0 when there are none)."""
    layers = prunable_weights(model)
    total = sum(m.weight.numel() for _, m in layers)
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    return zeros / total if total else 0.0


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero, in place, every weight whose mask entry is False (``masks``: module name → bool)."""
    modules = dict(model.named_modules())
    for name, keep in masks.items():
        w = modules[name].weight
        w.mul_(keep.to(device=w.device, dtype=w.dtype))


def layer_keep_count(numel: int, sparsity: float) -> int:
    """Weights a layer of ``numel`` keeps at ``sparsity`` (at least one, so no layer dies)."""
    return max(1, int(round(numel * (1.0 - sparsity))))


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
    params = [(m, "weight") for _, m in prunable_weights(model)]
    torch_prune.global_unstructured(
        params, pruning_method=torch_prune.L1Unstructured, amount=amount
    )
    for m, name in params:
        torch_prune.remove(m, name)
    return model.eval(), weight_sparsity(model)


def prune(model: nn.Module, config, *, split=None, progress=None, group_names=None):
    """Global magnitude pruning to ``config.target_reduction`` (``CRITERIA["unstructured"]``).

    Needs no data; the keyword arguments are those every unstructured criterion's ``run`` takes.
    """
    return unstructured_prune(model, float(config.target_reduction))
