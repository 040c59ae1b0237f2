"""AutoBot (Castells & Yeom 2021) as Meyer & Wong ran it, with a cross-entropy or PW task loss.

A learnable gate b per output channel of every prunable convolution is applied after its batch
norm as sigmoid(β·b), starting about 90% open. Channels coupled through a residual add (one
Torch-Pruning dependency group, ``fairprune.prune.groups``) must be removed together, so they share one
gate vector: the same gate multiplies the channel after every batch norm of the group. That is the
limit of learning a gate per layer and averaging over the group, without the averaging step, and
it keeps the gate that is thresholded the gate that was trained. The network's weights are frozen;
only the gates train (Adam, cycling over the calibration batches) on

    task loss + λ_F · g(F) + λ_h · h,

where F is the FLOPs count made differentiable by counting *expected* open channels
(in × out × k² × output area per convolution), g = (F − F_t)/(F_0 − F_t) above the target F_t and
1 − F/F_t below it, and h = mean |σ − round(σ)| pushes gates to 0 or 1. The best gates of the last
40% of iterations are kept; a threshold on them is then binary-searched so that the kept channels'
MACs (counted by Torch-Pruning on the pruned network) hit the target, keeping at least one channel
per group, and those channels are removed structurally.
"""

from __future__ import annotations

import copy
import logging
import math

import torch
from torch import nn

from fairprune.config import PruneConfig
from fairprune.prune.groups import build_graph, channel_groups, prune_group
from fairprune.utils import Progress, pick_device

log = logging.getLogger(__name__)

BETA = 1.0  # gate temperature: gate = sigmoid(BETA * b)
INIT_OPEN = 0.9  # initial gate value
KEEP_LAST = 0.4  # best gates are taken from this last fraction of iterations


def _flops_terms(model: nn.Module, groups, input_size: int, device):
    """Per-layer terms of the differentiable FLOPs count: (group_in, group_out, const, fixed)."""
    areas: dict[nn.Module, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o: areas.__setitem__(mod, o.shape[2] * o.shape[3]))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size, device=device))
    for h in hooks:
        h.remove()
    out_of = {conv: gi for gi, g in enumerate(groups) for conv in g.out_convs}
    in_of = {conv: gi for gi, g in enumerate(groups) for conv in g.in_convs}
    lin_in = {lin: gi for gi, g in enumerate(groups) for lin in g.in_linears}
    terms = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m in areas:
            k2 = m.kernel_size[0] * m.kernel_size[1] * areas[m]
            depthwise = m.groups > 1 and m.groups == m.in_channels
            gin = None if depthwise else in_of.get(m)
            fixed_in = 1 if depthwise else m.in_channels // m.groups
            terms.append((gin, out_of.get(m), k2, fixed_in, m.out_channels))
        elif isinstance(m, nn.Linear):
            terms.append((lin_in.get(m), None, 1, m.in_features, m.out_features))
    return terms


