"""Background sweep jobs for the dashboard: a sweep runs away from the pages, a page polls its state.

A sweep on this machine, one cell after another, runs in a child process at a lower CPU priority
(``fairprune.app.sweep_process``): it is the driver, writes every cell to the stores as it
finishes and reports each step on a pipe, which a thread here reads into the job. A sweep on Ray
is driven by a thread of this process, which sends the units to Ray (a local Ray kept running
between sweeps, or a cluster at an address) and writes every cell as it arrives. Either way
cells land in the results store as they finish, so a cancelled (or crashed) job loses at most the
cells in progress, and rerunning the same sweep resumes it. Jobs are process-wide, keyed by sweep
id: two browser sessions asking for the same sweep share one job instead of racing.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fairprune.config import SweepConfig
from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)

RUN_ON = {
    "serial": "This machine, one cell after another (a background process)",
    "local": "Local Ray (workers on this machine)",
    "cluster": "Ray cluster (an address)",
}
"""Where the Sweep page can send a sweep: key → label."""
ERR_NO_ADDRESS = "enter the Ray cluster's address (auto, or ray://HOST:10001), or choose Local Ray."
ERR_RUN_ON = "unknown place to run {value!r}; choose one of: {choices}."
SERIAL_WHERE = "this machine (a background process, one cell after another)"
NICE_ENV = "FAIRPRUNE_SWEEP_NICE"
NICE_DEFAULT = 10
"""How much lower than the dashboard's the CPU priority of a sweep on this machine is (POSIX
niceness, 0–19): pages drawn during a sweep come first, the sweep gets the rest."""
ERR_NO_PROCESS = "could not start the sweep's process ({error}); try again, or run it on Ray."
ERR_PROCESS_ENDED = (
    "the sweep's process stopped before it finished (exit status {code}); the cells it finished "
    "are in the results store: run the sweep again to resume."
)


@dataclass
class SweepJob:
    """One sweep running (or finished) in a background thread."""

    key: str  # the sweep's id (a demo job's is "demo" until its process names the sweep)
    config: SweepConfig | None  # None until a demo job's process reports its grid
    done: int = 0  # finished cells (dense baseline included)
    total: int = 0
    info: str = "starting"
    state: str = "running"  # running | finished | cancelled | failed
    error: str = ""  # one-line message when failed
    resumed: int = 0  # cells already in the store when the job started (skipped, not rerun)
    landed: list[str] = field(default_factory=list)  # pruned cells this job wrote, in order
    where: str = SERIAL_WHERE  # where the units run, in words
    stage: str = "sweep"  # "dense": training the dense model (done/total are steps); "sweep"
    cells: dict = field(default_factory=dict)  # cell key → {criterion, loss, level, seed, state}
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _results: str | Path | None = field(default=None, repr=False)  # where it records actions

    def cancel(self) -> None:
        """Ask the job to stop; finished cells stay in the store.

        Only an operator may (``auth.require``, refused with ``auth.ERR_FORBIDDEN``); the
        request is recorded in the results store ("sweep cancelled", who and when).
        """
        from fairprune import auth
        from fairprune.app import identity

        auth.require(identity.current(), "operate", what="cancel a sweep")
        first = self.running and not self._stop.is_set()
        self._stop.set()
        if self._process is not None:
            _tell(self._process, "cancel")
        if first and self._results is not None:
            identity.record_action(self._results, "sweep cancelled", self.key,
                                   detail=f"{self.done} of {self.total} cells done")  # fmt: skip

    @property
    def running(self) -> bool:
        return self.state == "running"

    def wait(self, timeout: float | None = None) -> None:
        """Block until the job ends (tests, the CLI)."""
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
        return None, SERIAL_WHERE
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
    """Start ``config`` in the background, or return the job already running it.

    Parameters
    ----------
    config : SweepConfig
    results_path, models_dir : path
        The stores; only the sweep's driver writes them (its process on this machine, or this
        process for Ray), whoever runs the cells.
    run_on : {"serial", "local", "cluster"}
        This machine in a child process at a lower CPU priority (``sweep_niceness``), a local
        Ray, or the Ray cluster at ``address`` (``RUN_ON``).
    workers, address, gpus_per_cell
        Ray's options (``fairprune.sweep.distributed.RayExecutor``).

    Raises
    ------
    FairpruneError
        ``auth.ERR_FORBIDDEN`` for anyone but an operator; a bad grid, dense model or Ray
        option (before anything starts).

    Notes
    -----
    A sweep this call starts is recorded in the results store ("sweep started", who and when).
    """
    from fairprune import auth
    from fairprune.app import identity

    # refused before anything heavy is imported: a viewer's forged click costs nothing
    auth.require(identity.current(), "operate", what="start a sweep")
    from fairprune.nets.imports import load_model
    from fairprune.sweep.grid import sweep_id_for, validate_sweep
    from fairprune.sweep.results import ResultsStore

    validate_sweep(config)  # bad grids fail here, in the caller, not in the thread
    executor, where = _executor(run_on, workers, address, gpus_per_cell)
    _model, record = load_model(config.dense_model)
    key = sweep_id_for(config, record.sha256)
    store = ResultsStore(results_path)
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.running:
            return job
        states = cell_states(config, key, store)
        resumed = sum(v["state"] == "stored earlier" for v in states.values())
        job = SweepJob(key=key, config=config, total=len(states) + 1, resumed=resumed,
                       where=where, cells=states, _results=results_path)  # fmt: skip
        _jobs[key] = job
    detail = f"{len(states)} cells ({resumed} stored earlier) on {where}"
    try:
        identity.record_action(results_path, "sweep started", key, detail=detail)
    except Exception:
        _end(job, "failed", "the sweep was not started")  # nothing ran: no job stays running
        raise

    if executor is None:
        return _launch(job, _sweep_request(job, results_path, models_dir))
    job._thread = threading.Thread(target=_drive, args=(job, store, models_dir, executor),
                                   name=f"sweep-{key}", daemon=True)  # fmt: skip
    job._thread.start()
    return job


def cell_states(config: SweepConfig, sweep_id: str, store) -> dict:
    """Cell key → {criterion, loss, level, seed, state} for every cell of the grid, in run order:
    "stored earlier" when the store holds it already, else "queued"."""
    from fairprune.sweep.grid import cell_key_for, iter_cells

    states = {}
    for c in iter_cells(config):
        ck = cell_key_for(sweep_id, c)
        state = "stored earlier" if store.has_cell(ck) else "queued"
        states[ck] = {"criterion": c.criterion, "loss": c.loss, "level": c.target_reduction,
                      "seed": c.seed, "state": state}  # fmt: skip
    return states


def start_process_job(key: str, request: dict, *, where: str = SERIAL_WHERE) -> SweepJob:
    """Start a job whose grid its own process works out (``fairprune.app.sweep_process`` with
    ``request``; the demo), or return the job already running under ``key``. The job learns its
    sweep id, config and cells from the process's ``grid`` message. Only an operator may
    (``auth.ERR_FORBIDDEN``); the caller records the action."""
    from fairprune import auth
    from fairprune.app import identity

    auth.require(identity.current(), "operate", what="start a sweep")
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.running:
            return job
        job = SweepJob(key=key, config=None, where=where, stage="starting",
                       _results=request.get("results"))  # fmt: skip
        _jobs[key] = job
    return _launch(job, request)


def _launch(job: SweepJob, request: dict) -> SweepJob:
    """Start the job's process with ``request`` and the thread that follows its reports."""
    try:
        job._process = _spawn(request)
    except OSError as exc:  # no process to be had (limits, a missing interpreter)
        _end(job, "failed", ERR_NO_PROCESS.format(error=exc))
        return job
    job._thread = threading.Thread(target=_follow, args=(job,), name=f"sweep-{job.key}",
                                   daemon=True)  # fmt: skip
    job._thread.start()
    return job


