"""Sweeps on Ray: the same cells and byte-identical models as a serial run, cancel, a lost worker.

The Ray tests share one local Ray (``num_cpus=2``, no dashboard) started once for this module; the
payload tests before them need no Ray at all.
"""

import functools
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fairprune.config import FinetuneConfig, SweepConfig, TrainConfig
from fairprune.data import load_dataset
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import build_model
from fairprune.nets.checkpoint import list_models, save_dense_model
from fairprune.nets.imports import load_model
from fairprune.sweep import distributed, ray_connect
from fairprune.sweep.cell_runner import run_unit
from fairprune.sweep.context import load_context
from fairprune.sweep.distributed import (
    ERR_BAD_WORKERS,
    ERR_NO_GPUS,
    ERR_UNKNOWN_EXECUTOR,
    RayExecutor,
    make_executor,
)
from fairprune.sweep.payloads import (
    ERR_DENSE_BYTES,
    cell_from_payload,
    cell_payload,
    dense_from_payload,
    dense_payload,
    unit_from_dict,
    unit_to_dict,
)
from fairprune.sweep.ray_connect import ERR_CONNECT
from fairprune.sweep.ray_worker import ERR_CODE_MISMATCH, unit_payloads, worker_context
from fairprune.sweep.results import ResultsStore
from fairprune.sweep.runner import plan_sweep, record_cell, run_sweep
from fairprune.train import train_dense
from fairprune.utils import seed_everything
from tests.conftest import ROOT

TINY = {"limit": 300, "test_limit": 150}
# columns that say when/where a cell was written, not what it is
VOLATILE = ["created", "latency_ms", "model_path"]


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    bundle = load_dataset("synthderm", **TINY)
    seed_everything(0)
    model = build_model("demo_cnn", 2, bundle.input_size)
    train_dense(model, bundle.splits["train"], TrainConfig(epochs=1))
    return save_dense_model(
        model, tmp_path_factory.mktemp("dense"), "dense", bundle=bundle, arch="demo_cnn",
        num_outputs=2, config={},
    )  # fmt: skip


def _config(dense, levels=(0.5, 0.75), **kw) -> SweepConfig:
    return SweepConfig(
        dataset="synthderm", dataset_options=TINY, dense_model=dense.path, criteria=("l1",),
        losses=("ce", "pw"), reductions=levels, finetune=FinetuneConfig(epochs=1), n_boot=20, **kw,
    )  # fmt: skip


