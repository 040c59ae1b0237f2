"""Background sweep jobs for the dashboard: a sweep runs in a thread, the page polls its state.

The thread is the driver: it runs the units itself (serial) or sends them to Ray (a local Ray
kept running between sweeps, or a cluster at an address), and writes every cell to the stores as
it arrives. Cells land in the results store as they finish, so a cancelled (or crashed) job loses
at most the cells in progress, and rerunning the same sweep resumes it. Jobs are process-wide,
keyed by sweep id: two browser sessions asking for the same sweep share one job instead of racing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fairprune.config import SweepConfig
from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)

RUN_ON = {
    "serial": "This process (one cell after another)",
    "local": "Local Ray (workers on this machine)",
    "cluster": "Ray cluster (an address)",
}
"""Where the Sweep page can send a sweep: key → label."""
ERR_NO_ADDRESS = "enter the Ray cluster's address (auto, or ray://HOST:10001), or choose Local Ray."
ERR_RUN_ON = "unknown place to run {value!r}; choose one of: {choices}."
CELL_STATES = ("stored earlier", "queued", "running", "done", "not run")
"""A cell's state in a job: in the store before it started, waiting, on a worker (or this
process), written by this job, or dropped by a cancel or an error."""


@dataclass
class SweepJob:
    """One sweep running (or finished) in a background thread."""

    key: str  # the sweep's id
    config: SweepConfig
    done: int = 0  # finished cells (dense baseline included)
    total: int = 0
    info: str = "starting"
    state: str = "running"  # running | finished | cancelled | failed
    error: str = ""  # one-line message when failed
    resumed: int = 0  # cells already in the store when the job started (skipped, not rerun)
    landed: list[str] = field(default_factory=list)  # pruned cells this job wrote, in order
    where: str = "this process"  # where the units run, in words
    cells: dict = field(default_factory=dict)  # cell key → {criterion, loss, level, seed, state}
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Ask the job to stop; finished cells stay in the store."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self.state == "running"

    def wait(self, timeout: float | None = None) -> None:
        """Block until the thread ends (tests, the CLI)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def cell_table(self) -> pd.DataFrame:
        """One row per cell of the grid in run order: criterion, loss, level, seed, state."""
        rows = [dict(v) for v in list(self.cells.values())]  # a copy: the thread writes it
        return pd.DataFrame(rows, columns=["criterion", "loss", "level", "seed", "state"])

    def _set(self, keys, state: str, only_from: tuple[str, ...] = ()) -> None:
        for key in keys:
            cell = self.cells.get(key)
            if cell is not None and (not only_from or cell["state"] in only_from):
                cell["state"] = state


_jobs: dict[str, SweepJob] = {}
_lock = threading.Lock()


def _executor(run_on: str, workers: int | None, address: str | None, gpus_per_cell: float):
    """(executor or None for serial, where in words); bad options fail here, in the caller."""
    from fairprune.sweep.distributed import RayExecutor

    if run_on not in RUN_ON:
        raise FairpruneError(ERR_RUN_ON.format(value=run_on, choices=", ".join(RUN_ON)))
    if run_on == "serial":
        return None, "this process"
    address = (address or "").strip() or None
    if run_on == "cluster" and address is None:
        raise FairpruneError(ERR_NO_ADDRESS)
    if run_on == "local":
        address = None
    # the app keeps its Ray connection between sweeps: a local Ray starts once per server
    executor = RayExecutor(workers, address, gpus_per_cell, shutdown=False)
    count = f"{workers} workers" if workers else "a worker per CPU"
    return executor, f"Ray at {address} ({count})" if address else f"local Ray ({count})"


def start_sweep(
    config: SweepConfig,
    *,
    results_path: str | Path,
    models_dir: str | Path,
    run_on: str = "serial",
    workers: int | None = None,
    address: str | None = None,
    gpus_per_cell: float = 0.0,
) -> SweepJob:
    """Start ``config`` in a background thread, or return the job already running it.

    Parameters
    ----------
    config : SweepConfig
    results_path, models_dir : path
        The stores; only this process writes them, whoever runs the cells.
    run_on : {"serial", "local", "cluster"}
        This process, a local Ray, or the Ray cluster at ``address`` (``RUN_ON``).
    workers, address, gpus_per_cell
        Ray's options (``fairprune.sweep.distributed.RayExecutor``).

    Raises
    ------
    FairpruneError
        A bad grid, dense model or Ray option (before any thread starts).
    """
    from fairprune.nets.imports import load_model
    from fairprune.sweep.grid import cell_key_for, iter_cells, sweep_id_for, validate_sweep
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep

    validate_sweep(config)  # bad grids fail here, in the caller, not in the thread
    executor, where = _executor(run_on, workers, address, gpus_per_cell)
    _model, record = load_model(config.dense_model)
    key = sweep_id_for(config, record.sha256)
    store = ResultsStore(results_path)
    cells = list(iter_cells(config))
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.running:
            return job
        states = {}
        for c in cells:
            ck = cell_key_for(key, c)
            state = "stored earlier" if store.has_cell(ck) else "queued"
            states[ck] = {"criterion": c.criterion, "loss": c.loss, "level": c.target_reduction,
                          "seed": c.seed, "state": state}  # fmt: skip
        resumed = sum(v["state"] == "stored earlier" for v in states.values())
        job = SweepJob(key=key, config=config, total=len(cells) + 1, resumed=resumed, where=where,
                       cells=states)  # fmt: skip
        _jobs[key] = job

    def progress(done: int, total: int, info: str) -> None:
        job.done, job.total, job.info = done, total, info

    def on_unit(unit) -> None:
        job._set([cell_key_for(key, c) for c in unit.cells], "running", ("queued",))

    def on_cell(cell_key: str) -> None:
        job._set([cell_key], "done")
        job.landed.append(cell_key)

    def run() -> None:
        try:
            run_sweep(
                config,
                store=store,
                models_dir=models_dir,
                progress=progress,
                should_stop=job._stop.is_set,
                on_cell=on_cell,
                on_unit=on_unit,
                executor=executor,
            )
            job.state = "cancelled" if job._stop.is_set() else "finished"
        except FairpruneError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the page, logged in full
            log.exception("sweep %s failed", key)
            job.state = "failed"
            job.error = f"the sweep stopped on an unexpected error ({type(exc).__name__}: {exc})"
        finally:
            job._set(list(job.cells), "not run", ("queued", "running"))
            job.finished = time.time()

    job._thread = threading.Thread(target=run, name=f"sweep-{key}", daemon=True)
    job._thread.start()
    return job


def get_job(key: str) -> SweepJob | None:
    """The job for a sweep id, if one was started in this process."""
    return _jobs.get(key)


def running_jobs() -> list[SweepJob]:
    """Jobs still running."""
    return [j for j in _jobs.values() if j.running]
