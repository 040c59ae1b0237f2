"""Run a sweep in three steps: plan (the grid and what is already stored) → run (a pure function
from a unit of work to results: it touches no store) → record (the driver saves each model and
writes each cell to the results store in one transaction, as soon as it is finished).

Every executor shares ``run_unit`` and the driver's record loop (``run_sweep``), so serial and
distributed runs cannot drift apart: an executor only decides where ``run_unit`` runs
(``SerialExecutor``: here, one unit after another; ``fairprune.sweep.distributed.RayExecutor``: on
Ray workers). Rerunning a sweep skips finished cells; stopping loses at most the cell in progress.
Every stage that draws random numbers is seeded from the cell's seed, so the same sweep on the same
machine (same torch threads) gives byte-identical models and identical rows.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import pandas as pd
import torch
from torch import nn

from fairprune.config import PruneConfig, SweepConfig
from fairprune.data import DatasetBundle, load_dataset
from fairprune.errors import FairpruneError
from fairprune.evaluate import Predictions, dense_outputs, measure_latency, predict
from fairprune.loss import get_loss
from fairprune.metrics import accuracy_gap, audit, pruning_disparity
from fairprune.nets.checkpoint import save_model
from fairprune.nets.flops import count_macs_params
from fairprune.nets.imports import load_model
from fairprune.nets.manifest import ModelRecord
from fairprune.prune.registry import CRITERIA, UNSTRUCTURED_METHOD
from fairprune.prune.targeting import prune_model
from fairprune.sweep.grid import (
    ERR_NO_SPLIT,
    Cell,
    PruneUnit,
    cell_key_for,
    iter_cells,
    prune_units,
    sweep_id_for,
    validate_sweep,
)
from fairprune.train import finetune
from fairprune.utils import Progress, seed_everything, stable_hash

log = logging.getLogger(__name__)


@dataclass
class SweepContext:
    """What every cell of a sweep shares; loaded once per process (driver or worker)."""

    config: SweepConfig
    sweep_id: str
    dense: nn.Module  # the dense model (never mutated: cells work on copies)
    record: ModelRecord  # its manifest
    bundle: DatasetBundle
    split_key: str  # dataset fingerprint + audit split: which rows the predictions are on
    dense_preds: Predictions | None  # the dense model on the audit split (None on a Ray worker)
    dense_table: pd.DataFrame  # its per-group audit
    _dense_train: torch.Tensor | None = field(default=None, repr=False)

    @property
    def eval_split(self):
        return self.bundle.splits[self.config.eval_split]

    def dense_train(self) -> torch.Tensor:
        """(N, K) dense logits on the training split, computed once, for PW losses/criteria."""
        if self._dense_train is None:
            self._dense_train = dense_outputs(self.dense, self.bundle.splits["train"])
        return self._dense_train


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


@dataclass(frozen=True)
class SweepPlan:
    """The grid of a sweep and what is left to run."""

    sweep_id: str
    dense_key: str  # the dense baseline's cell key
    cells: tuple[Cell, ...]  # the whole grid
    todo: tuple[Cell, ...]  # cells not yet in the store, in run order

    @property
    def units(self) -> list[PruneUnit]:
        return prune_units(self.todo)


def sweep_dataset(config: SweepConfig) -> DatasetBundle:
    """The sweep's dataset (``load_dataset`` keeps it cached in this process)."""
    return load_dataset(
        config.dataset, config.data_root, csv=config.csv, **dict(config.dataset_options)
    )


def load_context(
    config: SweepConfig,
    *,
    dense: tuple[nn.Module, ModelRecord] | None = None,
    dense_table: pd.DataFrame | None = None,
) -> SweepContext:
    """Load the dense model and the dataset of a sweep, and audit the dense model once.

    Parameters
    ----------
    config : SweepConfig
    dense : (nn.Module, ModelRecord), optional
        The dense model already loaded (a Ray worker gets it as bytes from the driver, since
        ``config.dense_model`` is a path on the driver's disk); default: load that path.
    dense_table : DataFrame, optional
        The dense model's per-group audit, already made by the driver: a worker then neither
        predicts nor audits the dense model again (``dense_preds`` stays None: only the driver
        records the dense cell).

    Raises
    ------
    FairpruneError
        Invalid grid, unreadable checkpoint or dataset, or a missing split.
    """
    validate_sweep(config)
    dense, record = dense if dense is not None else load_model(config.dense_model)
    bundle = sweep_dataset(config)
    for split in ("train", config.eval_split):
        if split not in bundle.splits:
            raise FairpruneError(
                ERR_NO_SPLIT.format(
                    dataset=config.dataset, split=split, have=", ".join(bundle.splits)
                )
            )
    split_key = f"{bundle.fingerprint}-{config.eval_split}"
    preds = None
    if dense_table is None:
        preds = predict(
            dense, bundle.splits[config.eval_split], model_hash=record.sha256, split_key=split_key
        )
        dense_table = audit(preds, bundle, n_boot=config.n_boot)
    return SweepContext(
        config=config,
        sweep_id=sweep_id_for(config, record.sha256),
        dense=dense,
        record=record,
        bundle=bundle,
        split_key=split_key,
        dense_preds=preds,
        dense_table=dense_table,
    )