@pytest.fixture
def one_thread():
    """Ray gives each of 2 workers 1 of the 2 CPUs: a serial run to compare with uses 1 too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def serial_run(dense, tmp_path_factory):
    """The reference: the sweep run serially in this process with 1 torch thread."""
    base = tmp_path_factory.mktemp("serial")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = ResultsStore(base / "r.sqlite")
        sweep_id = run_sweep(_config(dense), store=store, models_dir=base / "models")
    finally:
        torch.set_num_threads(before)
    return {"store": store, "sweep_id": sweep_id, "models": base / "models"}


def _same_cells(a: ResultsStore, b: ResultsStore, sweep_id: str) -> None:
    ca = a.cells(sweep_id).drop(columns=VOLATILE).sort_values("cell_key", ignore_index=True)
    cb = b.cells(sweep_id).drop(columns=VOLATILE).sort_values("cell_key", ignore_index=True)
    pd.testing.assert_frame_equal(ca, cb)
    pd.testing.assert_frame_equal(a.export_long(sweep_id), b.export_long(sweep_id))
    pa, pb = a.predictions(ca["cell_key"]), b.predictions(cb["cell_key"])
    assert set(pa) == set(pb) == set(ca["cell_key"])
    for key in pa:
        assert pa[key].probs.tobytes() == pb[key].probs.tobytes()
        np.testing.assert_array_equal(pa[key].y_pred, pb[key].y_pred)


# ---------------------------------------------------------------- payloads, no Ray


def test_a_cell_through_its_payload_is_recorded_byte_identically(dense, tmp_path, one_thread):
    ctx = load_context(_config(dense))
    unit = plan_sweep(ctx, ResultsStore(tmp_path / "plan.sqlite")).units[0]
    assert unit_from_dict(unit_to_dict(unit)) == unit
    result = next(run_unit(ctx, unit))
    direct = record_cell(ResultsStore(tmp_path / "a.sqlite"), tmp_path / "a", ctx, result)
    payload = cell_payload(ctx, result)
    assert isinstance(payload["weights"], bytes) and "model" not in payload  # no nn.Module
    rebuilt = cell_from_payload(ctx, payload)
    assert rebuilt.environment["threads"] == 1
    via = record_cell(ResultsStore(tmp_path / "b.sqlite"), tmp_path / "b", ctx, rebuilt)
    assert via.sha256 == direct.sha256  # the same safetensors bytes on disk
    assert via.layer_shapes == direct.layer_shapes != {}
    model, record = load_model(via.path)
    assert record.config["environment"] == payload["environment"]  # where it was made
    assert record.macs == direct.macs and record.params == direct.params


def test_the_dense_model_travels_as_checked_bytes(dense):
    payload = dense_from_payload(dense_payload(dense))
    model, record = payload
    ref, _ = load_model(dense.path)
    assert record.sha256 == dense.sha256
    for (n, a), (m, b) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        assert n == m and torch.equal(a, b)
    bad = dense_payload(dense)
    bad["weights"] = bad["weights"][:-1] + bytes([bad["weights"][-1] ^ 1])
    with pytest.raises(FairpruneError) as err:
        dense_from_payload(bad)
    assert str(err.value) == ERR_DENSE_BYTES


def test_a_worker_with_other_code_is_refused(dense):
    from dataclasses import asdict

    with pytest.raises(FairpruneError) as err:
        worker_context(asdict(_config(dense)), dense_payload(dense), "sw-000000000000")
    want = load_context(_config(dense)).sweep_id
    assert str(err.value) == ERR_CODE_MISMATCH.format(got=want, want="sw-000000000000")


def test_executor_options_are_checked_before_ray_starts(monkeypatch):
    with pytest.raises(FairpruneError) as err:
        make_executor("dask")
    assert str(err.value) == ERR_UNKNOWN_EXECUTOR.format(name="dask", choices="serial, ray")
    for bad in (0, -1, 1.5):
        with pytest.raises(FairpruneError) as err:
            RayExecutor(workers=bad)
        assert str(err.value) == ERR_BAD_WORKERS.format(value=bad)
    assert make_executor("serial", workers=3).name == "serial"

    import ray

    def refuse(*args, **kwargs):
        raise ConnectionError("Could not find any running Ray instance.\nmore")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(FairpruneError) as err:
        ray_connect.connect("auto")
    assert str(err.value) == ERR_CONNECT.format(
        address="auto", reason="Could not find any running Ray instance."
    )


def test_the_tail_of_a_sweep_is_spread_cell_by_cell_only_when_pruning_is_cheap():
    from collections import deque

    from fairprune.sweep.grid import Cell, PruneUnit

    def unit(criterion, level):
        cells = tuple(Cell(criterion, loss, level, 0) for loss in ("ce", "pw"))
        return PruneUnit(criterion, level, 0, cells)

    grid = [unit("l1", 0.5), unit("taylor", 0.5), unit("l1", 0.9)]
    pending = deque(grid)
    distributed._spread_tail(pending, workers=2)  # 3 units for 2 workers: left whole
    assert list(pending) == grid
    pending = deque(grid[1:])
    distributed._spread_tail(pending, workers=3)  # the tail: l1 re-prunes for free, Taylor not
    assert [(u.criterion, u.target_reduction, [c.loss for c in u.cells]) for u in pending] == [
        ("taylor", 0.5, ["ce", "pw"]),
        ("l1", 0.9, ["ce"]),
        ("l1", 0.9, ["pw"]),
    ]
    assert [c for u in pending for c in u.cells] == [c for u in grid[1:] for c in u.cells]


# ---------------------------------------------------------------- a Ray that fairprune starts


def test_a_sweep_that_fails_before_its_first_unit_leaves_no_ray_running(dense, tmp_path):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    config = replace(_config(dense, levels=(0.5,)), dense_model=str(tmp_path / "gone.safetensors"))
    with pytest.raises(FairpruneError):  # the dense model is read after Ray began to start
        run_sweep(config, store=ResultsStore(tmp_path / "r.sqlite"), models_dir=tmp_path,
                  executor=RayExecutor(workers=2))  # fmt: skip
    assert not ray.is_initialized() and ray_connect.active_runs() == 0


def test_the_dashboard_runs_sweep_after_sweep_on_the_ray_it_started(dense, serial_run, tmp_path):
    """Each dashboard sweep runs in its own thread; the first one's thread starts the local Ray
    and ends, and the next sweeps reuse that connection (Ray's driver used to hang there)."""
    ray = pytest.importorskip("ray")
    from fairprune.app import jobs

    assert not ray.is_initialized()
    want = {(r.target_reduction, r.loss): r.sha256
            for r in list_models(serial_run["models"]) if r.kind == "pruned"}  # fmt: skip
    try:
        for level in (0.75, 0.5):
            job = jobs.start_sweep(
                _config(dense, levels=(level,)), results_path=tmp_path / "r.sqlite",
                models_dir=tmp_path / "m", run_on="local", workers=2,
            )  # fmt: skip
            job.wait(240)
            assert job.state == "finished", (level, job.state, job.error)
            assert ray.is_initialized()  # the dashboard keeps its Ray between sweeps
    finally:
        ray_connect.shutdown()
    got = {(r.target_reduction, r.loss): r.sha256
           for r in list_models(tmp_path / "m") if r.kind == "pruned"}  # fmt: skip
    assert got == want  # both sweeps ran to the end, with the serial run's bytes


# ---------------------------------------------------------------- on a local Ray


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},  # workers import tests.*
        )  # fmt: skip
    yield ray
    if started:
        ray.shutdown()


