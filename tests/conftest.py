"""Shared fixtures: a small but real store (dense model + a 4-cell sweep on SynthDerm)."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

torch.set_num_threads(2)
# generated datasets are cached for this session only (every process the tests start inherits
# it: the CLI, the dashboard's server, Ray workers), never in the user's own cache
os.environ["FAIRPRUNE_CACHE"] = tempfile.mkdtemp(prefix="fairprune-test-cache-")
atexit.register(shutil.rmtree, os.environ["FAIRPRUNE_CACHE"], ignore_errors=True)
# pages run by AppTest have no browser to wait for (tests/app/test_browser.py serves the
# dashboard without this, as shipped)
os.environ["FAIRPRUNE_FIRST_VIEW_PAUSE"] = "0"
# nor does the warm-up watch the store after its first pass in this process (tests/app/
# test_warmup.py turns it on where it tests it; served dashboards watch, as shipped)
os.environ["FAIRPRUNE_REWARM_QUIET_S"] = "0"


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """Paths of a store holding a dense SynthDerm model and a CE/PW sweep at two levels.

    The dense model is trained for one epoch only: the numbers are real (computed by the same
    pipeline the dashboard shows), just not good ones, which keeps the fixture to ~30 s.
    """
    from fairprune.config import FinetuneConfig, SweepConfig, TrainConfig
    from fairprune.data import load_dataset
    from fairprune.nets.architectures import build_model
    from fairprune.nets.checkpoint import save_model
    from fairprune.nets.flops import count_macs_params
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep
    from fairprune.train import train_dense

    base = tmp_path_factory.mktemp("store")
    models, results, data = base / "models", base / "results.sqlite", base / "data"
    tiny = {"limit": 600, "test_limit": 300}  # the sweep's own data: small, so this stays fast
    bundle = load_dataset("synthderm", **tiny)
    model = build_model("demo_cnn", 2, bundle.input_size)
    train_dense(model, bundle.splits["train"], TrainConfig(epochs=1))
    macs, params = count_macs_params(model, bundle.input_size)
    record = save_model(
        model, models, "synthderm-demo_cnn-dense", arch="demo_cnn", num_outputs=2, num_classes=2,
        input_size=bundle.input_size, kind="dense", dataset="synthderm",
        dataset_fingerprint=bundle.fingerprint, macs=macs, params=params,
    )  # fmt: skip
    config = SweepConfig(
        dataset="synthderm", dataset_options=tiny, dense_model=record.path, criteria=("l1",), losses=("ce", "pw"),
        reductions=(0.5, 0.9), finetune=FinetuneConfig(epochs=1), n_boot=50, name="fixture",
    )  # fmt: skip
    sweep_id = run_sweep(config, store=ResultsStore(results), models_dir=models)
    return {"models": models, "results": results, "data": data, "sweep_id": sweep_id,
            "dense": record}  # fmt: skip


@pytest.fixture(scope="session")
def methods_store(demo_store, tmp_path_factory):
    """A store holding the fair-pruning methods side by side, made by the ``sweep`` command:
    magnitude, FairGRAPE and FairPrune (unstructured) × CE, PW and constrained fine-tuning at
    50% and 90% weight sparsity, one seed, on the fixture's dense model and data."""
    from fairprune.cli import main

    base = tmp_path_factory.mktemp("methods")
    results = base / "results.sqlite"
    rc = main([
        "sweep", "--dataset", "synthderm", "--option", "limit=600", "--option", "test_limit=300",
        "--dense", str(demo_store["dense"].path), "--models-dir", str(base / "models"),
        "--results", str(results), "--criteria", "unstructured", "fairgrape", "fairprune",
        "--losses", "ce", "pw", "constrained", "--levels", "0.5", "0.9", "--seeds", "0",
        "--epochs", "1", "--n-boot", "20", "--name", "methods fixture",
    ])  # fmt: skip
    assert rc == 0
    return {"models": base / "models", "results": results, "data": base / "data",
            "dense": demo_store["dense"]}  # fmt: skip


