"""FairGRAPE (Lin, Kim & Joo, ECCV 2022, arXiv 2207.10888): keep each group's share of importance.

For every prunable weight w and group g the importance is

    I_g(w) = Σ_batches (w · ∂L_g/∂w)²

with L_g the mean cross-entropy over the batch's samples of group g. In each layer the weights to
keep are chosen greedily: the group whose share of the importance kept so far lies furthest below
its share in the layer before this round (its target) takes its next most important weight not
yet kept, until the layer's keep count is reached. Pruning proceeds in rounds that each keep
``fairgrape_keep_per_iter`` (0.9 in the reference code) of the remaining weights, every layer to
the same sparsity, until the target weight sparsity; between rounds importance is recomputed after
a short fine-tune (a few SGD steps on training batches, pruned weights held at zero).

Differences from the reference code (``Bernardo1998/FairGRAPE``, ``prune.py``), on purpose:

- its importance loop calls ``optimizer.step()`` after each group's backward pass, so the weights
  move while importance is being measured and later groups are scored on a different network;
  here gradients are only collected (no optimizer step), with batch norm in eval mode;
- it re-picks the most deficient group every ``para_batch + 1`` pointer moves; here every
  ``fairgrape_batch`` kept weights (1: the exact greedy rule of the paper);
- the classifier head is never pruned (a rule of this project), where the reference also prunes
  the last linear layer.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math

import numpy as np
import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.prune.objective import calibration_batches, task_loss
from fairprune.prune.unstructured import (
    apply_masks,
    layer_keep_count,
    prunable_weights,
    sparsity_target,
    weight_sparsity,
)
from fairprune.utils import Progress, pick_device, seed_everything

log = logging.getLogger(__name__)

ERR_KEEP = "FairGRAPE's keep fraction per round must be in (0, 1), got {keep}; the paper uses 0.9."
ERR_BATCH = "FairGRAPE's greedy batch must be >= 1, got {batch}."
ERR_KEEP_COUNT = "cannot keep {keep} of {n} candidate weights."


def greedy_keep(
    importance: np.ndarray,
    keep: int,
    *,
    target: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    tiebreak: np.ndarray | None = None,
    batch: int = 1,
) -> np.ndarray:
    """FairGRAPE's greedy selection of the weights one layer keeps.

    Parameters
    ----------
    importance : ndarray, shape (n, G)
        Per-weight, per-group importance (non-negative).
    keep : int
        How many weights to keep, at most the number of candidates.
    target : ndarray, shape (G,), optional
        Each group's target share of the kept importance; by default its share of the candidates'
        total importance (uniform when that total is 0).
    candidates : ndarray of bool, shape (n,), optional
        Weights that may be kept (those not pruned in an earlier round); default all.
    tiebreak : ndarray, shape (n,), optional
        Among equal importance the larger value is kept first (e.g. ``|w|``); default index order.
    batch : int
        Weights taken from the chosen group before the deficits are compared again.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for kept weights; exactly ``keep`` of them.

    Notes
    -----
    Shares start uniform (1/G each, as in the reference code) before anything is kept; then, in
    turn, the group g minimising ``share_g − target_g`` takes its next most important candidate
    not yet kept, and every group's kept importance grows by that weight's importance for it.
    """
    importance = np.asarray(importance, dtype=np.float64)
    n, groups = importance.shape
    cand = np.arange(n) if candidates is None else np.flatnonzero(candidates)
    if not 0 <= keep <= len(cand):
        raise FairpruneError(ERR_KEEP_COUNT.format(keep=keep, n=len(cand)))
    if batch < 1:
        raise FairpruneError(ERR_BATCH.format(batch=batch))
    sub = importance[cand]  # (m, G)
    if target is None:
        total = sub.sum(axis=0)
        target = total / total.sum() if total.sum() > 0 else np.full(groups, 1.0 / groups)
    target_l = [float(t) for t in target]
    tb = np.zeros(len(cand)) if tiebreak is None else np.asarray(tiebreak, dtype=np.float64)[cand]
    # per group: candidates by importance, then tiebreak, both descending; stable in index order
    orders = [np.lexsort((-tb, -sub[:, g])).tolist() for g in range(groups)]
    rows = sub.tolist()
    kept = bytearray(len(cand))
    sums = [0.0] * groups
    share = [1.0 / groups] * groups
    ptr = [0] * groups
    count = 0
    while count < keep:
        g = min(range(groups), key=lambda k: share[k] - target_l[k])
        order, p = orders[g], ptr[g]
        for _ in range(batch):
            while kept[order[p]]:  # already kept for another group: skip
                p += 1
            i = order[p]
            kept[i] = 1
            p += 1
            count += 1
            for k, v in enumerate(rows[i]):
                sums[k] += v
            if count >= keep:
                break
        ptr[g] = p
        total = sum(sums)
        share = [s / total for s in sums] if total > 0 else [1.0 / groups] * groups
    out = np.zeros(n, dtype=bool)
    out[cand[np.frombuffer(bytes(kept), dtype=np.uint8).astype(bool)]] = True
    return out


def group_importance(model: nn.Module, batches, groups: int, device) -> dict[str, torch.Tensor]:
    """Σ over batches of (w · ∂L_g/∂w)² per prunable layer: name → (numel, G) float64.

    No optimizer step is taken: the weights stay those being scored.
    """
    loss_fn = task_loss(False, None)
    layers = prunable_weights(model)
    weights = [m.weight for _, m in layers]
    out = {name: torch.zeros(m.weight.numel(), groups, dtype=torch.float64) for name, m in layers}
    model.eval()  # batch norm keeps the trained statistics while scoring
    for x, y, g in batches:
        x, y, g = x.to(device), y.to(device), g.to(device)
        logits = model(x)  # (B, K)
        present = torch.unique(g).tolist()
        for j, gi in enumerate(present):
            sel = g == gi
            loss = loss_fn(logits[sel], y[sel], None)
            grads = torch.autograd.grad(loss, weights, retain_graph=j < len(present) - 1)
            for (name, m), grad in zip(layers, grads, strict=True):
                imp = (m.weight.detach() * grad).double() ** 2
                out[name][:, gi] += imp.reshape(-1).cpu()
    return out


def _schedule(target: float, keep_per_iter: float) -> list[float]:
    """Cumulative sparsity after each round: 1 − keep^r, capped at the target."""
    rounds = max(1, math.ceil(math.log(1.0 - target) / math.log(keep_per_iter) - 1e-9))
    return [min(1.0 - keep_per_iter**r, target) for r in range(1, rounds)] + [target]


def prune(
    model: nn.Module,
    config,
    *,
    split,
    progress: Progress | None = None,
    group_names: list[str] | None = None,
) -> tuple[nn.Module, float]:
    """FairGRAPE to ``config.target_reduction`` weight sparsity (``CRITERIA["fairgrape"]``).

    Parameters
    ----------
    model : nn.Module
        The trained dense model; never modified.
    config : PruneConfig
        ``target_reduction`` (weight sparsity), ``fairgrape_keep_per_iter``,
        ``fairgrape_step_batches``, ``fairgrape_step_lr``, ``fairgrape_batch``,
        ``calib_batches``, ``calib_batch_size``, ``seed``.
    split : SplitData
        The training split: calibration batches and the short fine-tunes come from it.

    Returns
    -------
    (nn.Module, float)
        A pruned copy (zeros in place) and the weight sparsity reached over the prunable weights.
    """
    target = sparsity_target(config)
    keep_per_iter = float(config.fairgrape_keep_per_iter)
    if not 0.0 < keep_per_iter < 1.0:
        raise FairpruneError(ERR_KEEP.format(keep=keep_per_iter))
    seed_everything(config.seed)
    device = pick_device(config.device)
    model = copy.deepcopy(model).to(device).eval()
    batches = calibration_batches(split, config)
    groups = len(group_names) if group_names else int(split.groups.max()) + 1 if len(split) else 1
    masks = {name: m.weight.detach().ne(0).cpu() for name, m in prunable_weights(model)}
    schedule = _schedule(target, keep_per_iter)
    for r, sparsity in enumerate(schedule):
        importance = group_importance(model, batches, groups, device)
        modules = dict(model.named_modules())
        for name, imp in importance.items():
            mask = masks[name].reshape(-1).numpy()
            keep = min(int(mask.sum()), layer_keep_count(mask.size, sparsity))
            if keep == int(mask.sum()):
                continue
            w = modules[name].weight.detach().abs().reshape(-1).cpu().numpy()
            kept = greedy_keep(
                imp.numpy(), keep, candidates=mask, tiebreak=w, batch=config.fairgrape_batch
            )
            masks[name] = torch.from_numpy(kept).view_as(masks[name])
        apply_masks(model, masks)
        if progress is not None:
            progress(r + 1, len(schedule), f"FairGRAPE round {r + 1}/{len(schedule)}: "
                     f"{weight_sparsity(model):.1%} weight sparsity")  # fmt: skip
        if r < len(schedule) - 1:
            _short_finetune(model, split, masks, config, device, round_=r)
    model = model.cpu().eval()
    return model, weight_sparsity(model)


def _short_finetune(model, split, masks, config, device, round_: int) -> None:
    """A few SGD steps between rounds; pruned weights get no gradient and stay exactly zero."""
    if config.fairgrape_step_batches <= 0:
        return
    loss_fn = task_loss(False, None)
    modules = dict(model.named_modules())
    masked = [(modules[name].weight, keep.to(device)) for name, keep in masks.items()]
    opt = torch.optim.SGD(model.parameters(), lr=config.fairgrape_step_lr, momentum=0.9)
    model.train()
    seed = config.seed * 1000 + round_ + 1  # a different slice of training data each round
    batches = split.batches(config.calib_batch_size, shuffle=True, seed=seed)
    for x, y, _g, _idx in itertools.islice(batches, config.fairgrape_step_batches):
        loss = loss_fn(model(x.to(device)), y.to(device), None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for w, keep in masked:
            if w.grad is not None:
                w.grad.mul_(keep)
        opt.step()
        apply_masks(model, masks)
    model.eval()