def _progress(job: SweepJob, done: int, total: int, info: str, stage: str = "sweep") -> None:
    job.done, job.total, job.info, job.stage = done, total, info, stage


def _grid(job: SweepJob, message: dict) -> None:
    """A process that works out its own grid (the demo) names its sweep, config and cells."""
    from fairprune.config import config_from_dict

    job.config = config_from_dict(SweepConfig, message["config"])
    job.cells = message["cells"]
    job.resumed = sum(v["state"] == "stored earlier" for v in job.cells.values())
    job.total = len(job.cells) + 1
    job.done, job.stage, job.info = job.resumed + 1, "sweep", "the dense model is ready"
    with _lock:
        job.key = message["key"]
        if _jobs.get(job.key) is None or not _jobs[job.key].running:
            _jobs[job.key] = job  # a request for the same sweep now shares this job


def _unit_started(job: SweepJob, cell_keys: list[str]) -> None:
    job._set(cell_keys, "running", ("queued",))


def _cell_landed(job: SweepJob, cell_key: str) -> None:
    job._set([cell_key], "done")
    job.landed.append(cell_key)


def _end(job: SweepJob, state: str, error: str = "") -> None:
    job.state, job.error = state, error
    job._set(list(job.cells), "not run", ("queued", "running"))
    job.finished = time.time()


