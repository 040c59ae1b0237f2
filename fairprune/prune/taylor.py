"""Iterative Taylor pruning (Molchanov et al. 2017) as the reference code runs it.

Repeat until the FLOPs target is reached: score every channel by |mean over batch and space of
activation × gradient| of the loss (cross-entropy, or the PW loss against the dense outputs),
normalised per layer by its L2 norm (Molchanov et al.'s layer-wise rescaling), remove the
lowest-scoring channels, then train a few batches (SGD). The reference removes one channel per
step; to keep large networks tractable, a step removes about half of the channels whose removal
would close the remaining FLOPs gap (at most 2% of all channels, at least one), so steps shrink to
single channels near the target.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from fairprune.config import PruneConfig
from fairprune.prune.groups import build_graph, channel_groups, prune_group
from fairprune.utils import Progress, pick_device

log = logging.getLogger(__name__)

MAX_STEP_FRACTION = 0.02  # at most this share of all channels is removed in one step
MAX_STEPS = 2000


def taylor_scores(model: nn.Module, groups, batch, loss_fn, device) -> list[torch.Tensor]:
    """Per-group channel scores |mean_{b,h,w}(a · ∂L/∂a)|, L2-normalised per group."""
    acts: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(groups))}
    hooks = []
    for gi, g in enumerate(groups):
        for m in g.act_modules:

            def hook(mod, inp, out, gi=gi):
                out.retain_grad()
                acts[gi].append(out)

            hooks.append(m.register_forward_hook(hook))
    x, y, dense = batch
    model.zero_grad(set_to_none=True)
    try:
        logits = model(x.to(device))  # (B, K)
        loss_fn(logits, y.to(device), dense.to(device) if dense is not None else None).backward()
    finally:
        for h in hooks:
            h.remove()
    scores = []
    for gi in range(len(groups)):
        s = torch.zeros(groups[gi].size, device=device)
        for a in acts[gi]:
            s = s + (a * a.grad).mean(dim=(0, 2, 3)).abs()  # (C,)
        scores.append((s / (s.norm() + 1e-12)).detach().cpu())
    model.zero_grad(set_to_none=True)
    return scores


def prune(
    model: nn.Module,
    config: PruneConfig,
    *,
    input_size: int,
    calib,
    progress: Progress | None = None,
) -> nn.Module:
    """Iteratively Taylor-prune ``model`` (modified: pass a copy) to ``config.target_reduction``."""
    from fairprune.nets.flops import count_macs_params
    from fairprune.prune.objective import task_loss

    device = pick_device(config.device)
    loss_fn = task_loss(config.criterion.startswith("pw_"), config)
    model = model.cpu()
    macs0, _ = count_macs_params(model, input_size)
    target_macs = (1.0 - config.target_reduction) * macs0
    batch_i = 0
    for step in range(MAX_STEPS):
        macs, _ = count_macs_params(model.cpu(), input_size)
        reached = 1.0 - macs / macs0
        if progress is not None:
            progress(min(reached, config.target_reduction), config.target_reduction,
                     f"iterative Taylor step {step}: {reached:.1%} FLOPs reduction")  # fmt: skip
        if macs <= target_macs + config.tolerance * macs0 / 2:
            break
        model.to(device).eval()
        graph = build_graph(model, input_size)
        groups = channel_groups(model, graph)
        if not groups:
            break
        scores = taylor_scores(model, groups, calib[batch_i % len(calib)], loss_fn, device)
        batch_i += 1
        total = sum(g.size for g in groups)
        # each removed channel costs about 2·macs/total (it leaves one layer's outputs and the
        # next layer's inputs); remove half of what would close the gap
        gap = (macs - target_macs) / macs
        n_remove = int(max(1, min(MAX_STEP_FRACTION * total, 0.5 * gap * total / 2)))
        candidates = [(float(s[c]), gi, c) for gi, s in enumerate(scores) for c in range(len(s))]
        candidates.sort()
        chosen: dict[int, list[int]] = {}
        for _score, gi, c in candidates:
            if len(chosen.get(gi, [])) >= groups[gi].size - 1:
                continue  # never empty a layer
            chosen.setdefault(gi, []).append(c)
            if sum(len(v) for v in chosen.values()) >= n_remove:
                break
        if not chosen:
            break
        model.cpu()
        graph = build_graph(model, input_size)
        groups = channel_groups(model, graph)
        for gi, idxs in chosen.items():
            prune_group(graph, groups[gi], idxs)
        _train_steps(model, calib, loss_fn, config, device, start=batch_i)
        batch_i += config.taylor_step_batches
    return model.cpu().eval()


def _train_steps(model, calib, loss_fn, config: PruneConfig, device, start: int) -> None:
    """A few SGD steps between removals, as the reference does."""
    if config.taylor_step_batches <= 0:
        return
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=config.taylor_step_lr, momentum=0.9)
    for i in range(config.taylor_step_batches):
        x, y, dense = calib[(start + i) % len(calib)]
        loss = loss_fn(
            model(x.to(device)), y.to(device), dense.to(device) if dense is not None else None
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