def _flops(terms, open_counts: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros((), device=open_counts[0].device if open_counts else "cpu")
    for gin, gout, const, fixed_in, fixed_out in terms:
        cin = open_counts[gin] if gin is not None else fixed_in
        cout = open_counts[gout] if gout is not None else fixed_out
        total = total + cin * cout * const
    return total


def train_gates(
    model: nn.Module,
    config: PruneConfig,
    *,
    input_size: int,
    calib,
    progress: Progress | None = None,
):
    """Optimise the gates; returns (groups, best gate values per group, module names by group)."""
    from fairprune.prune.objective import task_loss

    device = pick_device(config.device)
    model = model.to(device).eval()  # eval: batch-norm statistics of the trained model
    graph = build_graph(model, input_size)  # traced through autograd: before freezing weights
    groups = channel_groups(model, graph)
    for p in model.parameters():
        p.requires_grad_(False)
    init = math.log(INIT_OPEN / (1 - INIT_OPEN)) / BETA
    gates = [torch.full((g.size,), init, device=device, requires_grad=True) for g in groups]
    hooks = []
    for gi, g in enumerate(groups):
        for m in g.act_modules:

            def hook(mod, inp, out, gi=gi):
                return out * torch.sigmoid(BETA * gates[gi])[None, :, None, None]

            hooks.append(m.register_forward_hook(hook))
    terms = _flops_terms(model, groups, input_size, device)
    f0 = _flops(terms, [torch.tensor(float(g.size), device=device) for g in groups]).detach()
    ft = (1.0 - config.target_reduction) * f0
    task = task_loss(config.criterion.startswith("pw_"), config)
    opt = torch.optim.Adam(gates, lr=config.autobot_lr)
    iters = max(1, config.autobot_iters)
    best, best_loss = None, math.inf
    try:
        for it in range(iters):
            x, y, dense = calib[it % len(calib)]
            x, y = x.to(device), y.to(device)
            dense = dense.to(device) if dense is not None else None
            sig = [torch.sigmoid(BETA * b) for b in gates]
            f = _flops(terms, [s.sum() for s in sig])
            g_term = (f - ft) / (f0 - ft) if f > ft else 1.0 - f / ft
            h_term = torch.cat([(s - s.round()).abs() for s in sig]).mean()
            loss = task(model(x), y, dense) + config.autobot_lambda_flops * g_term
            loss = loss + config.autobot_lambda_h * h_term
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if it >= (1 - KEEP_LAST) * iters and loss.item() < best_loss:
                best_loss = loss.item()
                best = [torch.sigmoid(BETA * b).detach().cpu().clone() for b in gates]
            if progress is not None and (it % 10 == 0 or it == iters - 1):
                progress(it + 1, iters, f"AutoBot gates: FLOPs {float(f / f0):.1%} of dense")
    finally:
        for h in hooks:
            h.remove()
        for p in model.parameters():
            p.requires_grad_(True)
    names = {m: n for n, m in model.named_modules()}
    return [names[g.root] for g in groups], best


def _apply_threshold(model: nn.Module, roots: list[str], scores, tau: float, input_size: int):
    pruned = copy.deepcopy(model).cpu()
    graph = build_graph(pruned, input_size)
    by_root = {g.root: g for g in channel_groups(pruned, graph)}
    modules = dict(pruned.named_modules())
    for name, s in zip(roots, scores, strict=True):
        group = by_root.get(modules[name])
        if group is None:
            continue
        keep = s > tau
        if not keep.any():
            keep[int(s.argmax())] = True  # at least one channel per layer
        prune_group(graph, group, torch.nonzero(~keep).flatten().tolist())
    return pruned


def prune(
    model: nn.Module,
    config: PruneConfig,
    *,
    input_size: int,
    calib,
    progress: Progress | None = None,
) -> nn.Module:
    """AutoBot-prune ``model`` (modified: pass a copy) to ``config.target_reduction``.

    Returns
    -------
    nn.Module
        The structurally pruned model on the CPU, weights unchanged except removed channels.
    """
    from fairprune.nets.flops import count_macs_params

    roots, scores = train_gates(
        model, config, input_size=input_size, calib=calib, progress=progress
    )
    model = model.cpu()
    macs0, _ = count_macs_params(model, input_size)
    lo, hi = 0.0, 1.0
    best, best_err = None, math.inf
    below, below_reached = model, 0.0  # closest candidate short of the target
    for _ in range(30):
        tau = (lo + hi) / 2
        candidate = _apply_threshold(model, roots, scores, tau, input_size)
        reached = 1.0 - count_macs_params(candidate, input_size)[0] / macs0
        err = abs(reached - config.target_reduction)
        if err < best_err:
            best, best_err = candidate, err
        if reached < config.target_reduction and reached > below_reached:
            below, below_reached = candidate, reached
        if err <= config.tolerance / 2:
            break
        if reached < config.target_reduction:
            lo = tau
        else:
            hi = tau
    log.info("AutoBot threshold search: %.4f from target", best_err)
    if best_err > config.tolerance:
        # gate values can jump over the target when few channels separate two thresholds:
        # return the closest model short of it; targeting.TopUp tops it up channel by channel
        return below
    return best
