"""Sweeps on Ray: the same units as the serial executor, run by Ray workers, recorded by the driver.

The unit of work is a ``PruneUnit`` (criterion, level, seed): one pruned model fine-tuned with
every loss. A worker gets the sweep's config as a dict, the dense checkpoint as bytes (its manifest
JSON and its safetensors weights: nothing pickled, no path on the driver's disk) and the unit; it
builds its own ``SweepContext`` once per process, runs ``fairprune.sweep.runner.run_unit`` (the very
function the serial executor runs) and streams each finished cell back as a plain payload: the
weights as safetensors bytes, the layer shapes needed to rebuild them, the manifest and store
fields, the per-group table and the per-sample predictions. The driver rebuilds the model from
those bytes and records the cell with the same ``record_cell`` as a serial run, so models and rows
are the same whichever executor made them, and only the driver writes the stores.

Units are Ray streaming-generator tasks with ``max_retries``: a worker lost mid-unit is retried by
Ray, which replays the unit deterministically and drops the cells the driver already received, so
a lost worker costs only the cell in progress. Stopping cancels the outstanding tasks
(``ray.cancel``) after keeping every cell already finished.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save as safetensors_bytes

from fairprune.config import SweepConfig, config_from_dict
from fairprune.errors import FairpruneError
from fairprune.evaluate import Predictions
from fairprune.nets.checkpoint import _read_safetensors
from fairprune.nets.manifest import ModelRecord, _parse_manifest
from fairprune.nets.shapes import _load_state, _rebuild, layer_shapes
from fairprune.prune.registry import CRITERIA
from fairprune.sweep.grid import Cell, PruneUnit
from fairprune.sweep.runner import (
    CellResult,
    SerialExecutor,
    SweepContext,
    load_context,
    run_sweep,
    run_unit,
    sweep_dataset,
)
from fairprune.utils import environment, sha256_bytes

log = logging.getLogger(__name__)

ERR_NO_RAY = (
    "the Ray executor needs the ray package: pip install -r requirements.txt (or 'ray[default]')."
)
ERR_CONNECT = (
    "cannot connect to the Ray cluster at {address} ({reason}); start one with `ray start "
    "--head`, or leave the address empty to run a local Ray on this machine."
)
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
ERR_OTHER_CLUSTER = (
    "a sweep is running on Ray at {have}; wait for it to finish (or cancel it) before sending one "
    "to {want}."
)
ERR_CODE_MISMATCH = (
    "a Ray worker computed sweep {got} where the driver has {want}: the driver and the workers "
    "run different fairprune code; install the same version on every node."
)
ERR_DENSE_BYTES = (
    "the dense checkpoint sent to a Ray worker does not match its hash; rerun the sweep."
)
ERR_UNKNOWN_EXECUTOR = "unknown executor {name!r}; choose one of: {choices}."
LOCAL = "local"
"""How a local Ray (started by this process, no address) is named in messages and job states."""

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # …/fairprune: shipped to a remote cluster
_WORKER_CONTEXTS: OrderedDict[tuple[str, str], SweepContext] = OrderedDict()
_STARTED: dict[str, str] = {}  # "address" → what this process ray.init-ed (cleared on shutdown)
_CONNECT = threading.Lock()  # the dashboard's sweep threads may connect at the same moment
_KEEPER: list[threading.Event] = []  # releases the thread that called ray.init (``_init_kept``)
_ACTIVE = {"runs": 0}  # executors of this process running on the current connection


# ---------------------------------------------------------------- payloads (plain data, no pickle)


def dense_payload(record: ModelRecord, table: pd.DataFrame | None = None) -> dict:
    """The dense checkpoint as bytes for the workers: its manifest JSON and its weights.

    Parameters
    ----------
    record : ModelRecord
        A loaded dense model's record (``path`` set).
    table : DataFrame, optional
        The driver's per-group audit of the dense model (sent so workers need not redo it).

    Returns
    -------
    dict
        ``{"manifest": str, "weights": bytes}``, plus ``"table"`` (``table_payload``) if given.
    """
    path = Path(record.path)
    payload = {
        "manifest": path.with_suffix(".json").read_text(),
        "weights": path.with_suffix(".safetensors").read_bytes(),
    }
    if table is not None:
        payload["table"] = table_payload(table)
    return payload


def dense_from_payload(payload: dict) -> tuple[torch.nn.Module, ModelRecord]:
    """Rebuild the dense model from ``dense_payload`` (hash checked, nothing executed)."""
    record = _parse_manifest(payload["manifest"], "the driver's dense manifest")
    if sha256_bytes(payload["weights"]) != record.sha256:
        raise FairpruneError(ERR_DENSE_BYTES)
    model = _rebuild(record, "the driver's dense manifest")
    state = _read_safetensors(payload["weights"], "the driver's dense weights")
    _load_state(model, state, "the driver's dense weights", record.arch)
    return model.eval(), record


def unit_to_dict(unit: PruneUnit) -> dict:
    """A ``PruneUnit`` as plain data (what a worker receives)."""
    return asdict(unit)


def unit_from_dict(data: dict) -> PruneUnit:
    """Inverse of ``unit_to_dict``."""
    cells = tuple(Cell(**c) for c in data["cells"])
    return PruneUnit(data["criterion"], float(data["target_reduction"]), int(data["seed"]), cells)


def unit_label(unit: PruneUnit) -> str:
    """ "l1 75.0% seed 0": how a unit is named in progress text and errors."""
    return f"{unit.criterion} {unit.target_reduction:.1%} seed {unit.seed}"


def cell_payload(ctx: SweepContext, result: CellResult) -> dict:
    """A finished cell as plain data: weights as safetensors bytes, never a pickled module."""
    record = ctx.record
    model = result.model
    state = {n: t.detach().cpu().clone().contiguous() for n, t in model.state_dict().items()}
    preds = result.preds
    return {
        "key": result.key,
        "cell": asdict(result.cell),
        "weights": safetensors_bytes(state),
        "layer_shapes": layer_shapes(model, record.arch, record.num_outputs, record.input_size),
        "prune_info": dict(result.prune_info),
        "config": result.config,
        "overall": dict(result.overall),
        "table": result.table,
        "preds": {
            "logits": np.asarray(preds.logits),
            "probs": np.asarray(preds.probs),
            "y_pred": np.asarray(preds.y_pred),
            "y_true": np.asarray(preds.y_true),
            "groups": np.asarray(preds.groups),
            "model_hash": preds.model_hash,
            "split_key": preds.split_key,
        },
        "environment": environment(),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def cell_from_payload(ctx: SweepContext, payload: dict) -> CellResult:
    """Rebuild a worker's cell on the driver: the model from its bytes and recorded shapes."""
    source = f"the Ray worker's cell {payload['key']}"
    spec = replace(ctx.record, layer_shapes=payload["layer_shapes"])
    model = _rebuild(spec, source)
    _load_state(model, _read_safetensors(payload["weights"], source), source, spec.arch)
    p = payload["preds"]
    preds = Predictions(
        logits=np.asarray(p["logits"]),
        probs=np.asarray(p["probs"]),
        y_pred=np.asarray(p["y_pred"]),
        y_true=np.asarray(p["y_true"]),
        groups=np.asarray(p["groups"]),
        model_hash=p["model_hash"],
        split_key=p["split_key"],
    )
    return CellResult(
        cell=Cell(**payload["cell"]),
        key=payload["key"],
        model=model.eval(),
        prune_info=payload["prune_info"],
        config=payload["config"],
        overall=payload["overall"],
        table=payload["table"],
        preds=preds,
        environment=payload.get("environment"),
    )


