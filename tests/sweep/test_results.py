"""The results store on both databases (``store_location``: an SQLite file or a fresh PostgreSQL
database): round trip, idempotent cells, atomic writes, concurrent writers, the append-only logs;
then what is SQLite's own (the file, its migrations, kill -9) or PostgreSQL's own."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from fairprune.errors import FairpruneError
from fairprune.metrics import METRIC_COLUMNS
from fairprune.sweep.results import (
    ACTION_COLUMNS,
    ACTIONS,
    DECISION_COLUMNS,
    ERR_ACTIONS_APPEND_ONLY,
    ERR_APPEND_ONLY,
    ERR_BAD_ACTION,
    ERR_BAD_DECISION,
    ERR_BAD_KIND,
    ERR_BAD_MODEL_HASH,
    ERR_NEWER_SCHEMA,
    ERR_NO_ACTOR,
    ERR_NO_REVIEWER,
    ERR_NO_SWEEP,
    ERR_NOT_A_STORE,
    ERR_PG_UNREACHABLE,
    LONG_COLUMNS,
    NOT_SQLITE,
    OTHER_TABLES,
    SCHEMA_VERSION,
    ResultsStore,
)


@contextmanager
def _raw(location):
    """A plain DB-API connection to the store's database, past fairprune: another program."""
    if isinstance(location, Path):
        with closing(sqlite3.connect(location)) as conn, conn:
            yield conn
    else:
        with psycopg.connect(location, autocommit=True) as conn:
            yield conn


def _groups(acc=(0.9, 0.8, 0.85)):
    return pd.DataFrame(
        {
            "group": ["dark", "light", "overall"],
            "n": [10, 20, 30],
            "accuracy": list(acc),
            "accuracy_low": [0.7, 0.6, 0.75],
            "accuracy_high": [0.95, 0.9, 0.9],
            "balanced_accuracy": [0.88, 0.79, 0.84],
            "auroc": [0.91, np.nan, 0.9],
            "tpr": [0.9, 0.8, 0.85],
            "fpr": [0.1, 0.2, 0.15],
            "selection_rate": [0.5, 0.5, 0.5],
        }
    )


def _model(name="m", criterion="l1", loss="ce", target=0.5):
    return {
        "name": name, "sha256": "ab" * 32, "path": f"/x/{name}.safetensors", "dataset": "synthderm",
        "arch": "demo_cnn", "criterion": criterion, "loss": loss, "target_reduction": target,
        "flops_reduction": target + 0.004, "macs": 1000, "params": 50, "file_size": 4096,
    }  # fmt: skip


def _write(store, key, sweep="s1", seed=3, **kw):
    store.write_cell(
        cell_key=key, sweep_id=sweep, model=_model(**kw),
        config={"cell": {"seed": seed}}, overall={"accuracy": 0.85, "gap": 0.1, "latency_ms": 1.5},
        groups=_groups(),
    )  # fmt: skip


@dataclass(frozen=True)
class _Record:  # stands in for store.ModelRecord: read by attribute, not as a dict
    name: str = "pruned-a"
    sha256: str = "cd" * 32
    path: str = "/models/pruned-a.safetensors"
    dataset: str = "synthderm"
    arch: str = "demo_cnn"
    criterion: str = "pw_taylor"
    loss: str = "pw"
    target_reduction: float = 0.9
    flops_reduction: float = 0.8987
    macs: int = 123456
    params: int = 7890
    file_size: int = 31337


def test_round_trip_every_number(store_location):
    store = ResultsStore(store_location)
    store.register_sweep("s1", {"a": 1}, name="demo")
    config = {"cell": {"seed": 7}, "prune": {"gamma": 5.0}}
    overall = {
        "accuracy": np.float32(0.8125), "gap": 0.25, "std_delta": 0.0625, "max_psi": 0.125,
        "latency_ms": 2.5, "weight_sparsity": 0.4,
    }  # fmt: skip
    groups = _groups()
    store.write_cell(
        cell_key="k1", sweep_id="s1", model=_Record(), config=config, overall=overall,
        groups=groups, split="val",
    )  # fmt: skip
    cell = store.cells("s1").iloc[0]
    rec = _Record()
    for col, want in [("model", rec.name), ("model_hash", rec.sha256), ("model_path", rec.path),
                      ("dataset", "synthderm"), ("arch", "demo_cnn"), ("criterion", "pw_taylor"),
                      ("loss", "pw"), ("seed", 7), ("macs", 123456), ("params", 7890),
                      ("file_size", 31337), ("split", "val"), ("sweep_id", "s1")]:  # fmt: skip
        assert cell[col] == want, col
    for col in ("gap", "std_delta", "max_psi", "latency_ms", "weight_sparsity"):
        assert cell[col] == overall[col], col
    assert cell["accuracy"] == 0.8125  # numpy scalars are stored as plain numbers
    assert cell["target_reduction"] == 0.9 and cell["flops_reduction"] == 0.8987
    assert json.loads(cell["config_json"]) == config
    rows = store.group_rows("s1")
    assert list(rows["group"]) == ["dark", "light", "overall"]
    assert (rows["split"] == "val").all() and (rows["cell_key"] == "k1").all()
    pd.testing.assert_frame_equal(rows[METRIC_COLUMNS], groups, check_dtype=False)
    sweeps = store.sweeps()
    assert sweeps.loc[0, "name"] == "demo" and sweeps.loc[0, "cells"] == 1
    assert json.loads(sweeps.loc[0, "config_json"]) == {"a": 1}
    store.register_sweep("s1", {"a": 2}, name="again")  # the first registration is kept
    assert store.sweeps().loc[0, "name"] == "demo"


