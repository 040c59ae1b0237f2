"""Prune to a FLOPs-reduction target: a uniform channel ratio searched, then a global top-up.

The structured criteria's ``prune(model, config, context)`` (``fairprune.prune.context``):
``RatioSearch`` for a Torch-Pruning importance (random, magnitude, Taylor), ``TopUp`` for a
criterion with a loop of its own (AutoBot, iterative Taylor) that may stop short of the target.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from fairprune.config import PruneConfig
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import head_of
from fairprune.nets.flops import count_macs_params
from fairprune.prune.context import PruneContext, PruneResult
from fairprune.prune.groups import build_graph
from fairprune.prune.objective import accumulate_gradients, task_loss
from fairprune.utils import pick_device

log = logging.getLogger(__name__)


ERR_TARGET_RANGE = "the FLOPs-reduction target must be in (0, 1), got {target}; e.g. 0.75."


ERR_UNREACHABLE = (
    "a {target:.2%} FLOPs reduction is out of reach for this model: at most {best:.2%} keeps "
    "{keep} in every layer with at most {cap:.0%} of each layer's channels removed; choose a "
    "lower target or raise max_layer_ratio{or_round}."
)


def unreachable(target: float, best: float, cap: float, round_to: int = 1) -> str:
    """The one-line error for a FLOPs target beyond what the layer limits allow."""
    keep = "a channel" if round_to <= 1 else f"{round_to} channels (round_to)"
    or_round = "" if round_to <= 1 else " or lower round_to"
    return ERR_UNREACHABLE.format(target=target, best=best, keep=keep, cap=cap, or_round=or_round)


ERR_TOLERANCE = (
    "no channel ratio reaches {target:.2%} FLOPs reduction within {tol:.1f} points (closest: "
    "{best:.2%}); the model is too small for that step, choose a nearby target or a larger tolerance."
)


ERR_NEEDS_DATA = "the {name!r} criterion needs calibration batches of training data (calib)."


@dataclass(frozen=True)
class RatioSearch:
    """``prune(model, config, context)`` of a Torch-Pruning importance: the FLOPs ratio search.

    Called by ``CRITERIA[name].prune`` (``prune_model``); see ``search_ratio``.
    """

    importance: Callable[[], object]  # a fresh tp importance for each pruning step
    needs_data: bool = False  # scores read the task loss's gradients over ``context.calib``

    def __call__(self, model: nn.Module, config: PruneConfig, context: PruneContext) -> PruneResult:
        return search_ratio(model, config, context, self)


@dataclass(frozen=True)
class TopUp:
    """``prune(model, config, context)`` of a criterion with a loop of its own (AutoBot, iterative
    Taylor): ``run`` prunes toward the target; if it stops short, the remaining few channels are
    removed by magnitude, network-wide."""

    run: Callable[..., nn.Module]  # run(model, config, *, input_size, calib, progress) -> model
    needs_data: bool = True  # the loop reads ``context.calib``

    def __call__(self, model: nn.Module, config: PruneConfig, context: PruneContext) -> PruneResult:
        return _run_and_top_up(model, config, context, self)


MAGNITUDE = RatioSearch(lambda: tp.importance.GroupMagnitudeImportance(p=1))
"""The L1 ranking the top-ups remove the last channels by."""


def _check(config: PruneConfig, context: PruneContext, needs_data: bool) -> float:
    target = float(config.target_reduction)
    if not 0.0 < target < 1.0:
        raise FairpruneError(ERR_TARGET_RANGE.format(target=target))
    if needs_data and not context.calib:
        raise FairpruneError(ERR_NEEDS_DATA.format(name=config.criterion))
    return target


def _run_and_top_up(
    model: nn.Module, config: PruneConfig, context: PruneContext, loop: TopUp
) -> PruneResult:
    target = _check(config, context, loop.needs_data)
    input_size = context.input_size
    base = copy.deepcopy(model).cpu().eval()
    macs0, params0 = count_macs_params(base, input_size)
    pruned = loop.run(
        base, config, input_size=input_size, calib=context.calib, progress=context.progress
    )
    macs1, params1 = count_macs_params(pruned, input_size)
    reached = 1.0 - macs1 / macs0
    if target - reached > config.tolerance:
        # short of the target: remove the remaining few channels by magnitude, network-wide
        reached, pruned = _refine_globally(pruned, MAGNITUDE, config, input_size, macs0, None)
        macs1, params1 = count_macs_params(pruned, input_size)
    if abs(reached - target) > config.tolerance:
        raise FairpruneError(
            ERR_TOLERANCE.format(target=target, tol=config.tolerance * 100, best=reached)
        )
    return PruneResult(pruned.eval(), macs0, macs1, params0, params1, reached, None)


def _prune_once(
    base: nn.Module,
    spec: RatioSearch,
    ratio: float,
    cfg,
    input_size,
    *,
    global_pruning: bool = False,
) -> nn.Module:
    model = copy.deepcopy(base)
    for p_new, p_old in zip(model.parameters(), base.parameters(), strict=True):
        if p_old.grad is not None:  # Taylor importance reads .grad, which deepcopy drops
            p_new.grad = p_old.grad.clone()
    example = torch.zeros(1, 3, input_size, input_size)
    torch.manual_seed(cfg.seed)  # random importance
    pruner = tp.pruner.BasePruner(
        model,
        example,
        importance=spec.importance(),
        pruning_ratio=ratio,
        max_pruning_ratio=cfg.max_layer_ratio,
        ignored_layers=[head_of(model)],
        global_pruning=global_pruning,
        round_to=cfg.round_to if getattr(cfg, "round_to", 1) > 1 else None,
    )
    pruner.step()
    model.zero_grad(set_to_none=True)
    return model


def search_ratio(
    model: nn.Module, config: PruneConfig, context: PruneContext, spec: RatioSearch
) -> PruneResult:
    """Prune a copy of ``model`` to ``config.target_reduction`` FLOPs reduction with one importance.

    A uniform channel ratio is binary-searched; when whole channels jump over the target, the
    remaining few are removed by a global ranking from the closest model below it.

    Parameters
    ----------
    model : nn.Module
        Trained dense (or already pruned) model; never modified.
    config : PruneConfig
    context : PruneContext
        ``input_size`` (tracing and MAC counting); ``calib``, batches of (x, y, dense_logits),
        when ``spec.needs_data`` (``dense_logits`` are the dense model's outputs for the PW
        forms); ``progress(step, total, info)`` during the search.
    spec : RatioSearch

    Returns
    -------
    PruneResult
    """
    target = _check(config, context, spec.needs_data)
    input_size, calib, progress = context.input_size, context.calib, context.progress
    base = copy.deepcopy(model).cpu().eval()
    macs0, params0 = count_macs_params(base, input_size)
    if spec.needs_data:
        pw = config.criterion.startswith("pw_")
        accumulate_gradients(base, calib, task_loss(pw, config), pick_device(config.device))

    def reduction_at(ratio: float) -> tuple[float, nn.Module]:
        pruned = _prune_once(base, spec, ratio, config, input_size)
        macs, _ = count_macs_params(pruned, input_size)
        return 1.0 - macs / macs0, pruned

    # Torch-Pruning skips a layer whose kept channels would round down to zero (to fewer than
    # round_to), so ratios above 1 - r/C (C: the narrowest prunable layer) stop pruning that
    # layer: cap the search there
    widths = _conv_widths(base)
    r = max(int(getattr(config, "round_to", 1)), 1)
    narrowest = min(widths.values(), default=0)
    hi = min(config.max_layer_ratio, 1.0 - r / max(narrowest, 1) - 1e-6) if widths else 0.0
    best_red, best_model = reduction_at(hi)
    best_ratio = hi
    if best_red < target - config.tolerance and r > 1:
        # a uniform ratio stops where the narrowest layer keeps one block of round_to channels;
        # the wider layers can still give whole blocks, one group at a time
        best_red, best_model = _refine_aligned(
            best_model, spec, config, input_size, macs0, calib, widths
        )
        best_ratio = None
    if best_red < target - config.tolerance:
        raise FairpruneError(unreachable(target, best_red, config.max_layer_ratio, r))
    lo = 0.0
    below = (0.0, base)  # the closest model short of the target
    steps = 24
    for step in range(steps):
        if abs(best_red - target) <= config.tolerance:
            break
        mid = (lo + hi) / 2
        red, pruned = reduction_at(mid)
        if abs(red - target) < abs(best_red - target):
            best_red, best_model, best_ratio = red, pruned, mid
        if red < target:
            lo = mid
            below = max(below, (red, pruned), key=lambda t: t[0])
        else:
            hi = mid
        if progress is not None:
            progress(step + 1, steps, f"ratio {mid:.3f} → {red:.2%} FLOPs reduction")
        if hi - lo < 1e-4:
            break
    if abs(best_red - target) > config.tolerance:
        # uniform ratios move every layer by whole channels at once, which can jump over the
        # target on narrow networks; close the rest by removing the least important channels
        # network-wide (global ranking) from the closest uniform model below the target
        red, pruned = _refine_globally(below[1], spec, config, input_size, macs0, calib)
        if abs(red - target) < abs(best_red - target):
            best_red, best_model, best_ratio = red, pruned, None
    if abs(best_red - target) > config.tolerance and r > 1:
        # whole blocks of round_to channels from a global ranking jump too far: one group's
        # block at a time from the closest uniform model below the target
        red, pruned = _refine_aligned(below[1], spec, config, input_size, macs0, calib, widths)
        if abs(red - target) < abs(best_red - target):
            best_red, best_model, best_ratio = red, pruned, None
    if abs(best_red - target) > config.tolerance:
        raise FairpruneError(
            ERR_TOLERANCE.format(target=target, tol=config.tolerance * 100, best=best_red)
        )
    macs1, params1 = count_macs_params(best_model, input_size)
    return PruneResult(best_model.eval(), macs0, macs1, params0, params1, best_red, best_ratio)


def _refine_aligned(start, spec, config, input_size, macs0, calib, widths=None):
    """Remove ``round_to`` channels at a time from one dependency group until the FLOPs target is
    reached: each step takes the block of least important channels (the criterion's scores,
    normalised within each group) from the group where it costs the least importance per MAC
    saved, among the steps that do not overshoot the target by more than the tolerance (the
    closest step when every one does). Channel counts stay multiples of ``round_to``, and no
    layer keeps fewer than one block or loses more than ``max_layer_ratio`` of its channels.

    ``widths`` maps each conv's name to its width in the unpruned model (``max_layer_ratio``
    counts from there; default: the widths in ``start``).

    Returns
    -------
    (float, nn.Module)
        The FLOPs reduction reached and the model (a copy of ``start``).
    """
    model = _copy_for_importance(start, spec, config, calib).eval()
    r, target, tol = int(config.round_to), config.target_reduction, config.tolerance
    head = head_of(model)
    widths = widths or _conv_widths(start)
    torch.manual_seed(config.seed)  # random importance
    importance = spec.importance()
    red = 1.0 - count_macs_params(model, input_size)[0] / macs0
    while red < target - tol:
        graph = build_graph(model, input_size)
        # per candidate step: (overshoots the target, |overshoot| or importance lost per MAC
        # saved, group order, reduction reached, conv name, channels dropped)
        steps = []
        groups = graph.get_all_groups(ignored_layers=[head], root_module_types=(nn.Conv2d,))
        for order, group in enumerate(groups):
            root = group[0].dep.target.module
            n, name = root.out_channels, _name_of(model, root)
            floor = max(r, -(-round((1 - config.max_layer_ratio) * widths.get(name, n)) // r) * r)
            if n - r < floor:
                continue
            scores = importance(group)
            if scores is None:
                continue
            scores = scores.detach().cpu()
            drop = torch.argsort(scores, stable=True)[:r].tolist()
            trial = copy.deepcopy(model)  # only to count the MACs the step would leave
            trial_root = trial.get_submodule(name)
            build_graph(trial, input_size).get_pruning_group(
                trial_root, tp.prune_conv_out_channels, drop
            ).prune()
            new_red = 1.0 - count_macs_params(trial, input_size)[0] / macs0
            over = new_red > target + tol
            cost = (
                abs(new_red - target)
                if over
                else float(scores[drop].sum()) / max(new_red - red, 1e-12)
            )
            steps.append((over, cost, order, new_red, name, drop))
        if not steps:
            break  # every group is down to its floor
        _, _, _, red, name, drop = min(steps, key=lambda s: s[:3])
        # in place, so a data-driven criterion keeps the (pruned) gradients it scores by
        graph.get_pruning_group(model.get_submodule(name), tp.prune_conv_out_channels, drop).prune()
    model.zero_grad(set_to_none=True)
    return red, model


def _conv_widths(model: nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _name_of(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


def _copy_for_importance(start: nn.Module, spec, config, calib) -> nn.Module:
    """A copy of ``start`` holding the gradients a data-driven criterion scores channels by."""
    model = copy.deepcopy(start)
    if spec.needs_data:
        accumulate_gradients(
            model,
            calib,
            task_loss(config.criterion.startswith("pw_"), config),
            pick_device(config.device),
        )
    return model


def _refine_globally(start, spec, config, input_size, macs0, calib):
    """Binary-search a small global pruning step on top of ``start`` toward the target."""
    start = _copy_for_importance(start, spec, config, calib)
    target = config.target_reduction
    lo, hi = 0.0, 0.6
    best = (0.0, start)
    for _ in range(16):
        mid = (lo + hi) / 2
        pruned = _prune_once(start, spec, mid, config, input_size, global_pruning=True)
        red = 1.0 - count_macs_params(pruned, input_size)[0] / macs0
        if abs(red - target) < abs(best[0] - target):
            best = (red, pruned)
        if abs(red - target) <= config.tolerance / 2:
            break
        if red < target:
            lo = mid
        else:
            hi = mid
    return best
