"""FairPrune (Wu, Zeng, Xu, Shi & Hu, MICCAI 2022, arXiv 2203.02110): prune by group saliency gap.

The paper scores each parameter θ_i with the second-order saliency of Optimal Brain Damage,

    S_i(D) = ½ · θ_i² · H_ii(D)                                   (saliency, per group)

where H_ii(D) is the diagonal of the Hessian of the cross-entropy over the samples D of one
group. With D_u the unprivileged group (lower dense accuracy) and D_p the privileged group, the
fairness-aware score is the β-weighted difference

    S_i = S_i(D_u) − β · S_i(D_p),   β in (0, 1]                   (FairPrune objective)

and the parameters with the **smallest** S_i are pruned: those that matter little to the
unprivileged group but much to the privileged one. Removing them costs the privileged group more
accuracy than the unprivileged group, which is how FairPrune narrows the gap; β < 1 damps that
trade so the privileged group's accuracy is not given away wholesale. (Pruning the largest S_i
instead would widen the gap: the sign matters, and the tests check it.)

Following the paper, the saliencies are averaged over calibration batches and each prunable
layer (conv and linear weights; never the classifier head, never biases or BN parameters) is
pruned to the same sparsity. FairPrune itself is one post-hoc pruning step; the sweep then
fine-tunes every pruned model alike (the protocol every criterion shares). With more than two
groups the privileged group is the one with
the best dense accuracy on the calibration samples and the unprivileged one the worst (ties
broken by the lower mean loss), unless the configuration names them.

The Hessian diagonal is exact (``fairprune.prune.hessian``: BackPACK's ``DiagHessian``, its
exact Gauss–Newton diagonal where that equals the Hessian's, i.e. ReLU networks with batch norm
and residual adds, or per-weight Hessian-vector products for small networks); the method used is
logged.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.prune.hessian import hessian_diagonal
from fairprune.prune.objective import calibration_batches, resolve_group
from fairprune.prune.unstructured import (
    apply_masks,
    layer_keep_count,
    prunable_weights,
    sparsity_target,
    weight_sparsity,
)
from fairprune.utils import Progress, pick_device, seed_everything

log = logging.getLogger(__name__)

ERR_BETA = "FairPrune's beta must be in (0, 1], got {beta}; the paper studies 0.1 to 0.9."
ERR_ONE_GROUP = (
    "FairPrune compares two groups but the calibration batches hold only {n}; raise "
    "calib_batches or check the dataset's group column."
)
ERR_SAME_GROUP = "FairPrune's privileged and unprivileged groups are both {group!r}; pick two."
ERR_GROUP_ABSENT = (
    "the calibration batches hold no samples of group {group!r}; raise calib_batches or name "
    "another group."
)


def group_accuracy(model: nn.Module, batches) -> tuple[dict[int, float], dict[int, float]]:
    """Dense accuracy and mean loss per group over ``batches`` of (x, y, g)."""
    right: dict[int, float] = {}
    loss: dict[int, float] = {}
    count: dict[int, int] = {}
    model.eval()
    with torch.no_grad():
        for x, y, g in batches:
            logits = model(x)  # (B, K)
            if logits.shape[1] == 1:
                pred = (logits[:, 0] > 0).long()
                per = F.binary_cross_entropy_with_logits(logits[:, 0], y.float(), reduction="none")
            else:
                pred = logits.argmax(dim=1)
                per = F.cross_entropy(logits, y, reduction="none")  # (B,)
            for gi in torch.unique(g).tolist():
                sel = g == gi
                right[gi] = right.get(gi, 0.0) + float((pred[sel] == y[sel]).sum())
                loss[gi] = loss.get(gi, 0.0) + float(per[sel].sum())
                count[gi] = count.get(gi, 0) + int(sel.sum())
    return (
        {gi: right[gi] / count[gi] for gi in count},
        {gi: loss[gi] / count[gi] for gi in count},
    )


def choose_groups(model, batches, config, group_names=None) -> tuple[int, int]:
    """(privileged, unprivileged) group indices: named in ``config`` or best/worst dense group."""
    acc, loss = group_accuracy(model, batches)
    if len(acc) < 2:
        raise FairpruneError(ERR_ONE_GROUP.format(n=len(acc)))
    # best accuracy first; among equals the lower loss is better
    ranked = sorted(acc, key=lambda gi: (-acc[gi], loss[gi], gi))
    priv = resolve_group(config.fairprune_privileged, group_names)
    unpriv = resolve_group(config.fairprune_unprivileged, group_names)
    priv = ranked[0] if priv is None else priv
    unpriv = ranked[-1] if unpriv is None else unpriv
    if priv == unpriv:
        name = group_names[priv] if group_names and priv < len(group_names) else priv
        raise FairpruneError(ERR_SAME_GROUP.format(group=name))
    for gi in (priv, unpriv):
        if gi not in acc:
            name = group_names[gi] if group_names and gi < len(group_names) else gi
            raise FairpruneError(ERR_GROUP_ABSENT.format(group=name))
    return priv, unpriv


def fairprune_saliency(
    model: nn.Module, batches, privileged: int, unprivileged: int, beta: float
) -> tuple[dict[str, torch.Tensor], str]:
    """S = ½ θ² (H_ii(D_u) − β H_ii(D_p)) per prunable weight; prune the smallest.

    Parameters
    ----------
    model : nn.Module
    batches : list of (x, y, g)
        Calibration batches with group indices.
    privileged, unprivileged : int
        Group indices p and u.
    beta : float
        β in (0, 1].

    Returns
    -------
    (dict, str)
        Prunable-layer name → saliency (same shape as its weight), and the Hessian method used.
    """
    per_group = {}
    how = ""
    for gi in (unprivileged, privileged):
        sub = [(x[g == gi], y[g == gi]) for x, y, g in batches]
        per_group[gi], how = hessian_diagonal(model, sub)
    layers = dict(prunable_weights(model))
    out = {}
    for name, m in layers.items():
        theta2 = m.weight.detach() ** 2
        out[name] = (
            0.5 * theta2 * (per_group[unprivileged][name] - beta * per_group[privileged][name])
        )
    return out, how


def prune(
    model: nn.Module,
    config,
    *,
    split,
    progress: Progress | None = None,
    group_names: list[str] | None = None,
) -> tuple[nn.Module, float]:
    """FairPrune to ``config.target_reduction`` weight sparsity (``CRITERIA["fairprune"]``).

    Parameters
    ----------
    model : nn.Module
        The trained dense model; never modified.
    config : PruneConfig
        ``target_reduction`` (weight sparsity), ``fairprune_beta``, ``fairprune_privileged``,
        ``fairprune_unprivileged``, ``calib_batches``, ``calib_batch_size``, ``seed``.
    split : SplitData
        The training split; its group labels define the groups.
    group_names : list of str, optional
        Names of the group indices, to resolve named groups.

    Returns
    -------
    (nn.Module, float)
        A pruned copy (zeros in place) and the weight sparsity reached over the prunable weights.
    """
    target = sparsity_target(config)
    beta = float(config.fairprune_beta)
    if not 0.0 < beta <= 1.0:
        raise FairpruneError(ERR_BETA.format(beta=beta))
    seed_everything(config.seed)
    device = pick_device(config.device)
    model = copy.deepcopy(model).to(device).eval()
    batches = [
        (x.to(device), y.to(device), g.to(device)) for x, y, g in calibration_batches(split, config)
    ]
    priv, unpriv = choose_groups(model, batches, config, group_names)
    if progress is not None:
        progress(0, 2, "FairPrune: Hessian diagonals per group")
    saliency, how = fairprune_saliency(model, batches, priv, unpriv, beta)
    log.info("FairPrune: privileged %s, unprivileged %s, Hessian by %s", priv, unpriv, how)
    masks = {}
    for name, m in prunable_weights(model):
        s = saliency[name].reshape(-1).cpu().numpy().astype(np.float64)
        mag = m.weight.detach().abs().reshape(-1).cpu().numpy()
        order = np.lexsort((mag, s))  # smallest saliency first; among equals the smaller |w|
        keep = np.ones(s.size, dtype=bool)
        keep[order[: s.size - layer_keep_count(s.size, target)]] = False
        masks[name] = torch.from_numpy(keep).view_as(m.weight)
    apply_masks(model, masks)
    if progress is not None:
        progress(2, 2, f"FairPrune: {weight_sparsity(model):.1%} weight sparsity")
    model = model.cpu().eval()
    return model, weight_sparsity(model)