def test_ray_and_serial_give_the_same_cells_and_model_hashes(
    local_ray, dense, serial_run, tmp_path
):
    from fairprune.cli import main

    results, models = tmp_path / "r.sqlite", tmp_path / "models"
    argv = ["sweep", "--dense", dense.path, "--criteria", "l1", "--losses", "ce", "pw",
            "--levels", "0.5", "0.75", "--epochs", "1", "--n-boot", "20",
            "--option", "limit=300", "--option", "test_limit=150",
            "--results", str(results), "--models-dir", str(models),
            "--executor", "ray", "--workers", "2"]  # fmt: skip
    assert main(argv) == 0
    store, sweep_id = ResultsStore(results), serial_run["sweep_id"]
    assert len(store.cells(sweep_id)) == 5  # the same sweep id: dense + 2 levels × 2 losses
    _same_cells(serial_run["store"], store, sweep_id)
    pruned = [r for r in list_models(models) if r.kind == "pruned"]
    want = {r.name: r.sha256 for r in list_models(serial_run["models"]) if r.kind == "pruned"}
    assert {r.name: r.sha256 for r in pruned} == want  # byte-identical weights
    assert {r.config["environment"]["threads"] for r in pruned} == {1}  # 2 CPUs ÷ 2 workers
    assert all(r.config["environment"] != {} for r in pruned)


def _stop_after_first(cells: list) -> bool:
    return len(cells) >= 1


def test_stop_cancels_outstanding_tasks_and_keeps_finished_cells(local_ray, dense, serial_run,
                                                                  tmp_path):  # fmt: skip
    store, models = ResultsStore(tmp_path / "r.sqlite"), tmp_path / "models"
    landed, sent = [], []
    executor = RayExecutor(workers=1)
    sweep_id = run_sweep(
        _config(dense), store=store, models_dir=models, executor=executor,
        should_stop=functools.partial(_stop_after_first, landed), on_cell=landed.append,
        on_unit=sent.append,
    )  # fmt: skip
    assert executor.slots == (1, 2)  # one worker with both CPUs
    assert len(sent) == 1  # the second unit was never sent
    ((unit, gen),) = executor.cancelled
    assert unit == sent[0]
    with pytest.raises(local_ray.exceptions.TaskCancelledError):
        for ref in gen:
            local_ray.get(ref)
    stored = store.cells(sweep_id)
    pruned = set(stored.loc[stored["criterion"] != "dense", "cell_key"])
    assert pruned == set(landed) and len(landed) == 1  # what finished is kept, nothing else
    assert len([r for r in list_models(models) if r.kind == "pruned"]) == 1

    # a rerun (serial, one thread) fills in the rest: the finished cell is not recomputed
    again = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_sweep(_config(dense), store=store, models_dir=models, on_cell=again.append)
    finally:
        torch.set_num_threads(before)
    assert len(again) == 3 and landed[0] not in again
    ref = serial_run["store"].cells(sweep_id).set_index("cell_key")["model_hash"]
    got = store.cells(sweep_id).set_index("cell_key")["model_hash"]
    assert set(got.index) == set(ref.index)
    assert all(got[k] == ref[k] for k in again)  # the serial rerun: 1 thread, the same bytes
    (made_on_ray,) = [r for r in list_models(models) if r.sha256 == got[landed[0]]]
    assert made_on_ray.config["environment"]["threads"] == 2  # one worker had both CPUs


