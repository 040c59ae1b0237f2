"""Shared fixtures: a small but real store (dense model + a 4-cell sweep on SynthDerm)."""

import atexit
import os
import shutil
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
