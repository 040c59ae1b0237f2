"""Run a sweep in three steps: plan (the grid and what is already stored) → run (a pure function
from a unit of work to results: it touches no store) → record (the driver saves each model and
writes each cell to the results store in one transaction, as soon as it is finished).

Every executor shares ``run_unit`` (``cell_runner``) and the driver's record loop (``run_sweep``),
so serial and distributed runs cannot drift apart: an executor only decides where ``run_unit`` runs
(``SerialExecutor``: here, one unit after another; ``fairprune.sweep.distributed.RayExecutor``: on
Ray workers). Rerunning a sweep skips finished cells; stopping loses at most the cell in progress.
Every stage that draws random numbers is seeded from the cell's seed, so the same sweep on the same
machine (same torch threads) gives byte-identical models and identical rows.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from fairprune.config import SweepConfig
from fairprune.evaluate import measure_latency
from fairprune.metrics import accuracy_gap
from fairprune.nets.checkpoint import save_model
from fairprune.nets.manifest import ModelRecord
from fairprune.sweep.cell_runner import CellResult, run_unit
from fairprune.sweep.context import SweepContext, load_context
from fairprune.sweep.grid import (
    Cell,
    PruneUnit,
    cell_key_for,
    iter_cells,
    prune_units,
    validate_sweep,
)
from fairprune.sweep.sweep_lock import sweep_lock
from fairprune.utils import Progress, stable_hash

log = logging.getLogger(__name__)


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
        held = contextlib.nullcontext()
        where = getattr(store, "path", None) or getattr(store, "url", None)
        if where is not None:  # one driver per sweep and store: a file's flock, a server's lock
            held = sweep_lock(where, ctx.sweep_id)
        with held:
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
