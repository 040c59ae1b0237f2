"""One unit of a sweep's work, pure with respect to storage: prune the dense model once for a
(criterion, level, seed), then fine-tune, predict and audit one copy per loss (``run_unit``).

Every executor runs this very function (``runner.SerialExecutor`` in this process,
``ray_worker.unit_payloads`` on Ray workers), so serial and distributed sweeps cannot drift
apart. Every stage that draws random numbers is seeded from the cell's seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch
from torch import nn

from fairprune.config import PruneConfig
from fairprune.evaluate import Predictions, measure_latency, predict
from fairprune.loss import get_loss
from fairprune.metrics import accuracy_gap, audit, pruning_disparity
from fairprune.prune.context import FLOPS
from fairprune.prune.registry import CRITERIA, prune_model
from fairprune.sweep.context import SweepContext
from fairprune.sweep.grid import Cell, PruneUnit, cell_key_for
from fairprune.train import finetune


@dataclass
class CellResult:
    """One finished cell, before it is stored: the model and everything measured on it."""

    cell: Cell
    key: str  # the cell's key in the results store
    model: nn.Module  # the pruned, fine-tuned model (CPU)
    prune_info: dict  # flops_reduction, macs, params, weight_sparsity
    config: dict  # sweep, prune, finetune and cell configs (asdict)
    overall: dict  # accuracy, gap, std_delta, max_psi, latency_ms, weight_sparsity
    table: pd.DataFrame  # per-group audit (group_metrics' columns)
    preds: Predictions  # per-sample predictions on the audit split
    environment: dict | None = None  # where it ran (torch, threads, device); None: this process


def _calib_batches(split, dense_logits: torch.Tensor, cfg: PruneConfig) -> list:
    batches = []
    for x, y, _g, idx in split.batches(cfg.calib_batch_size, shuffle=True, seed=cfg.seed):
        batches.append((x, y, dense_logits[idx]))
        if len(batches) >= cfg.calib_batches:
            break
    return batches


def _needs_dense(unit: PruneUnit) -> bool:
    spec = CRITERIA.get(unit.criterion)
    return bool(spec and spec.needs_dense) or any(get_loss(c.loss).uses_dense for c in unit.cells)


def prune_unit(ctx: SweepContext, unit: PruneUnit) -> tuple[nn.Module, dict, PruneConfig]:
    """Prune a copy of the dense model for one (criterion, level, seed)."""
    config, record = ctx.config, ctx.record
    pcfg = replace(
        config.prune,
        criterion=unit.criterion,
        target_reduction=unit.target_reduction,
        seed=unit.seed,
        min_weight=config.min_weight,
        gamma=config.gamma,
    )
    spec = CRITERIA[unit.criterion]
    train = ctx.bundle.splits["train"]
    calib = None
    if spec.needs_data and spec.target == FLOPS:
        # structured criteria score (x, y, dense logits) batches; unstructured ones draw their
        # (x, y, group) batches from the split themselves, with the same seed
        dense_train = ctx.dense_train() if _needs_dense(unit) else _zeros(ctx)
        calib = _calib_batches(train, dense_train, pcfg)
    result = prune_model(
        ctx.dense,
        pcfg,
        input_size=record.input_size,
        calib=calib,
        split=train,
        group_names=ctx.bundle.group_names,
    )
    info = {
        "flops_reduction": float(result.flops_reduction),
        "macs": int(result.macs_after),
        "params": int(result.params_after),
        "weight_sparsity": float(result.weight_sparsity),
    }
    return result.model, info, pcfg


def _zeros(ctx: SweepContext) -> torch.Tensor:
    return torch.zeros(len(ctx.bundle.splits["train"]), ctx.record.num_outputs)


def run_unit(
    ctx: SweepContext,
    unit: PruneUnit,
    *,
    should_stop: Callable[[], bool] | None = None,
    report: Callable[[str], None] | None = None,
) -> Iterator[CellResult]:
    """Prune once, then fine-tune, predict and audit one copy per loss; yield each cell's result.

    Pure with respect to storage: nothing is written. Stops early (yielding nothing more) when
    ``should_stop()`` turns True; a half-trained cell is never yielded.
    """
    stop = should_stop or (lambda: False)
    say = report or (lambda info: None)
    config = ctx.config
    label = f"{unit.criterion} {unit.target_reduction:.1%} seed {unit.seed}"
    say(f"pruning: {label}")
    pruned, prune_info, pcfg = prune_unit(ctx, unit)
    train_split = ctx.bundle.splits["train"]
    dense_train = ctx.dense_train() if _needs_dense(unit) else _zeros(ctx)
    for cell in unit.cells:
        if stop():
            return
        model = copy.deepcopy(pruned)
        fcfg = replace(
            config.finetune,
            loss=cell.loss,
            seed=cell.seed,
            min_weight=config.min_weight,
            gamma=config.gamma,
        )
        say(f"fine-tuning: {label} {cell.loss}")
        finetune(model, train_split, fcfg, dense_logits=dense_train, should_stop=stop)
        if stop():
            return  # the half-trained cell is dropped; finished ones are already yielded
        model = model.cpu().eval()
        preds = predict(model, ctx.eval_split, split_key=ctx.split_key)
        table = audit(preds, ctx.bundle, n_boot=config.n_boot)
        disparity = pruning_disparity(ctx.dense_table, table)
        overall = {
            "accuracy": float(preds.correct.mean()),
            "gap": accuracy_gap(table),
            "std_delta": disparity["std_delta"],
            "max_psi": disparity["max_psi"],
            "latency_ms": measure_latency(model, ctx.record.input_size, repeats=10),
            "weight_sparsity": prune_info["weight_sparsity"],
        }
        cfg = {
            "sweep": asdict(config),
            "prune": asdict(pcfg),
            "finetune": asdict(fcfg),
            "cell": asdict(cell),
        }
        key = cell_key_for(ctx.sweep_id, cell)
        yield CellResult(cell, key, model, prune_info, cfg, overall, table, preds)