# ---------------------------------------------------------------- the worker side


def table_payload(table: pd.DataFrame) -> dict:
    """A per-group table as plain data (``to_dict(orient="tight")``: values, index, dtypes kept)."""
    return {"tight": table.to_dict(orient="tight"), "dtypes": table.dtypes.astype(str).to_dict()}


def table_from_payload(payload: dict) -> pd.DataFrame:
    """Inverse of ``table_payload``."""
    return pd.DataFrame.from_dict(payload["tight"], orient="tight").astype(payload["dtypes"])


def worker_context(config: dict, dense: dict, sweep_id: str) -> SweepContext:
    """The sweep's context in this worker process: built once, then reused by its next units.

    The driver's dense audit comes with ``dense`` (``"table"``), so a worker neither predicts nor
    audits the dense model again: it only loads the data and rebuilds the model.
    """
    record = _parse_manifest(dense["manifest"], "the driver's dense manifest")
    key = (sweep_id, record.sha256)
    ctx = _WORKER_CONTEXTS.get(key)
    if ctx is None:
        table = table_from_payload(dense["table"]) if "table" in dense else None
        ctx = load_context(
            config_from_dict(SweepConfig, config),
            dense=dense_from_payload(dense),
            dense_table=table,
        )
        if ctx.sweep_id != sweep_id:
            raise FairpruneError(ERR_CODE_MISMATCH.format(got=ctx.sweep_id, want=sweep_id))
        _WORKER_CONTEXTS[key] = ctx
        while len(_WORKER_CONTEXTS) > 2:  # a worker process serves one sweep at a time
            _WORKER_CONTEXTS.popitem(last=False)
    return ctx


def unit_payloads(
    config: dict, dense: dict, unit: dict, sweep_id: str, threads: int
) -> Iterator[dict]:
    """What a Ray worker runs for one unit: ``run_unit``, each finished cell as a payload.

    Parameters
    ----------
    config : dict
        ``asdict`` of the ``SweepConfig``.
    dense : dict
        ``dense_payload`` of the dense checkpoint.
    unit : dict
        ``unit_to_dict`` of the ``PruneUnit``.
    sweep_id : str
        The driver's sweep id (a mismatch means different code on the worker: refused).
    threads : int
        The worker's share of its node's CPUs: torch's intra-op threads.

    Yields
    ------
    dict
        ``cell_payload`` of each cell, in the unit's order.
    """
    torch.set_num_threads(max(1, int(threads)))
    ctx = worker_context(config, dense, sweep_id)
    for result in run_unit(ctx, unit_from_dict(unit)):
        yield cell_payload(ctx, result)


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