def _dying_task(config, dense, unit, sweep_id, threads, *, marker, results):
    """The real worker function, but the first attempt at the 0.5 unit kills its own process
    right after its first cell has been recorded by the driver."""
    for payload in unit_payloads(config, dense, unit, sweep_id, threads):
        yield payload
        if unit["target_reduction"] == 0.5 and not os.path.exists(marker):
            deadline = time.time() + 120
            while not ResultsStore(results).has_cell(payload["key"]) and time.time() < deadline:
                time.sleep(0.05)
            Path(marker).write_text(payload["key"])
            os._exit(1)  # as if the node lost the worker: no exception, no clean-up


def test_a_lost_worker_is_retried_and_no_finished_cell_is_lost(local_ray, dense, serial_run,
                                                                tmp_path):  # fmt: skip
    results, models, marker = tmp_path / "r.sqlite", tmp_path / "models", tmp_path / "killed"
    task = functools.partial(_dying_task, marker=str(marker), results=str(results))
    store = ResultsStore(results)
    landed = []
    sweep_id = run_sweep(
        _config(dense), store=store, models_dir=models, on_cell=landed.append,
        executor=RayExecutor(workers=2, max_retries=2, task=task),
    )  # fmt: skip
    assert marker.exists()  # the worker did die
    first = marker.read_text()
    cells = store.cells(sweep_id).set_index("cell_key")
    assert first in cells.index and landed.count(first) == 1  # recorded once, before the crash
    assert cells.loc[first, "created"] < marker.stat().st_mtime
    assert len(landed) == 4 and len(set(landed)) == 4  # every cell once: the retry finished it
    assert len([r for r in list_models(models) if r.kind == "pruned"]) == 4
    _same_cells(serial_run["store"], store, sweep_id)


def _failing_task(config, dense, unit, sweep_id, threads):
    raise FairpruneError("the data root is not mounted on this node; mount it and rerun.")
    yield  # a generator, like unit_payloads


def test_worker_errors_and_impossible_requests_are_one_line(local_ray, dense, tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    with pytest.raises(FairpruneError) as err:
        run_sweep(_config(dense, levels=(0.5,)), store=store, models_dir=tmp_path,
                  executor=RayExecutor(workers=1, task=_failing_task))  # fmt: skip
    assert str(err.value) == "the data root is not mounted on this node; mount it and rerun."
    with pytest.raises(FairpruneError) as err:
        run_sweep(_config(dense, levels=(0.5,)), store=store, models_dir=tmp_path,
                  executor=RayExecutor(gpus_per_cell=1))  # fmt: skip
    assert str(err.value) == ERR_NO_GPUS.format(want=1, have=0)


def test_the_dashboard_sends_a_sweep_to_ray_and_tracks_each_cell(local_ray, dense, serial_run,
                                                                 tmp_path):  # fmt: skip
    from fairprune.app import jobs

    config = _config(dense, levels=(0.75,))
    job = jobs.start_sweep(config, results_path=tmp_path / "r.sqlite", models_dir=tmp_path / "m",
                           run_on="local", workers=2)  # fmt: skip
    assert job.where == "local Ray (2 workers)"
    job.wait(300)
    assert job.state == "finished", job.error
    table = job.cell_table()
    assert list(table["loss"]) == ["ce", "pw"] and list(table["state"]) == ["done", "done"]
    assert list(table["level"]) == [0.75, 0.75]
    assert len(ResultsStore(tmp_path / "r.sqlite").cells(job.key)) == 3  # dense + 2 cells
    # a one-level grid is another sweep, but its unit makes the serial reference's models
    pruned = {r.loss: r.sha256 for r in list_models(tmp_path / "m") if r.kind == "pruned"}
    want = {r.loss: r.sha256 for r in list_models(serial_run["models"])
            if r.kind == "pruned" and r.target_reduction == 0.75}  # fmt: skip
    assert pruned == want
