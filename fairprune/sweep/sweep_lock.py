"""One driver per sweep and results store, across processes: two dashboards, a CLI, a demo.

A dashboard keeps its jobs in its own process (``fairprune.app.jobs``), so two dashboard processes
on one store (two ports, or behind a proxy) — or a dashboard and a CLI — could each start the same
sweep and run every cell twice. ``run_sweep`` therefore holds an exclusive ``flock`` on a file
beside the store, one per sweep id (``<store>.sweeps/<sweep id>.lock``), while it plans and runs
the sweep; a second driver gets one line naming the holder instead of a duplicate run. The kernel
drops the lock when its process ends, however it ends (a kill -9 included), so a crashed sweep
never leaves a stale lock: running it again resumes it. Different sweeps never wait for each other.
The lock files stay (removing one while another process opens it would break the exclusion).

On a PostgreSQL store the lock is the server's: a session-level advisory lock (keyed on the sweep
id, in the store's database) held on a connection of its own for the whole sweep. The server drops
it when that connection ends — the process exits or is killed, on any machine — so here too a
crashed sweep leaves no stale lock. The holder is named by the connection's ``application_name``.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fairprune.errors import FairpruneError
from fairprune.paths import is_store_url
from fairprune.sweep.store_dialects import (
    libpq_url,
    parse_location,
    server_reason,
    sweep_lock_keys,
)
from fairprune.sweep.store_schema import ERR_PG_UNREACHABLE

ERR_SWEEP_RUNNING = (
    "sweep {sweep} is already running in another process ({owner}); its cells appear here as "
    "they land: wait for it, or stop it where it was started and run it again to resume."
)
LOCK_DIR_SUFFIX = ".sweeps"
_APP_PREFIX = "fairprune sweep: "  # application_name of the connection holding a sweep's lock
_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 2"
)


def lock_path(store_path: str | Path, sweep_id: str) -> Path:
    """The lock file of ``sweep_id`` for the results store at ``store_path``."""
    store_path = Path(store_path)
    return store_path.parent / f"{store_path.name}{LOCK_DIR_SUFFIX}" / f"{sweep_id}.lock"


def _owner() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


@contextmanager
def sweep_lock(store: str | Path, sweep_id: str) -> Iterator[None]:
    """Hold the sweep's lock for the block; ``FairpruneError`` (one line) when another holds it.

    Parameters
    ----------
    store : path or str
        The results store: its SQLite file, or its ``postgresql://`` URL (password included:
        the lock is taken on a connection of its own).
    sweep_id : str
        The sweep's id (``fairprune.sweep.grid``).
    """
    if is_store_url(store):
        with _server_lock(str(store), sweep_id):
            yield
        return
    path = lock_path(store, sweep_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "owner unknown"
            raise FairpruneError(ERR_SWEEP_RUNNING.format(sweep=sweep_id, owner=owner)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _owner().encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor drops the lock


@contextmanager
def _server_lock(url: str, sweep_id: str) -> Iterator[None]:
    """The PostgreSQL half of ``sweep_lock``: a session-level advisory lock on a connection
    opened for it (never a pooled one, which would outlive the sweep)."""
    import psycopg  # only a server store needs the driver

    loc = parse_location(url)
    space, key = sweep_lock_keys(sweep_id)
    try:
        conn = psycopg.connect(libpq_url(loc), autocommit=True, connect_timeout=10,
                               application_name=(_APP_PREFIX + _owner())[:63])  # fmt: skip
    except psycopg.OperationalError as exc:
        reason = server_reason(exc, loc)
        raise FairpruneError(
            ERR_PG_UNREACHABLE.format(location=loc.display, reason=reason)
        ) from None
    with conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (space, key)).fetchone()[0]:
            row = conn.execute(_HOLDER, (space & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
            name = (row[0] or "") if row else ""
            owner = name.removeprefix(_APP_PREFIX) if name.startswith(_APP_PREFIX) else ""
            raise FairpruneError(
                ERR_SWEEP_RUNNING.format(sweep=sweep_id, owner=owner or "owner unknown")
            )
        try:
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (space, key))
            except psycopg.Error:
                pass  # the connection is gone, and the server dropped its lock with it