def _warm_worker(config: dict) -> bool:
    """Import fairprune and load the sweep's dataset in this worker (kept in its cache).

    Never raises: a bad dataset is reported by the unit that needs it, with its own message.
    """
    try:
        sweep_dataset(config_from_dict(SweepConfig, config))
    except Exception:  # noqa: BLE001 - see above
        return False
    return True


def _run_task(task: Callable[..., Iterator[dict]], *args) -> Iterator[dict]:
    """The Ray task: ``task`` (``unit_payloads`` or a wrapper of it, any picklable callable)."""
    yield from task(*args)


# ---------------------------------------------------------------- the driver side


def _ray():
    try:
        import ray
    except ImportError:
        raise FairpruneError(ERR_NO_RAY) from None
    return ray


def _local_cpus() -> int:
    """CPUs this process may use (its affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _init_kept(ray, **kwargs) -> None:
    """``ray.init`` in a thread that lives as long as the connection does.

    Ray's driver hangs once the thread that called ``ray.init`` has exited: every later task
    export blocks for good (ray 2.60; the dashboard connects from a sweep's thread, which ends with
    the sweep, and the next sweep reuses the connection). The keeper thread is let go by
    ``_shutdown``.
    """
    box: dict = {}
    ready, release = threading.Event(), threading.Event()

    def keep() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            box["error"] = exc
            return
        finally:
            ready.set()
        release.wait()

    threading.Thread(target=keep, daemon=True, name="fairprune-ray-connection").start()
    ready.wait()
    if "error" in box:
        raise box["error"]
    _KEEPER.append(release)


def _shutdown(ray) -> None:
    """Disconnect (stopping a local Ray this process started) and let the keeper thread end."""
    if ray.is_initialized():
        ray.shutdown()
    _STARTED.clear()
    while _KEEPER:
        _KEEPER.pop().set()


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at ``address``, or start a local Ray (no dashboard) when None.

    Returns True when this call started the connection (the caller shuts it down), False when
    this process was already connected (a test's ``ray.init``, or an earlier sweep of the app).
    """
    with _CONNECT:
        return _connect(_ray(), address)


def _connect(ray, address: str | None) -> bool:
    want = address or LOCAL
    if ray.is_initialized():
        have = _STARTED.get("address")
        if have is None or have == want:
            return False
        if _ACTIVE["runs"]:
            raise FairpruneError(ERR_OTHER_CLUSTER.format(have=have, want=want))
        _shutdown(ray)  # idle, and ours: switch to the place asked for
    kwargs = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        # workers import fairprune from where this process does, whatever their working directory
        path = os.pathsep.join(
            p for p in (str(_PACKAGE_DIR.parent), os.environ.get("PYTHONPATH")) if p
        )
        _init_kept(
            ray,
            num_cpus=_local_cpus(),
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            **kwargs,
        )
    else:
        try:
            # the cluster runs this driver's fairprune code: same code, same models
            _init_kept(
                ray, address=address, runtime_env={"py_modules": [str(_PACKAGE_DIR)]}, **kwargs
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise FairpruneError(ERR_CONNECT.format(address=address, reason=reason)) from None
    _STARTED["address"] = want
    return True


def shutdown() -> None:
    """Disconnect from Ray (stopping a local Ray this process started)."""
    _shutdown(_ray())


def _cluster_shape() -> tuple[int, float, int]:
    """(CPUs in the cluster, GPUs in the cluster, CPUs of its largest live node)."""
    ray = _ray()
    total = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    biggest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0)
    return int(total.get("CPU", 0)), float(total.get("GPU", 0.0)), biggest


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
        cpus, gpus, biggest = _cluster_shape()
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
        fairprune and loads the sweep's dataset once (``_warm_worker``), so the workers' first
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
            ray = _ray()
            with _CONNECT:
                state["started"] = _connect(ray, self.address)
                _ACTIVE["runs"] += 1
                state["active"] = True
            workers, cpus = self._plan_slots()
            state["slots"] = (workers, cpus)
            warm = ray.remote(_warm_worker).options(
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
        with _CONNECT:
            if state["active"]:
                _ACTIVE["runs"] -= 1
                state["active"] = False
            if state["started"] and self.shutdown and not _ACTIVE["runs"]:
                _shutdown(_ray())

    def results(self, ctx, units, *, should_stop, report, on_unit) -> Iterator[CellResult]:
        """Send the units to Ray (at most ``workers`` at once) and yield cells as they arrive."""
        if not units:
            self.close()
            return
        ray = _ray()
        in_flight: dict = {}  # generator → unit
        try:
            state = self._started(ctx.config)
            workers, cpus = state["slots"]
            self.slots = (workers, cpus)
            remote = ray.remote(_run_task).options(
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
        ray = _ray()
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
        ray = _ray()
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