def plan_sweep(ctx: SweepContext, store, only: Callable[[Cell], bool] | None = None) -> SweepPlan:
    """The sweep's grid and the cells still to run (``only`` narrows what runs now)."""
    cells = tuple(iter_cells(ctx.config))
    todo = tuple(
        c
        for c in cells
        if (only is None or only(c)) and not store.has_cell(cell_key_for(ctx.sweep_id, c))
    )
    dense_key = "c-" + stable_hash({"sweep": ctx.sweep_id, "dense": ctx.record.sha256}, 16)
    return SweepPlan(ctx.sweep_id, dense_key, cells, todo)


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
    if spec.method == UNSTRUCTURED_METHOD:  # single weights zeroed: target = weight sparsity
        seed_everything(unit.seed)  # calibration batches and any random choice of the criterion
        model, sparsity = spec.run(
            ctx.dense,
            pcfg,
            split=ctx.bundle.splits["train"],
            input_size=record.input_size,
            group_names=ctx.bundle.group_names,
        )
        macs, params = count_macs_params(model, record.input_size)
        info = {
            "flops_reduction": 1.0 - macs / record.macs if record.macs else 0.0,
            "macs": macs,
            "params": params,
            "weight_sparsity": sparsity,
        }
        return model, info, pcfg
    calib = None
    if CRITERIA[unit.criterion].needs_data:
        dense_train = ctx.dense_train() if _needs_dense(unit) else _zeros(ctx)
        calib = _calib_batches(ctx.bundle.splits["train"], dense_train, pcfg)
    result = prune_model(ctx.dense, pcfg, input_size=record.input_size, calib=calib)
    info = {
        "flops_reduction": float(result.flops_reduction),
        "macs": int(result.macs_after),
        "params": int(result.params_after),
        "weight_sparsity": 0.0,
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


def record_dense(store, ctx: SweepContext, plan: SweepPlan) -> None:
    """Write the dense baseline's cell (once per sweep)."""
    store.register_sweep(ctx.sweep_id, asdict(ctx.config), name=ctx.config.name)
    if store.has_cell(plan.dense_key):
        return
    overall = {
        "accuracy": float(ctx.dense_preds.correct.mean()),
        "gap": accuracy_gap(ctx.dense_table),
        "std_delta": 0.0,
        "max_psi": 0.0,
        "latency_ms": measure_latency(copy.deepcopy(ctx.dense), ctx.record.input_size, repeats=10),
        "weight_sparsity": 0.0,
    }
    store.write_cell(
        cell_key=plan.dense_key,
        sweep_id=ctx.sweep_id,
        model=ctx.record,
        config={"sweep": asdict(ctx.config), "cell": {"criterion": "dense", "loss": "dense"}},
        overall=overall,
        groups=ctx.dense_table,
        split=ctx.config.eval_split,
        predictions=ctx.dense_preds,
        group_names=ctx.bundle.group_names,
        class_names=ctx.bundle.class_names,
    )


def record_cell(
    store, models_dir: str | Path, ctx: SweepContext, result: CellResult
) -> ModelRecord:
    """Save a finished cell's model to the model store and write the cell (one transaction)."""
    record, bundle, cell = ctx.record, ctx.bundle, result.cell
    name = (
        f"{bundle.name}-{record.arch}-{cell.criterion}-{cell.loss}"
        f"-r{round(cell.target_reduction * 1e4):04d}-s{cell.seed}-{result.key[2:10]}"
    )
    config = result.config
    if result.environment is not None:  # made elsewhere (a Ray worker): say where, in the manifest
        config = {**config, "environment": result.environment}
    saved = save_model(
        result.model,
        models_dir,
        name,
        arch=record.arch,
        num_outputs=record.num_outputs,
        num_classes=record.num_classes,
        input_size=record.input_size,
        kind="pruned",
        dataset=bundle.name,
        dataset_fingerprint=bundle.fingerprint,
        parent=record.sha256,
        criterion=cell.criterion,
        loss=cell.loss,
        target_reduction=cell.target_reduction,
        flops_reduction=result.prune_info["flops_reduction"],
        macs=result.prune_info["macs"],
        params=result.prune_info["params"],
        config=config,
    )
    store.write_cell(
        cell_key=result.key,
        sweep_id=ctx.sweep_id,
        model=saved,
        config=result.config,
        overall=result.overall,
        groups=result.table,
        split=ctx.config.eval_split,
        predictions=result.preds,
        group_names=bundle.group_names,
        class_names=bundle.class_names,
    )
    return saved


class Executor(Protocol):
    """Where a sweep's units run. ``results`` yields each finished cell as soon as it exists; the
    caller (``run_sweep``, the driver) records it. An executor never writes a store.

    ``run_sweep`` calls ``start(config)`` before it loads the dense model (an executor may get its
    workers ready meanwhile) and ``close()`` when the sweep ends, however it ends."""

    def start(self, config: SweepConfig) -> None: ...

    def close(self) -> None: ...

    def results(
        self,
        ctx: SweepContext,
        units: list[PruneUnit],
        *,
        should_stop: Callable[[], bool],
        report: Callable[[str], None],
        on_unit: Callable[[PruneUnit], None],
    ) -> Iterator[CellResult]: ...


class SerialExecutor:
    """Run the units one after another in this process (the default)."""

    name = "serial"

    def start(self, config: SweepConfig) -> None:
        """Nothing to get ready: the units run in this process."""

    def close(self) -> None:
        """Nothing to let go."""

    def results(self, ctx, units, *, should_stop, report, on_unit) -> Iterator[CellResult]:
        """Yield every cell of ``units`` in grid order; stop between or inside cells."""
        for unit in units:
            if should_stop():
                return
            on_unit(unit)
            yield from run_unit(ctx, unit, should_stop=should_stop, report=report)


def run_sweep(
    config: SweepConfig,
    *,
    store,
    models_dir: str | Path,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_cell: Callable[[str], None] | None = None,
    only: Callable[[Cell], bool] | None = None,
    executor: Executor | None = None,
    on_unit: Callable[[PruneUnit], None] | None = None,
) -> str:
    """Run every unfinished cell of ``config`` and store each as it finishes.

    Parameters
    ----------
    config : SweepConfig
    store : ResultsStore
    models_dir : path
        The model store; every pruned, fine-tuned model is saved there.
    progress : callable, optional
        ``progress(done_cells, total_cells, info)``, also called with stage text inside a cell.
    should_stop : callable, optional
        Polled between and inside cells; True stops, dropping only the cell in progress.
    on_cell : callable, optional
        Called with each cell key right after it is written.
    only : callable, optional
        ``only(cell) -> bool``: run just these cells now (the sweep's id and keys stay those of
        the whole grid, so a later run fills in the rest).
    executor : Executor, optional
        Where the units run: ``SerialExecutor()`` (default, this process) or
        ``fairprune.sweep.distributed.RayExecutor(...)``. Whichever runs them, only this process
        writes the model store and the results store, one transaction per cell.
    on_unit : callable, optional
        Called with each ``PruneUnit`` when it starts (serial) or is sent to a worker (Ray).

    Returns
    -------
    str
        The sweep id (rows of this sweep carry it).
    """
    stop = should_stop or (lambda: False)
    report = progress or (lambda done, total, info: None)
    executor = executor or SerialExecutor()
    validate_sweep(config)
    executor.start(config)  # e.g. Ray starts its workers while this process loads the dense model
    try:
        ctx = load_context(config)
        plan = plan_sweep(ctx, store, only)
        record_dense(store, ctx, plan)
        total = len(plan.cells) + 1  # + the dense baseline
        done = total - len(plan.todo)
        report(done, total, f"{len(plan.todo)} cells to run")
        if not plan.todo:
            return ctx.sweep_id
        recorded: set[str] = set()
        results = executor.results(
            ctx,
            plan.units,
            should_stop=stop,
            report=lambda info: report(done, total, info),
            on_unit=on_unit or (lambda unit: None),
        )
        try:
            for result in results:
                if result.key in recorded:  # a retried worker may replay a cell: keep the first
                    continue
                record_cell(store, models_dir, ctx, result)
                recorded.add(result.key)
                done += 1
                report(done, total, f"done: {result.cell.criterion} {result.cell.loss}")
                if on_cell is not None:
                    on_cell(result.key)
        finally:
            results.close()  # an executor's clean-up (cancel outstanding work) runs on an error
    finally:
        executor.close()  # what ``start`` took is let go however the sweep ends
    return ctx.sweep_id


def summary_table(store, sweep_id: str | None = None):
    """Per-group accuracy, mean over seeds: one row per (criterion, loss, level).

    ``gap`` is the mean over seeds of each model's gap (max − min group accuracy), as on every
    page and in ``summary`` — not the gap of the seed-averaged accuracies."""
    long = store.export_long(sweep_id)
    if long.empty:
        return long
    long = long[long["group"] != "overall"]
    index = ["criterion", "loss", "target_reduction", "flops_reduction"]
    wide = long.pivot_table(index=index, columns="group", values="accuracy", aggfunc="mean")
    per_cell = long.groupby([*index, "cell_key"])["accuracy"].agg(lambda a: a.max() - a.min())
    wide["gap"] = per_cell.groupby(level=index).mean()
    return wide.reset_index().sort_values(["criterion", "target_reduction", "loss"])
