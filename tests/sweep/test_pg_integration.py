"""The command line on a PostgreSQL results store, as a team runs it: a sweep killed with SIGKILL
mid-cell and resumed, two sweeps writing one store from two processes at once, the reading
commands, and the operator actions every run records (``pg_url``: a fresh database per test on
the throw-away server of ``tests/conftest.py``)."""

import contextlib
import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from fairprune.cli import main
from fairprune.sweep.results import ResultsStore
from tests.conftest import ROOT

ACTOR = f"{getpass.getuser()} (command line)"


def _sweep_args(results, demo_store, models, *, levels, losses=("ce",), name="") -> list[str]:
    """The fixture's tiny grid (its dense model and data, one epoch, no bootstrap)."""
    return [
        "sweep", "--results", str(results), "--models-dir", str(models),
        "--dense", str(demo_store["dense"].path), "--option", "limit=600",
        "--option", "test_limit=300", "--criteria", "l1", "--losses", *losses,
        "--levels", *levels, "--seeds", "0", "--epochs", "1", "--n-boot", "0", "--name", name,
    ]  # fmt: skip


def _cli(args, log):
    """``python -m fairprune ARGS`` in a process of its own, its output in the file ``log``."""
    return subprocess.Popen([sys.executable, "-m", "fairprune", *args], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


@contextlib.contextmanager
def _running(args, log: Path):
    """``_cli`` with its output in the file ``log``; killed on the way out if still running."""
    with open(log, "w") as out:
        proc = _cli(args, out)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


def _wait_cells(store, proc, n: int, log) -> None:
    """Until the store holds ``n`` cells; fails if ``proc`` ends first (with its ``log``'s tail)
    or 300 s pass."""
    deadline = time.monotonic() + 300
    while len(store.cells()) < n:
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"fewer than {n} cells in 300 s"
        time.sleep(0.05)


def _sigkill(proc) -> None:
    """kill -9, and wait for the process to be gone."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _one_row_per_group(store, cells) -> dict:
    """{cell key: its group rows}; fails on a group written twice."""
    rows = store.group_rows()
    rows = rows[rows["cell_key"].isin(cells["cell_key"])]
    assert not rows.duplicated(["cell_key", "group"]).any()
    return rows.groupby("cell_key").size().to_dict()


def test_a_cli_sweep_killed_mid_cell_resumes_with_every_cell_once(demo_store, pg_url, tmp_path):
    store = ResultsStore(pg_url)
    args = _sweep_args(pg_url, demo_store, tmp_path / "models", levels=("0.5", "0.75", "0.9"),
                       name="pg-killed")  # fmt: skip
    with _running(args, tmp_path / "run1.log") as proc:
        _wait_cells(store, proc, 2, tmp_path / "run1.log")  # the dense cell, a pruned one
        # the next unit (prune + fine-tune, seconds) has started: this kill lands mid-cell
        _sigkill(proc)
    before = store.cells().set_index("cell_key")
    assert 2 <= len(before) < 4
    with open(tmp_path / "run2.log", "w") as log:
        assert _cli(args, log).wait(300) == 0, (tmp_path / "run2.log").read_text()[-2000:]
    after = store.cells()
    assert len(after) == 4 and after["cell_key"].is_unique  # dense + three levels, each once
    kept = after.set_index("cell_key").loc[before.index]
    # the cells stored before the kill are the very rows written then, never recomputed
    pd.testing.assert_frame_equal(kept, before, check_like=True)
    assert set(_one_row_per_group(store, after).values()) == {4}  # 3 skin tones + overall
    assert len(store.predictions(list(after["cell_key"]))) == 4
    sweep_id = after["sweep_id"].iloc[0]
    actions = store.actions()
    assert list(actions["action"]) == ["sweep started", "sweep started"]  # a SIGKILL says nothing
    assert set(actions["actor"]) == {ACTOR} and set(actions["subject"]) == {sweep_id}
    assert actions["detail"].iloc[0] == "sweep: 3 cells to run (serial; 1 of 4 stored)"
    left = 4 - len(before)
    assert actions["detail"].iloc[1] == (
        f"sweep: {left} cells to run (serial; {len(before)} of 4 stored)"
    )


def test_two_sweeps_write_one_store_at_once_and_the_cli_reads_it(
    demo_store, pg_url, tmp_path, capsys
):
    store = ResultsStore(pg_url)
    runs = {
        "pg-a": _sweep_args(pg_url, demo_store, tmp_path / "models", levels=("0.5",),
                            losses=("ce", "pw"), name="pg-a"),
        "pg-b": _sweep_args(pg_url, demo_store, tmp_path / "models", levels=("0.75",),
                            losses=("ce", "pw"), name="pg-b"),
    }  # fmt: skip
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in runs}
    try:
        procs = {name: _cli(args, logs[name]) for name, args in runs.items()}
        codes = {name: proc.wait(600) for name, proc in procs.items()}
    finally:
        for f in logs.values():
            f.close()
    assert codes == {"pg-a": 0, "pg-b": 0}, [(tmp_path / f"{n}.log").read_text() for n in runs]
    sweeps = store.sweeps()
    assert sorted(sweeps["name"]) == ["pg-a", "pg-b"] and list(sweeps["cells"]) == [3, 3]
    cells = store.cells()
    assert len(cells) == 6 and cells["cell_key"].is_unique
    assert cells.groupby("sweep_id")["loss"].apply(sorted).tolist() == [["ce", "dense", "pw"]] * 2
    assert set(_one_row_per_group(store, cells).values()) == {4}
    long = store.export_long()
    assert len(long) == 24
    assert set(store.actions()["subject"]) == set(sweeps["sweep_id"])

    # the reading commands take the URL as they take a file
    out = tmp_path / "long.csv"
    assert main(["export", "--results", pg_url, "--out", str(out)]) == 0
    capsys.readouterr()
    assert out.read_text() == long.to_csv(index=False)
    sweep_a = sweeps.set_index("name").loc["pg-a", "sweep_id"]
    read = ["--results", pg_url, "--json"]
    assert main(["summary", *read, "--sweep", sweep_a, "--n-boot", "200"]) == 0
    assert json.loads(capsys.readouterr().out)["sweep_id"] == sweep_a
    assert main(["decide", sweep_a, "--results", pg_url, "--decision", "accept",
                 "--reviewer", "Bob", "--reviewer-email", "bob@example.org"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["decisions", *read]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["reviewer"], row["reviewer_email"], row["subject"]) == (
        "Bob",
        "bob@example.org",
        sweep_a,
    )
    assert main(["actions", *read]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["action"] for a in listed] == ["sweep started", "sweep started"]
    assert {a["actor"] for a in listed} == {ACTOR}


def test_an_unreachable_server_is_one_line_without_the_password(capsys):
    url = "postgresql://fair:topsecret@127.0.0.1:9/fairprune"  # port 9: nothing listens there
    assert main(["decisions", "--results", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "topsecret" not in err and "fair:***@127.0.0.1:9/fairprune" in err
