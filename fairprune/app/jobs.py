"""Background sweep jobs for the dashboard: a sweep runs in a thread, the page polls its state.

Cells land in the results store as they finish, so a cancelled (or crashed) job loses at most the
cell in progress, and rerunning the same sweep resumes it. Jobs are process-wide, keyed by sweep
id: two browser sessions asking for the same sweep share one job instead of racing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fairprune.config import SweepConfig
from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)


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


_jobs: dict[str, SweepJob] = {}
_lock = threading.Lock()


def start_sweep(
    config: SweepConfig, *, results_path: str | Path, models_dir: str | Path
) -> SweepJob:
    """Start ``config`` in a background thread, or return the job already running it."""
    from fairprune.nets.imports import load_model
    from fairprune.sweep.grid import cell_key_for, iter_cells, sweep_id_for, validate_sweep
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep

    validate_sweep(config)  # bad grids fail here, in the caller, not in the thread
    _model, record = load_model(config.dense_model)
    key = sweep_id_for(config, record.sha256)
    store = ResultsStore(results_path)
    cells = list(iter_cells(config))
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.running:
            return job
        resumed = sum(store.has_cell(cell_key_for(key, c)) for c in cells)
        job = SweepJob(key=key, config=config, total=len(cells) + 1, resumed=resumed)
        _jobs[key] = job

    def progress(done: int, total: int, info: str) -> None:
        job.done, job.total, job.info = done, total, info

    def run() -> None:
        try:
            run_sweep(
                config,
                store=store,
                models_dir=models_dir,
                progress=progress,
                should_stop=job._stop.is_set,
                on_cell=job.landed.append,
            )
            job.state = "cancelled" if job._stop.is_set() else "finished"
        except FairpruneError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the page, logged in full
            log.exception("sweep %s failed", key)
            job.state = "failed"
            job.error = f"the sweep stopped on an unexpected error ({type(exc).__name__}: {exc})"
        finally:
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
