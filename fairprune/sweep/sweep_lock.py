"""One driver per sweep and results store, across processes: two dashboards, a CLI, a demo.

A dashboard keeps its jobs in its own process (``fairprune.app.jobs``), so two dashboard processes
on one store (two ports, or behind a proxy) — or a dashboard and a CLI — could each start the same
sweep and run every cell twice. ``run_sweep`` therefore holds an exclusive ``flock`` on a file
beside the store, one per sweep id (``<store>.sweeps/<sweep id>.lock``), while it plans and runs
the sweep; a second driver gets one line naming the holder instead of a duplicate run. The kernel
drops the lock when its process ends, however it ends (a kill -9 included), so a crashed sweep
never leaves a stale lock: running it again resumes it. Different sweeps never wait for each other.
The lock files stay (removing one while another process opens it would break the exclusion).
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fairprune.errors import FairpruneError

ERR_SWEEP_RUNNING = (
    "sweep {sweep} is already running in another process ({owner}); its cells appear here as "
    "they land: wait for it, or stop it where it was started and run it again to resume."
)
LOCK_DIR_SUFFIX = ".sweeps"


def lock_path(store_path: str | Path, sweep_id: str) -> Path:
    """The lock file of ``sweep_id`` for the results store at ``store_path``."""
    store_path = Path(store_path)
    return store_path.parent / f"{store_path.name}{LOCK_DIR_SUFFIX}" / f"{sweep_id}.lock"


@contextmanager
def sweep_lock(store_path: str | Path, sweep_id: str) -> Iterator[None]:
    """Hold the sweep's lock for the block; ``FairpruneError`` (one line) when another holds it.

    Parameters
    ----------
    store_path : path
        The results store's file.
    sweep_id : str
        The sweep's id (``fairprune.sweep.grid``).
    """
    path = lock_path(store_path, sweep_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "owner unknown"
            raise FairpruneError(ERR_SWEEP_RUNNING.format(sweep=sweep_id, owner=owner)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor drops the lock