def _point_at(store: dict, monkeypatch) -> dict:
    """Point fairprune (and the pages) at a fixture store's models, results and data."""
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(store["models"]))
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(store["results"]))
    monkeypatch.setenv("FAIRPRUNE_DATA_DIR", str(store["data"]))
    return store


@pytest.fixture
def methods_env(methods_store, monkeypatch):
    """Point fairprune (and the pages) at the methods store."""
    return _point_at(methods_store, monkeypatch)


@pytest.fixture
def store_env(demo_store, monkeypatch):
    """Point fairprune (and the pages) at the fixture store."""
    return _point_at(demo_store, monkeypatch)


@pytest.fixture(autouse=True)
def _no_warmup_outlives_its_test(monkeypatch):
    """Stop the dashboard's warm-up threads a test's pages started before the test's settings
    are undone (it depends on ``monkeypatch`` so that it ends first): a thread still warming
    would read the next test's store location and create its file."""
    yield
    warmup = sys.modules.get("fairprune.app.warmup")
    if warmup is not None:
        warmup.stop()


@pytest.fixture
def empty_env(tmp_path, monkeypatch):
    """An empty store."""
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(tmp_path / "results.sqlite"))
    monkeypatch.setenv("FAIRPRUNE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real headless Chromium")
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")


# --- PostgreSQL (issue #24): one throw-away server per test session, a fresh database per test ---


class _PgServer:
    """A throw-away PostgreSQL cluster in a temporary folder: ``initdb`` and ``pg_ctl``, run as
    the ``postgres`` user when this process is root (``initdb`` refuses root). Trust
    authentication on 127.0.0.1 and durability off: it holds test data for a few minutes."""

    def __init__(self):
        import glob
        import socket
        import subprocess

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda p: int(p.split("/")[4]))  # fmt: skip
        bindir = Path(found[-1]).parent if found else None
        if bindir is None and shutil.which("initdb"):
            bindir = Path(shutil.which("initdb")).parent
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb): apt-get install postgresql")
        self.base = Path(tempfile.mkdtemp(prefix="fairprune-test-pg-"))
        self.data = self.base / "data"
        self.run_as = []
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as sock:  # a free port (a race with another process is unlikely)
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.pg_ctl = str(bindir / "pg_ctl")

        def run(*argv):
            done = subprocess.run([*self.run_as, *argv], capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
            if done.returncode != 0:
                last = (done.stderr or done.stdout).strip().splitlines()[-1:]
                raise RuntimeError(f"{Path(argv[0]).name} failed: {' '.join(last)}")

        run(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
        run(self.pg_ctl, "start", "-w", "-t", "60", "-D", str(self.data), "-o", options,
            "-l", str(self.base / "server.log"))  # fmt: skip
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self):
        import subprocess

        subprocess.run([*self.run_as, self.pg_ctl, "stop", "-m", "immediate", "-D", str(self.data)],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """The URL of a PostgreSQL server for the session: ``FAIRPRUNE_TEST_PG`` when set, else a
    throw-away cluster started here and stopped at the end. No server is a failure, never a skip:
    the store's PostgreSQL half is part of what ``make test`` checks."""
    if os.environ.get("FAIRPRUNE_TEST_PG"):
        yield os.environ["FAIRPRUNE_TEST_PG"]
        return
    try:
        server = _PgServer()
    except (RuntimeError, OSError, KeyError) as exc:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {exc}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh empty database on the test server, as a ``postgresql://`` URL; dropped after the
    test."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from fairprune.sweep import store_dialects

    server = make_url(pg_server)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"fairprune_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    yield url
    store_dialects.forget_engine(store_dialects.parse_location(url))  # its pooled connections
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """A fresh results store location of either kind: an SQLite file (a ``Path``) or a
    PostgreSQL database (a ``postgresql://`` URL)."""
    if request.param == "sqlite":
        return tmp_path / "r.sqlite"
    return request.getfixturevalue("pg_url")
