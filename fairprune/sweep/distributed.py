"""Sweeps on Ray: the same units as the serial executor, run by Ray workers, recorded by the driver.

The unit of work is a ``PruneUnit`` (criterion, level, seed): one pruned model fine-tuned with
every loss. A worker gets the sweep's config as a dict, the dense checkpoint as bytes (its manifest
JSON and its safetensors weights: nothing pickled, no path on the driver's disk) and the unit; it
builds its own ``SweepContext`` once per process, runs ``fairprune.sweep.cell_runner.run_unit`` (the
very function the serial executor runs) and streams each finished cell back as a plain payload
(``payloads``). The driver rebuilds the model from those bytes and records the cell with the same
``runner.record_cell`` as a serial run, so models and rows are the same whichever executor made
them, and only the driver writes the stores.

This module is the driver side (``RayExecutor``, ``EXECUTORS``); ``ray_worker`` is what a task
runs, ``ray_connect`` this process's connection to Ray.

Units are Ray streaming-generator tasks with ``max_retries``: a worker lost mid-unit is retried by
Ray, which replays the unit deterministically and drops the cells the driver already received, so
a lost worker costs only the cell in progress. Stopping cancels the outstanding tasks
(``ray.cancel``) after keeping every cell already finished.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace

from fairprune.config import SweepConfig
from fairprune.errors import FairpruneError
from fairprune.prune.registry import CRITERIA
from fairprune.sweep.cell_runner import CellResult
from fairprune.sweep.grid import PruneUnit
from fairprune.sweep.payloads import cell_from_payload, dense_payload, unit_label, unit_to_dict
from fairprune.sweep.ray_connect import LOCAL, cluster_shape, hold, import_ray, release
from fairprune.sweep.ray_worker import run_task, unit_payloads, warm_worker
from fairprune.sweep.runner import SerialExecutor, run_sweep

ERR_BAD_WORKERS = "workers must be a whole number of at least 1, got {value}."
ERR_BAD_GPUS = "GPUs per cell must be 0 or more, got {value}."
ERR_NO_GPUS = (
    "each cell asks for {want:g} GPU but the Ray cluster has {have:g}; use --gpus-per-cell 0 or "
    "join a cluster with GPUs."
)
ERR_NO_CPUS = "the Ray cluster at {address} has no live node with a CPU; start a worker on it."
ERR_WORKER_LOST = (
    "Ray lost the worker running {unit} on every try ({reason}); finished cells are saved: rerun "
    "the sweep to resume."
)
ERR_WORKER_FAILED = "a Ray worker failed on {unit}: {reason}"
ERR_UNKNOWN_EXECUTOR = "unknown executor {name!r}; choose one of: {choices}."


def _spread_tail(pending: deque, workers: int) -> None:
    """At a sweep's end, run each waiting unit's cells as tasks of their own when that is cheap.

    Once fewer units wait than there are workers, a worker would idle while another fine-tunes a
    whole unit, one loss after another. When the unit's criterion needs no data (magnitude or
    random criteria: pruning again takes well under a second and, seeded, gives the same model),
    each of its cells becomes a one-cell unit, so the losses run side by side. Units whose pruning
    is costly (data-driven criteria) stay whole.
    """
    if len(pending) >= workers:
        return
    spread = []
    for unit in pending:
        spec = CRITERIA.get(unit.criterion)
        if len(unit.cells) > 1 and spec is not None and not spec.needs_data:
            spread.extend(replace(unit, cells=(cell,)) for cell in unit.cells)
        else:
            spread.append(unit)
    pending.clear()
    pending.extend(spread)


class RayExecutor:
    """Run a sweep's units as Ray tasks (a local Ray, or a cluster at ``address``).

    Parameters
    ----------
    workers : int, optional
        Units in flight at once. Default: one per GPU share when ``gpus_per_cell`` > 0, else one
        per CPU of the cluster. Each task reserves ``CPUs // workers`` CPUs (at most one node's)
        and sets torch's threads to that share.
    address : str, optional
        None: start a local Ray on this machine; ``"auto"``: the cluster this machine belongs
        to (``ray start``); ``"ray://host:10001"``: a remote cluster through Ray Client.
    gpus_per_cell : float, default 0
        GPUs each task reserves (fractions share a GPU); the cell then trains on CUDA.
    max_retries : int, default 3
        Times Ray reruns a unit whose worker died (cells already received are kept).
    shutdown : bool, default True
        Disconnect from Ray at the end when this executor connected (the dashboard keeps a
        local Ray running between sweeps instead).
    task : callable, optional
        The worker function (default ``unit_payloads``); a wrapper must yield the same payloads.
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        gpus_per_cell: float = 0.0,
        *,
        max_retries: int = 3,
        shutdown: bool = True,
        task: Callable[..., Iterator[dict]] = unit_payloads,
        poll_s: float = 0.25,
    ):
        if workers is not None and (
            isinstance(workers, bool) or int(workers) != workers or workers < 1
        ):
            raise FairpruneError(ERR_BAD_WORKERS.format(value=workers))
        if gpus_per_cell is None or float(gpus_per_cell) < 0:
            raise FairpruneError(ERR_BAD_GPUS.format(value=gpus_per_cell))
        self.workers = None if workers is None else int(workers)
        self.address = address or None
        self.gpus_per_cell = float(gpus_per_cell)
        self.max_retries = int(max_retries)
        self.shutdown = shutdown
        self.task = task
        self.poll_s = poll_s
        self.cancelled: list = []  # (unit, generator) of every task cancelled by a stop
        self.slots: tuple[int, int] = (0, 0)  # (workers, CPUs per worker) of the last run
        self._begin: tuple[threading.Thread, dict] | None = None  # ``start``'s thread and state

    def _plan_slots(self) -> tuple[int, int]:
        cpus, gpus, biggest = cluster_shape()
        if cpus < 1 or biggest < 1:
            raise FairpruneError(ERR_NO_CPUS.format(address=self.address or LOCAL))
        if self.gpus_per_cell > gpus:
            raise FairpruneError(ERR_NO_GPUS.format(want=self.gpus_per_cell, have=gpus))
        workers = self.workers
        if workers is None:
            workers = int(gpus // self.gpus_per_cell) if self.gpus_per_cell else cpus
        workers = max(1, workers)
        return workers, max(1, min(cpus // workers, biggest))

    def start(self, config: SweepConfig) -> None:
        """Connect and warm one worker per slot in the background (``run_sweep`` calls this first).

        While the driver loads the dense model and audits it, Ray starts and each worker imports
        fairprune and loads the sweep's dataset once (``warm_worker``), so the workers' first
        units begin on the real work. A second call is a no-op; errors surface in ``results``.
        """
        if self._begin is not None:
            return
        state: dict = {"started": False, "active": False, "error": None, "warm": []}
        thread = threading.Thread(
            target=self._connect_and_warm, args=(state, asdict(config)), daemon=True,
            name="fairprune-ray-start",
        )  # fmt: skip
        self._begin = (thread, state)
        thread.start()

    def _connect_and_warm(self, state: dict, config: dict) -> None:
        try:
            ray = import_ray()
            state["started"] = hold(self.address)
            state["active"] = True
            workers, cpus = self._plan_slots()
            state["slots"] = (workers, cpus)
            warm = ray.remote(warm_worker).options(
                num_cpus=cpus, num_gpus=self.gpus_per_cell, max_retries=0
            )
            state["warm"] = [warm.remote(config) for _ in range(workers)]
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of ``results``
            state["error"] = exc

    def _started(self, config: SweepConfig) -> dict:
        """The state of ``start`` once it has finished (started now if it was not)."""
        self.start(config)
        thread, state = self._begin
        thread.join()
        if state["error"] is not None:
            self.close()
            raise state["error"]
        return state

    def close(self) -> None:
        """Release this run's hold on Ray, disconnecting if it connected (idempotent)."""
        begin, self._begin = self._begin, None
        if begin is None:
            return
        thread, state = begin
        thread.join()
        release(held=state["active"], disconnect=state["started"] and self.shutdown)
        state["active"] = False

    def results(self, ctx, units, *, should_stop, report, on_unit) -> Iterator[CellResult]:
        """Send the units to Ray (at most ``workers`` at once) and yield cells as they arrive."""
        if not units:
            self.close()
            return
        ray = import_ray()
        in_flight: dict = {}  # generator → unit
        try:
            state = self._started(ctx.config)
            workers, cpus = state["slots"]
            self.slots = (workers, cpus)
            remote = ray.remote(run_task).options(
                num_cpus=cpus,
                num_gpus=self.gpus_per_cell,
                max_retries=self.max_retries,
                num_returns="streaming",
            )
            config = asdict(ctx.config)
            dense = ray.put(dense_payload(ctx.record, ctx.dense_table))
            pending = deque(units)
            where = self.address or LOCAL
            while pending or in_flight:
                while pending and len(in_flight) < workers and not should_stop():
                    _spread_tail(pending, workers)
                    unit = pending.popleft()
                    args = (config, dense, unit_to_dict(unit), ctx.sweep_id, cpus)
                    gen = remote.remote(self.task, *args)
                    in_flight[gen] = unit
                    on_unit(unit)
                    report(f"on Ray ({where}, {workers} workers × {cpus} CPU): {unit_label(unit)}")
                if should_stop():
                    # keep what is already finished, then cancel the rest
                    yield from self._drain(ctx, in_flight, timeout=0)
                    for gen, unit in in_flight.items():
                        ray.cancel(gen)
                        self.cancelled.append((unit, gen))
                    in_flight.clear()
                    return
                if in_flight:
                    yield from self._drain(ctx, in_flight, timeout=self.poll_s)
        finally:
            for gen in in_flight:
                ray.cancel(gen)  # an error while recording: no orphan tasks keep the cluster busy
            self.close()

    def _drain(self, ctx, in_flight: dict, *, timeout: float) -> Iterator[CellResult]:
        """Yield every cell that is ready now (waiting up to ``timeout`` for the first one)."""
        ray = import_ray()
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=timeout)
        while ready:
            for gen in ready:
                unit = in_flight[gen]
                try:
                    ref = next(gen)
                except StopIteration:
                    del in_flight[gen]
                    continue
                yield cell_from_payload(ctx, self._get(ref, unit))
            if not in_flight:
                return
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0)

    def _get(self, ref, unit: PruneUnit) -> dict:
        ray = import_ray()
        from ray import exceptions as rex

        try:
            return ray.get(ref)
        except rex.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, FairpruneError):
                raise FairpruneError(str(cause)) from None
            reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            reason = (reason.strip().splitlines() or ["unknown error"])[0][:200]
            raise FairpruneError(
                ERR_WORKER_FAILED.format(unit=unit_label(unit), reason=reason)
            ) from None
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise FairpruneError(
                ERR_WORKER_LOST.format(unit=unit_label(unit), reason=reason)
            ) from None