def _drive(job: SweepJob, store, models_dir, executor) -> None:
    """The thread that drives a sweep on Ray: run_sweep here, the units on Ray's workers."""
    from fairprune.sweep.grid import cell_key_for
    from fairprune.sweep.runner import run_sweep

    try:
        run_sweep(
            job.config,
            store=store,
            models_dir=models_dir,
            progress=lambda done, total, info: _progress(job, done, total, info),
            should_stop=job._stop.is_set,
            on_cell=lambda cell_key: _cell_landed(job, cell_key),
            on_unit=lambda unit: _unit_started(job, [cell_key_for(job.key, c) for c in unit.cells]),
            executor=executor,
        )
        _end(job, "cancelled" if job._stop.is_set() else "finished")
    except FairpruneError as exc:
        _end(job, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - reported on the page, logged in full
        log.exception("sweep %s failed", job.key)
        _end(job, "failed", unexpected_error(exc))


def unexpected_error(exc: BaseException) -> str:
    """The page's line for an error that is not one of fairprune's own (logged in full)."""
    return f"the sweep stopped on an unexpected error ({type(exc).__name__}: {exc})"


def sweep_niceness() -> int:
    """``FAIRPRUNE_SWEEP_NICE`` (0–19), or ``NICE_DEFAULT`` with a warning when it is not one."""
    from fairprune.utils import env_number

    value = env_number(NICE_ENV)
    if value is None:
        return NICE_DEFAULT
    if not (value == int(value) and 0 <= value <= 19):
        log.warning("%s=%s is not a whole number from 0 to 19; using %d", NICE_ENV, value,
                    NICE_DEFAULT)  # fmt: skip
        return NICE_DEFAULT
    return int(value)


def _sweep_request(job: SweepJob, results_path, models_dir) -> dict:
    """What the sweep's process is told: the sweep, the stores, its priority and threads."""
    import torch

    from fairprune.config import config_to_dict

    return {
        "key": job.key, "config": config_to_dict(job.config), "results": str(results_path),
        "models": str(models_dir), "nice": sweep_niceness(), "threads": torch.get_num_threads(),
    }  # fmt: skip


def _spawn(request: dict) -> subprocess.Popen:
    """Start a sweep's process and hand it ``request`` (``fairprune.app.sweep_process``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fairprune.app.sweep_process"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
    )  # fmt: skip
    _tell(process, json.dumps(request))
    return process


def _tell(process: subprocess.Popen, line: str) -> None:
    """Write one line to the sweep's process; one that has ended already needs telling nothing."""
    try:
        process.stdin.write(line + "\n")
        process.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _follow(job: SweepJob) -> None:
    """The thread that reads the sweep's process's reports into the job, to its end."""
    process = job._process
    ended = False
    try:
        for line in process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                log.warning("sweep %s: not a report: %r", job.key, line[:200])
                continue
            kind = message.get("t")
            if kind == "progress":
                _progress(job, message["done"], message["total"], message["info"],
                          message.get("stage", "sweep"))  # fmt: skip
            elif kind == "grid":
                _grid(job, message)
            elif kind == "unit":
                _unit_started(job, message["cells"])
            elif kind == "cell":
                _cell_landed(job, message["key"])
            elif kind == "end":
                _end(job, message["state"], message.get("error", ""))
                ended = True
    finally:
        try:
            process.stdin.close()
        except OSError:
            pass
        code = process.wait()
        if not ended:
            _end(job, "failed", ERR_PROCESS_ENDED.format(code=code))


def get_job(key: str) -> SweepJob | None:
    """The job for a sweep id, if one was started in this process."""
    return _jobs.get(key)


def running_jobs() -> list[SweepJob]:
    """Jobs still running."""
    return [j for j in _jobs.values() if j.running]
