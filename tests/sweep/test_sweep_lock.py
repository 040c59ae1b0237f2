"""One driver per sweep and store across processes (two dashboards, a dashboard and a CLI)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from fairprune.errors import FairpruneError
from fairprune.sweep.results import ResultsStore
from fairprune.sweep.runner import run_sweep
from fairprune.sweep.sweep_lock import ERR_SWEEP_RUNNING, lock_path, sweep_lock
from tests.conftest import ROOT
from tests.sweep.test_runner import _config, dense_path  # noqa: F401 - the module's fixture

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from fairprune.sweep.sweep_lock import sweep_lock
with sweep_lock({store!r}, {sweep!r}):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold(store, sweep_id) -> subprocess.Popen:
    """Another process holding the sweep's lock (until killed)."""
    script = HOLDER.format(root=str(ROOT), store=str(store), sweep=sweep_id)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_until_the_first_dies(tmp_path):
    store = tmp_path / "r.sqlite"
    holder = _hold(store, "s1")
    try:
        with pytest.raises(FairpruneError) as err:
            with sweep_lock(store, "s1"):
                pass
        owner = f"pid {holder.pid} on {os.uname().nodename}"
        assert str(err.value) == ERR_SWEEP_RUNNING.format(sweep="s1", owner=owner)
        with sweep_lock(store, "s2"):  # another sweep on the same store does not wait
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops a killed process's lock
        holder.wait()
    with sweep_lock(store, "s1"):  # no stale lock: the sweep can be resumed
        assert lock_path(store, "s1").read_text() == f"pid {os.getpid()} on {os.uname().nodename}"
    assert lock_path(store, "s1").parent == tmp_path / "r.sqlite.sweeps"


def test_a_postgresql_sweep_lock_is_the_servers_and_dies_with_its_holder(pg_url):
    holder = _hold(pg_url, "s1")
    try:
        with pytest.raises(FairpruneError) as err:
            with sweep_lock(pg_url, "s1"):
                pass
        owner = f"pid {holder.pid} on {os.uname().nodename}"
        assert str(err.value) == ERR_SWEEP_RUNNING.format(sweep="s1", owner=owner)
        with sweep_lock(pg_url, "s2"):  # another sweep on the same store does not wait
            with pytest.raises(FairpruneError, match="sweep s2 is already running"):
                with sweep_lock(pg_url, "s2"):  # a second holder in this process is refused too
                    pass
    finally:
        holder.send_signal(signal.SIGKILL)  # the server ends the session, and its locks with it
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the server notices the closed socket within milliseconds
        try:
            with sweep_lock(pg_url, "s1"):
                break
        except FairpruneError:
            assert time.monotonic() < deadline, "the killed holder's lock outlived it"
            time.sleep(0.05)
    with sweep_lock(pg_url, "s1"):  # released on exit: taken again at once
        pass


def test_run_sweep_refuses_a_sweep_another_process_runs(
    tmp_path,
    store_location,
    dense_path,  # noqa: F811
):
    store = ResultsStore(store_location)
    cfg = _config(dense_path, reductions=(0.5,), losses=("ce",))
    sweep_id = run_sweep(cfg, store=store, models_dir=tmp_path / "m", only=lambda c: False)
    assert len(store.cells(sweep_id)) == 1  # the dense baseline; no pruned cell yet
    holder = _hold(store_location, sweep_id)
    try:
        with pytest.raises(FairpruneError, match="already running in another process"):
            run_sweep(cfg, store=store, models_dir=tmp_path / "m")
        assert len(store.cells(sweep_id)) == 1  # nothing ran twice
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    run_sweep(cfg, store=store, models_dir=tmp_path / "m")  # the holder gone: it runs
    assert sorted(store.cells(sweep_id)["criterion"]) == ["dense", "l1"]