def test_export_long_columns_values_and_csv(store_location):
    store = ResultsStore(store_location)
    _write(store, "k2", criterion="l1", loss="pw")
    _write(store, "k1", criterion="l1", loss="ce")
    _write(store, "k0", criterion="dense", loss="dense", target=0.0)
    assert store.has_cell("k1") and not store.has_cell("k9")
    long = store.export_long()
    assert list(long.columns) == LONG_COLUMNS
    assert len(long) == 9
    # sorted: criterion, loss, ..., then groups by name with "overall" last
    assert list(long["cell_key"]) == ["k0"] * 3 + ["k1"] * 3 + ["k2"] * 3
    assert list(long["group"]) == ["dark", "light", "overall"] * 3
    row = long[(long["group"] == "dark") & (long["cell_key"] == "k1")].iloc[0]
    assert row["accuracy"] == 0.9 and row["n"] == 10 and row["seed"] == 3
    assert row["accuracy_low"] == 0.7 and row["accuracy_high"] == 0.95
    assert row["flops_reduction"] == pytest.approx(0.504) and row["macs"] == 1000
    assert np.isnan(long[long["group"] == "light"].iloc[0]["auroc"])  # NaN survives as NULL
    assert store.cells().loc[0, "latency_ms"] == 1.5
    assert store.export_long(sweep_id="other").empty


def test_rewrite_replaces_the_cells_rows(store_location):
    store = ResultsStore(store_location)
    _write(store, "k1")
    _write(store, "k2", sweep="s2")
    store.write_cell(
        cell_key="k1", sweep_id="s1", model=_model(), config={}, overall={},
        groups=_groups((0.5, 0.5, 0.5)),
    )  # fmt: skip
    long = store.export_long("s1")
    assert len(long) == 3 and (long["accuracy"] == 0.5).all()
    assert len(store.cells()) == 2 and len(store.group_rows()) == 6
    with _raw(store_location) as conn:  # no orphan group rows left behind
        assert conn.execute("SELECT COUNT(*) FROM group_rows").fetchone()[0] == 6


class _Explodes:
    """A value whose adaptation raises: the failure happens inside the open transaction."""

    def __conform__(self, protocol):
        raise RuntimeError("interrupted")


def test_interrupted_write_leaves_no_partial_cell(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    bad = _groups((0.1, 0.1, 0.1))
    bad["n"] = [10, 20, _Explodes()]  # cells row and two group rows are in when it fails
    with pytest.raises(RuntimeError, match="interrupted"):
        store.write_cell(cell_key="k", sweep_id="s", model=_model(), config={}, overall={},
                         groups=bad)  # fmt: skip
    assert not store.has_cell("k")
    assert store.group_rows().empty and store.cells().empty
    # a failed rewrite leaves the earlier cell as it was
    _write(store, "k", sweep="s")
    with pytest.raises(RuntimeError, match="interrupted"):
        store.write_cell(cell_key="k", sweep_id="s", model=_model(), config={}, overall={},
                         groups=bad)  # fmt: skip
    rows = store.group_rows()
    assert list(rows["accuracy"]) == [0.9, 0.8, 0.85]
    assert store.cells().loc[0, "gap"] == 0.1


def test_a_write_failing_in_its_transaction_keeps_the_earlier_cell(store_location):
    store = ResultsStore(store_location)
    _write(store, "k", sweep="s")
    twice = pd.concat([_groups((0.1, 0.1, 0.1))] * 2)  # a group twice: its key fails at the end
    with pytest.raises(sa.exc.IntegrityError):
        store.write_cell(cell_key="k", sweep_id="s", model=_model(), config={}, overall={},
                         groups=twice)  # fmt: skip
    assert list(store.group_rows()["accuracy"]) == [0.9, 0.8, 0.85]
    assert store.cells().loc[0, "gap"] == 0.1 and len(store.cells()) == 1


def test_file_is_wal_with_schema_version(tmp_path):
    path = tmp_path / "r.sqlite"
    _write(ResultsStore(path), "k1")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


def test_threads_share_one_store(store_location):
    store = ResultsStore(store_location)
    errors = []

    def work(t):
        try:
            for i in range(5):
                _write(store, f"t{t}-{i}", sweep=f"t{t}")
                assert store.has_cell(f"t{t}-{i}")
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.cells()) == 20 and len(store.group_rows()) == 60