EXECUTORS: dict[str, Callable[..., object]] = {
    "serial": lambda **options: SerialExecutor(),
    "ray": RayExecutor,
}
"""Executor name → factory: the CLI's ``--executor`` choices and the Sweep page's options."""


def make_executor(
    name: str = "serial",
    *,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_cell: float = 0.0,
    **options,
):
    """An executor by name (``EXECUTORS``); ``serial`` ignores the Ray options.

    Raises
    ------
    FairpruneError
        Unknown name, or invalid workers / GPUs per cell.
    """
    factory = EXECUTORS.get(name)
    if factory is None:
        raise FairpruneError(ERR_UNKNOWN_EXECUTOR.format(name=name, choices=", ".join(EXECUTORS)))
    if name == "serial":
        return factory()
    return factory(workers=workers, address=address, gpus_per_cell=gpus_per_cell, **options)


def run_sweep_ray(
    config: SweepConfig,
    *,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_cell: float = 0.0,
    max_retries: int = 3,
    **kwargs,
) -> str:
    """``run_sweep`` with its units on Ray; the rest (plan, record, resume) is the same.

    Parameters
    ----------
    config : SweepConfig
    workers, address, gpus_per_cell, max_retries
        See ``RayExecutor``.
    **kwargs
        ``run_sweep``'s keyword arguments (store, models_dir, progress, should_stop, on_cell,
        only, on_unit).

    Returns
    -------
    str
        The sweep id.
    """
    executor = RayExecutor(workers, address, gpus_per_cell, max_retries=max_retries)
    return run_sweep(config, executor=executor, **kwargs)