def test_writers_of_one_cell_take_turns(store_location):
    # a retried unit may land twice at once (two drivers, a replayed Ray task): the second
    # replaces the first, never fails on the cell's key, never leaves both cells' rows
    store = ResultsStore(store_location)
    errors = []

    def work(t):
        try:
            for _ in range(5):
                _write(store, "k", seed=t)
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.cells()) == 1 and len(store.group_rows()) == 3


STORE_ONLY = """
import sys, types
sys.path.insert(0, {root!r})
import fairprune
# the store's modules without fairprune/sweep/__init__.py, which imports the sweep runner and
# Torch-Pruning (the store still imports torch, for fairprune.evaluate.Outcomes): the writer
# processes would spend their time importing rather than writing
sweep = types.ModuleType("fairprune.sweep")
sweep.__path__ = [{root!r} + "/fairprune/sweep"]
sys.modules["fairprune.sweep"] = sweep
"""

WRITER = (
    STORE_ONLY
    + """
from tests.sweep.test_results import _write
from fairprune.sweep.results import ResultsStore
store = ResultsStore({path!r})
for i in range(20):
    _write(store, f"{prefix}-{{i}}", sweep={prefix!r}, seed=i)
"""
)


def test_two_processes_write_concurrently(store_location):
    # plain subprocesses, not multiprocessing: spawn re-runs __main__, which AppTest replaces
    path = store_location
    root = str(Path(__file__).resolve().parents[2])
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER.format(root=root, path=str(path), prefix=p)])
        for p in ("a", "b")
    ]  # both create the file: the schema is made once, in one transaction
    assert [p.wait(120) for p in procs] == [0, 0]
    store = ResultsStore(path)
    cells = store.cells()
    assert len(cells) == 40
    assert sorted(cells["cell_key"]) == sorted(f"{p}-{i}" for p in "ab" for i in range(20))
    rows = store.group_rows()
    assert len(rows) == 120
    per_cell = rows.groupby("cell_key")["group"].apply(tuple)
    assert set(per_cell) == {("dark", "light", "overall")} and len(per_cell) == 40
    assert (rows[rows["group"] == "dark"]["accuracy"] == 0.9).all()
    by_key = cells.set_index("cell_key")
    assert by_key.loc["a-7", "seed"] == 7 and by_key.loc["b-19", "sweep_id"] == "b"


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FairpruneError) as err:
        ResultsStore(path)
    assert str(err.value) == ERR_NOT_A_STORE.format(path=path, reason=NOT_SQLITE)
    assert path.read_bytes() == b"this is not sqlite" * 100  # left untouched


def test_other_sqlite_database_and_newer_schema_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(FairpruneError) as err:
        ResultsStore(other)
    assert str(err.value) == ERR_NOT_A_STORE.format(path=other, reason=OTHER_TABLES)
    newer = tmp_path / "newer.sqlite"
    ResultsStore(newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(FairpruneError) as err:
        ResultsStore(newer)
    assert str(err.value) == ERR_NEWER_SCHEMA.format(path=newer, found=99)


def test_opening_an_existing_store_does_not_write(tmp_path):
    path = tmp_path / "r.sqlite"
    _write(ResultsStore(path), "k1")
    before = [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(tmp_path.iterdir())]
    store = ResultsStore(path)
    store.export_long()
    store.has_cell("k1")
    after = [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(tmp_path.iterdir())]
    assert before == after


KILLED_WRITER = (
    STORE_ONLY
    + """
import time
import numpy as np, pandas as pd
from fairprune.metrics import METRIC_COLUMNS
from fairprune.sweep.results import ResultsStore


def hold():  # stop where the test wants its kill to land; the marker file says it is there
    open({marker!r}, "w").close()
    time.sleep(600)


store = ResultsStore({path!r})
groups = pd.DataFrame({{c: np.linspace(0.1, 0.9, 200) for c in METRIC_COLUMNS}})
groups["group"] = [f"g{{i:03d}}" for i in range(200)]  # 200 rows: each transaction takes a while
groups["n"] = 7
for i in range({cells}):
    key = f"cell-{{i:03d}}"
    if store.has_cell(key):  # resume: finished cells are skipped, as run_sweep does
        continue
    print("start", key, flush=True)
    model = {{"name": key, "sha256": "ab" * 32, "criterion": "l1", "loss": "pw",
              "target_reduction": 0.5, "flops_reduction": 0.5}}
    store.write_cell(cell_key=key, sweep_id="s", model=model, config={{"cell": {{"seed": i}}}},
                     overall={{"accuracy": i / 100}}, groups=groups)
    if i == {hold_at} and {hold!r} == "committed":
        hold()  # committed, not reported yet
    print("done", key, flush=True)  # only after the commit: a reported cell is a finished cell
    if i == {hold_at} and {hold!r} == "printed":
        hold()  # reported, but the line waits in the pipe
"""
)


def _writer(tmp_path, cells, hold_at=-1, hold=""):
    root = Path(__file__).resolve().parents[2]
    return KILLED_WRITER.format(
        root=str(root), path=str(tmp_path / "r.sqlite"), cells=cells, hold_at=hold_at, hold=hold,
        marker=str(tmp_path / "held"),
    )  # fmt: skip


def _kill_after(script, done, marker=None):
    """Start a writer, read its lines up to its ``done``-th "done", wait for ``marker`` if given,
    SIGKILL it. Returns (the lines read before the kill, the lines still in the pipe after it)."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        read = []
        while sum(line.startswith("done ") for line in read) < done:
            line = proc.stdout.readline()
            assert line, "the writer ended before it could be killed"
            read.append(line.strip())
        deadline = time.monotonic() + 120
        while marker is not None and not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the writer did not hold"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        # what it printed after the line we read last, up to the kill: reports like the others
        unread = proc.stdout.read().splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    if marker is not None:
        marker.unlink()
    return read, unread


def _reports(lines):
    """(cells reported done, the cell started but not reported: in flight when it was killed)."""
    done = [line.split()[1] for line in lines if line.startswith("done ")]
    started = [line.split()[1] for line in lines if line.startswith("start ")]
    return done, [k for k in started if k not in done]


def _resume_problems(done, in_flight, stored, cells):
    """What a killed and resumed sweep got wrong; [] when every reported cell is stored, none is
    reported twice, and a cell stored but never reported is one a kill caught between its commit
    and its report."""
    problems = []
    twice = sorted(k for k, n in Counter(done).items() if n > 1)
    if twice:
        problems.append(f"reported twice (lost, then written again): {twice}")
    missing = sorted(set(done) - set(stored))
    if missing:
        problems.append(f"reported but not stored: {missing}")
    if stored != [f"cell-{i:03d}" for i in range(cells)]:
        problems.append(f"the store holds {len(stored)} cells, not the {cells} of the sweep")
    unexplained = sorted(set(stored) - set(done) - set(in_flight))
    if unexplained:
        problems.append(f"stored, never reported, not in flight at a kill: {unexplained}")
    return problems


def _stored(path):
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in conn.execute("SELECT cell_key FROM cells ORDER BY cell_key")]
        per_cell = dict(conn.execute("SELECT cell_key, COUNT(*) FROM group_rows GROUP BY cell_key"))
    return keys, per_cell


def test_five_kill_9_during_a_sweep_then_resume(tmp_path):
    # a sweep process killed with SIGKILL five times, mid-cell, then run to the end: every cell
    # it reported finished is kept, none is written twice, no cell is half there, the file is ok
    cells = 40
    script = _writer(tmp_path, cells)
    lines = []
    for _ in range(5):
        read, unread = _kill_after(script, 3)  # let it finish three cells, then kill it
        # the lines it wrote between our third read and the kill count too: without them a cell
        # committed and reported in that moment is missing from the count (39 == 40, once in CI)
        lines += read + unread
    end = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert end.returncode == 0, end.stderr
    done, in_flight = _reports(lines + end.stdout.splitlines())
    keys, per_cell = _stored(tmp_path / "r.sqlite")
    assert _resume_problems(done, in_flight, keys, cells) == []
    assert len(per_cell) == cells and set(per_cell.values()) == {200}  # no half-written cell
    store = ResultsStore(tmp_path / "r.sqlite")
    assert store.cells().set_index("cell_key").loc["cell-017", "seed"] == 17


def test_kills_where_the_old_count_lost_a_cell(tmp_path):
    # the kill -9 test once failed 39 == 40: it counted only the lines it had read before the
    # kill. Two writers stop where that miscounts, and the third finishes the sweep.
    cells, marker = 8, tmp_path / "held"
    # 1: holds after committing and reporting cell-003, one past the three lines the test reads
    read1, unread1 = _kill_after(_writer(tmp_path, cells, 3, "printed"), 3, marker)
    # 2: resumes at cell-004 and holds after committing cell-005, before reporting it
    read2, unread2 = _kill_after(_writer(tmp_path, cells, 5, "committed"), 1, marker)
    end = subprocess.run([sys.executable, "-c", _writer(tmp_path, cells)], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert end.returncode == 0, end.stderr
    assert unread1 == ["start cell-003", "done cell-003"] and unread2 == ["start cell-005"]
    resumed = end.stdout.splitlines()  # both held cells were committed: it skips them
    assert resumed == ["start cell-006", "done cell-006", "start cell-007", "done cell-007"]
    keys, _ = _stored(tmp_path / "r.sqlite")
    old_done, old_in_flight = _reports(read1 + read2 + resumed)
    assert len(set(old_done)) == 6  # the old check, 6 == 8, fails
    assert _resume_problems(old_done, old_in_flight, keys, cells) == [
        "stored, never reported, not in flight at a kill: ['cell-003', 'cell-005']"
    ]
    done, in_flight = _reports(read1 + unread1 + read2 + unread2 + resumed)
    assert len(done) == 7 and in_flight == ["cell-005"]  # killed between commit and report
    assert _resume_problems(done, in_flight, keys, cells) == []


def test_the_resume_check_fails_on_a_lost_or_repeated_cell():
    every = [f"cell-{i:03d}" for i in range(4)]
    assert _resume_problems(every, [], every, 4) == []
    # cell-001 reported, then lost by the store and written again by the resumed writer
    assert _resume_problems([*every, "cell-001"], [], every, 4) == [
        "reported twice (lost, then written again): ['cell-001']"
    ]
    assert _resume_problems(every, [], every[:3], 4) == [
        "reported but not stored: ['cell-003']",
        "the store holds 3 cells, not the 4 of the sweep",
    ]
    # stored but never reported: only the cell a writer was killed in may be
    assert _resume_problems(every[:3], [], every, 4) == [
        "stored, never reported, not in flight at a kill: ['cell-003']"
    ]
    assert _resume_problems(every[:3], ["cell-003"], every, 4) == []


def test_decisions_are_appended_survive_a_restart_and_never_change(store_location):
    from datetime import UTC, datetime

    path = store_location
    store = ResultsStore(path)
    store.register_sweep("s1", {}, name="demo")
    store.register_sweep("s2", {}, name="other")
    _write(store, "k1", sweep="s1")  # its model's hash is "ab" * 32
    t = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    first = store.record_decision(subject="s1", kind="sweep", decision="needs work",
                                  reviewer=" Ana ", reviewer_email=" ana@example.org ",
                                  comment="rerun seed 2", when=t)  # fmt: skip
    assert first == {"id": 1, "created": "2026-03-04T05:06:07Z", "kind": "sweep", "subject": "s1",
                     "decision": "needs work", "reviewer": "Ana", "reviewer_email": "ana@example.org",
                     "comment": "rerun seed 2"}  # fmt: skip
    store.record_decision(subject="ab" * 32, kind="model", decision="reject", reviewer="Bo", when=t)
    store.record_decision(subject="s1", kind="sweep", decision="accept", reviewer="Ana", when=t)
    store.record_decision(subject="s2", kind="sweep", decision="reject", reviewer="Cy", when=t)

    reopened = ResultsStore(path)  # a restart: a new store object on the same file
    every = reopened.decisions()
    assert list(every.columns) == DECISION_COLUMNS
    assert list(every["id"]) == [1, 2, 3, 4]
    assert list(every["decision"]) == ["needs work", "reject", "accept", "reject"]
    s1 = reopened.decisions(sweep_id="s1")  # the sweep and the models of its cells
    assert list(s1["id"]) == [1, 2, 3] and list(s1["kind"]) == ["sweep", "model", "sweep"]
    assert list(reopened.decisions(subject="s2")["reviewer"]) == ["Cy"]
    assert list(every["reviewer_email"]) == ["ana@example.org", "", "", ""]

    for sql in ("UPDATE decisions SET decision = 'accept' WHERE id = 2",
                "DELETE FROM decisions WHERE id = 1"):  # fmt: skip
        with _raw(path) as conn:  # append-only even for other programs
            with pytest.raises((sqlite3.IntegrityError, psycopg.Error), match=ERR_APPEND_ONLY):
                conn.execute(sql)
    assert list(ResultsStore(path).decisions()["decision"]) == list(every["decision"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reviewer": "  "}, ERR_NO_REVIEWER),
        ({"decision": "maybe"}, ERR_BAD_DECISION.format(value="maybe")),
        ({"kind": "cell"}, ERR_BAD_KIND.format(value="cell")),
        ({"subject": "sw-nope"}, ERR_NO_SWEEP.format(subject="sw-nope")),
        ({"kind": "model", "subject": "abc"}, ERR_BAD_MODEL_HASH.format(subject="abc")),
    ],
)
def test_a_bad_decision_is_one_line_and_stores_nothing(store_location, kwargs, message):
    store = ResultsStore(store_location)
    store.register_sweep("s1", {})
    args = {"subject": "s1", "kind": "sweep", "decision": "accept", "reviewer": "Ana", **kwargs}
    with pytest.raises(FairpruneError) as err:
        store.record_decision(**args)
    assert str(err.value) == message
    assert store.decisions().empty


def test_a_version_2_store_gains_decisions_and_keeps_its_rows(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path)
    _write(store, "k1")
    with sqlite3.connect(path) as conn:  # what fairprune with schema 2 wrote
        conn.executescript(
            "DROP TABLE decisions; DROP INDEX cells_by_model; PRAGMA user_version = 2;"
        )
    store = ResultsStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.has_cell("k1") and list(store.group_rows()["accuracy"]) == [0.9, 0.8, 0.85]
    store.register_sweep("s1", {})
    store.record_decision(subject="s1", kind="sweep", decision="accept", reviewer="Ana")
    assert list(ResultsStore(path).decisions()["decision"]) == ["accept"]


def test_a_models_stored_cell_and_predictions_are_found_by_its_hash(store_location):
    from types import SimpleNamespace

    store = ResultsStore(store_location)
    preds = SimpleNamespace(y_true=np.array([0, 1, 1]), y_pred=np.array([0, 0, 1]),
                            groups=np.array([0, 1, 1]), split_key="fp-test",
                            probs=np.array([[0.75, 0.25], [0.5, 0.5], [0.125, 0.875]]))  # fmt: skip
    store.write_cell(cell_key="k1", sweep_id="s1", model=_model(), config={}, overall={},
                     groups=_groups(), predictions=preds, group_names=["dark", "light"],
                     class_names=["benign", "malignant"])  # fmt: skip
    assert store.cells_of_model("ab" * 32) == ["k1"]
    assert store.cells_of_model("ab" * 32, "fp-test") == ["k1"]
    assert store.cells_of_model("ab" * 32, "other-split") == []
    assert store.cells_of_model("cd" * 32) == []
    stored = store.predictions(["k1"])["k1"]
    np.testing.assert_array_equal(stored.confidence_true, [0.75, 0.5, 0.875])
    table = store.cell_groups("k1")
    assert list(table["group"]) == ["dark", "light", "overall"]
    assert list(table.columns) == METRIC_COLUMNS
    assert table.loc[0, "accuracy"] == 0.9 and np.isnan(table.loc[1, "auroc"])


def test_a_sweeps_version_changes_with_its_own_cells_only(store_location):
    store = ResultsStore(store_location)
    store.register_sweep("s1", {})
    store.register_sweep("s2", {})
    before, all_before = store.version("s1"), store.version()
    store.write_cell(cell_key="k1", sweep_id="s2", model=_model(), config={}, overall={},
                     groups=_groups())  # fmt: skip
    assert store.version("s1") == before  # another sweep's cell: s1's caches stay
    assert store.version() != all_before and store.version("s2") != store.version("s1")
    store.write_cell(cell_key="k2", sweep_id="s1", model=_model(), config={}, overall={},
                     groups=_groups())  # fmt: skip
    after = store.version("s1")
    assert after != before
    store.record_decision(subject="s1", kind="sweep", decision="accept", reviewer="Ana")
    assert store.version("s1") == after  # decisions never count


SCHEMA_3 = """
CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE cells (cell_key TEXT PRIMARY KEY, sweep_id TEXT NOT NULL, model TEXT NOT NULL,
    model_hash TEXT NOT NULL, model_path TEXT, dataset TEXT, arch TEXT, criterion TEXT NOT NULL,
    loss TEXT NOT NULL, seed INTEGER, target_reduction REAL NOT NULL,
    flops_reduction REAL NOT NULL, macs INTEGER, params INTEGER, file_size INTEGER,
    latency_ms REAL, weight_sparsity REAL, accuracy REAL, gap REAL, std_delta REAL,
    max_psi REAL, split TEXT NOT NULL, config_json TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX cells_by_sweep ON cells (sweep_id);
CREATE TABLE group_rows (cell_key TEXT NOT NULL REFERENCES cells (cell_key) ON DELETE CASCADE,
    split TEXT NOT NULL, grp TEXT NOT NULL, n INTEGER, accuracy REAL, accuracy_low REAL,
    accuracy_high REAL, balanced_accuracy REAL, auroc REAL, tpr REAL, fpr REAL,
    selection_rate REAL, PRIMARY KEY (cell_key, split, grp));
CREATE TABLE predictions (cell_key TEXT PRIMARY KEY REFERENCES cells (cell_key)
    ON DELETE CASCADE, split TEXT NOT NULL, n INTEGER NOT NULL, num_classes INTEGER NOT NULL,
    split_key TEXT NOT NULL, group_names TEXT NOT NULL, class_names TEXT NOT NULL,
    y_true BLOB NOT NULL, y_pred BLOB NOT NULL, groups BLOB NOT NULL, probs BLOB NOT NULL);
CREATE INDEX cells_by_model ON cells (model_hash);
CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('sweep', 'model')), subject TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'needs work', 'reject')),
    reviewer TEXT NOT NULL CHECK (length(trim(reviewer)) > 0), comment TEXT NOT NULL DEFAULT '');
CREATE INDEX decisions_by_subject ON decisions (subject);
CREATE TRIGGER decisions_never_change BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_never_go BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
PRAGMA journal_mode = WAL;
PRAGMA user_version = 3;
INSERT INTO sweeps VALUES ('s1', 'old', '{}', 1.5);
INSERT INTO cells (cell_key, sweep_id, model, model_hash, criterion, loss, target_reduction,
    flops_reduction, split, config_json, created, seed)
    VALUES ('k1', 's1', 'm', 'ab', 'l1', 'ce', 0.5, 0.5, 'test', '{}', 2.5, 4);
INSERT INTO group_rows (cell_key, split, grp, n, accuracy) VALUES ('k1', 'test', 'dark', 9, 0.75);
INSERT INTO decisions (created, kind, subject, decision, reviewer, comment)
    VALUES ('2026-01-02T03:04:05Z', 'sweep', 's1', 'reject', 'Ana', 'too wide');
"""
"""What fairprune wrote with schema 3 (its DDL as shipped), and a few rows."""


def test_a_version_3_store_gains_emails_and_actions_and_keeps_every_row(tmp_path):
    path = tmp_path / "r.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(SCHEMA_3)
    store = ResultsStore(path)
    with _raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        columns = [r[1] for r in conn.execute("PRAGMA table_info(decisions)")]
        assert columns[-1] == "reviewer_email"
    old = store.decisions()
    assert list(old.columns) == DECISION_COLUMNS
    assert old.iloc[0].to_dict() == {
        "id": 1, "created": "2026-01-02T03:04:05Z", "kind": "sweep", "subject": "s1",
        "decision": "reject", "reviewer": "Ana", "reviewer_email": "", "comment": "too wide",
    }  # fmt: skip
    assert store.cells().loc[0, "seed"] == 4 and store.group_rows().loc[0, "accuracy"] == 0.75
    new = store.record_decision(subject="s1", kind="sweep", decision="accept", reviewer="Bo",
                                reviewer_email="bo@example.org")  # fmt: skip
    assert new["id"] == 2 and new["reviewer_email"] == "bo@example.org"
    assert store.record_action(actor="Ops", action="store changed", subject="x")["id"] == 1
    for sql, message in [
        ("UPDATE decisions SET reviewer_email = 'x'", ERR_APPEND_ONLY),
        ("DELETE FROM decisions", ERR_APPEND_ONLY),
        ("UPDATE actions SET actor = 'x'", ERR_ACTIONS_APPEND_ONLY),
        ("DELETE FROM actions", ERR_ACTIONS_APPEND_ONLY),
    ]:
        with _raw(path) as conn, pytest.raises(sqlite3.IntegrityError, match=message):
            conn.execute(sql)
    reopened = ResultsStore(path)  # migrated once: opening again changes nothing
    assert list(reopened.decisions()["reviewer"]) == ["Ana", "Bo"]
    assert list(reopened.actions()["action"]) == ["store changed"]


def test_actions_are_appended_in_order_and_never_change(store_location):
    from datetime import UTC, datetime

    store = ResultsStore(store_location)
    t = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    first = store.record_action(actor=" Ana ", actor_email="ana@example.org", action="sweep started",
                                subject="sw-1", detail="4 cells to run", when=t)  # fmt: skip
    assert first == {"id": 1, "created": "2026-03-04T05:06:07Z", "actor": "Ana",
                     "actor_email": "ana@example.org", "action": "sweep started",
                     "subject": "sw-1", "detail": "4 cells to run"}  # fmt: skip
    for action in ACTIONS[1:]:
        store.record_action(actor="Bo", action=action, subject="x", when=t)
    every = ResultsStore(store_location).actions()
    assert list(every.columns) == ACTION_COLUMNS
    assert list(every["id"]) == [1, 2, 3, 4, 5] and list(every["action"]) == list(ACTIONS)
    newest = store.actions(limit=2)
    assert list(newest["id"]) == [4, 5]  # the newest two, still oldest first
    before = store.version()
    for sql in ("UPDATE actions SET actor = 'Eve' WHERE id = 1", "DELETE FROM actions"):
        with _raw(store_location) as conn:
            with pytest.raises((sqlite3.IntegrityError, psycopg.Error),
                               match=ERR_ACTIONS_APPEND_ONLY):  # fmt: skip
                conn.execute(sql)
    assert list(store.actions()["actor"]) == ["Ana", "Bo", "Bo", "Bo", "Bo"]
    assert store.version() == before  # actions never count


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": " "}, ERR_NO_ACTOR),
        ({"action": "sweep deleted"}, ERR_BAD_ACTION.format(value="sweep deleted")),
    ],
)
def test_a_bad_action_is_one_line_and_stores_nothing(store_location, kwargs, message):
    store = ResultsStore(store_location)
    with pytest.raises(FairpruneError) as err:
        store.record_action(**{"actor": "Ana", "action": "model added", "subject": "m", **kwargs})
    assert str(err.value) == message
    assert store.actions().empty


# --- PostgreSQL's own ---------------------------------------------------------------------------


def test_a_postgresql_store_keeps_its_version_and_refuses_what_is_not_one(pg_url):
    store = ResultsStore(pg_url)
    assert store.path is None and store.kind == "postgresql" and store.location == pg_url
    with _raw(pg_url) as conn:
        assert conn.execute("SELECT version FROM fairprune_meta").fetchall() == [(SCHEMA_VERSION,)]
        stamp = conn.execute("SELECT xmin::text FROM fairprune_meta").fetchone()
        ResultsStore(pg_url).export_long()  # opening a current store does not write
        assert conn.execute("SELECT xmin::text FROM fairprune_meta").fetchone() == stamp
        conn.execute("UPDATE fairprune_meta SET version = 99")
    with pytest.raises(FairpruneError) as err:
        ResultsStore(pg_url)
    assert str(err.value) == ERR_NEWER_SCHEMA.format(path=pg_url, found=99)
    with _raw(pg_url) as conn:
        conn.execute("DROP TABLE sweeps, cells, group_rows, predictions, decisions, actions, "
                     "fairprune_meta CASCADE")  # fmt: skip
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(FairpruneError) as err:
        ResultsStore(pg_url)
    assert str(err.value) == ERR_NOT_A_STORE.format(path=pg_url, reason=OTHER_TABLES)


def test_an_unreachable_server_is_one_line_without_the_password():
    url = "postgresql://fair:topsecret@127.0.0.1:9/fairprune"  # port 9: nothing listens there
    with pytest.raises(FairpruneError) as err:
        ResultsStore(url)
    shown = "postgresql://fair:***@127.0.0.1:9/fairprune"
    head = ERR_PG_UNREACHABLE.split("(")[0].format(location=shown)
    assert str(err.value).startswith(head) and str(err.value).endswith(
        "); check the URL, the server and the credentials."
    )
    assert "\n" not in str(err.value) and "topsecret" not in str(err.value)
    assert "Connection refused" in str(err.value)


def test_truncate_is_refused_and_numbers_round_trip_exactly(pg_url):
    store = ResultsStore(pg_url)
    store.register_sweep("s1", {})
    store.record_decision(subject="s1", kind="sweep", decision="accept", reviewer="Ana")
    store.record_action(actor="Ana", action="sweep started", subject="s1")
    for table in ("decisions", "actions"):
        with _raw(pg_url) as conn, pytest.raises(psycopg.Error, match=f"{table} are append-only"):
            conn.execute(f"TRUNCATE {table}")
    third, big = 1 / 3, 2**40 + 1  # float8 and bigint, not float4 and int4
    store.write_cell(cell_key="k", sweep_id="s1", model={**_model(), "macs": big,
                     "flops_reduction": third}, config={}, overall={"gap": third},
                     groups=_groups())  # fmt: skip
    cell = store.cells().iloc[0]
    assert cell["flops_reduction"] == third and cell["gap"] == third and cell["macs"] == big


def test_one_engine_per_location_per_process(pg_url, tmp_path):
    assert ResultsStore(pg_url).engine is ResultsStore(pg_url).engine
    assert ResultsStore(tmp_path / "a.sqlite").engine is ResultsStore(tmp_path / "a.sqlite").engine
    assert ResultsStore(tmp_path / "a.sqlite").engine is not ResultsStore(pg_url).engine


def test_a_column_of_nulls_reads_back_as_numbers(store_location):
    store = ResultsStore(store_location)
    groups = _groups()
    groups[["accuracy_low", "accuracy_high", "auroc"]] = np.nan  # no bootstrap, no scores
    store.write_cell(cell_key="k", sweep_id="s", model=_model(), config={}, overall={},
                     groups=groups)  # fmt: skip
    long = store.export_long()
    for frame, column in [(long, "accuracy_low"), (long, "auroc"), (store.cells(), "gap"),
                          (store.cells(), "seed")]:  # fmt: skip
        assert frame[column].dtype == np.float64 and frame[column].isna().all(), column
    assert long["n"].dtype == np.int64 and long["accuracy"].dtype == np.float64
