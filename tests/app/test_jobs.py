"""jobs: a sweep in the background (a process of its own on this machine); cells land as they
finish, cancel keeps them, a rerun resumes."""

import os
import signal
import time

import pytest

from fairprune.app import jobs
from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.errors import FairpruneError
from fairprune.nets.checkpoint import list_models
from fairprune.sweep.grid import ERR_BAD_LEVEL, sweep_id_for
from fairprune.sweep.results import ResultsStore

TINY = {"limit": 600, "test_limit": 300}


def _config(dense_path, levels=(0.5,), name="") -> SweepConfig:
    return SweepConfig(
        dataset="synthderm", dataset_options=TINY, dense_model=str(dense_path), criteria=("l1",),
        losses=("ce",), reductions=levels, finetune=FinetuneConfig(epochs=1), n_boot=0, name=name,
    )  # fmt: skip


def test_a_job_runs_in_the_background_and_lands_its_cells(demo_store, tmp_path):
    config = _config(demo_store["dense"].path, name="jobs-run")
    results = tmp_path / "results.sqlite"
    job = jobs.start_sweep(config, results_path=results, models_dir=tmp_path / "models")
    again = jobs.start_sweep(config, results_path=results, models_dir=tmp_path / "models")
    assert again is job  # a second request for a running sweep shares the job
    assert job.key == sweep_id_for(config, demo_store["dense"].sha256)
    job.wait(120)
    assert job.state == "finished", job.error
    cells = ResultsStore(results).cells(job.key)
    assert len(cells) == job.total == job.done == 2  # dense baseline + one pruned cell
    assert job.landed == list(cells.loc[cells["criterion"] != "dense", "cell_key"])
    assert job.where == jobs.SERIAL_WHERE
    table = job.cell_table()
    assert table[["criterion", "loss", "level", "seed", "state"]].values.tolist() == [
        ["l1", "ce", 0.5, 0, "done"]
    ]
    assert jobs.get_job(job.key) is job
    assert job not in jobs.running_jobs()
    # made in the sweep's own process, byte for byte the model the fixture's in-process
    # run_sweep made for the same cell (same dense model, data, seed and threads)
    assert job._process.pid != os.getpid() and job._process.returncode == 0
    made = [r.sha256 for r in list_models(tmp_path / "models") if r.kind == "pruned"]
    want = [r.sha256 for r in list_models(demo_store["models"])
            if r.kind == "pruned" and r.loss == "ce" and r.target_reduction == 0.5]  # fmt: skip
    assert len(want) == 1 and made == want


def _first_cell(job, then):
    """Wait for the job's first landed cell, then call ``then()``; the job must still run."""
    deadline = time.time() + 120
    while not job.landed and job.running and time.time() < deadline:
        time.sleep(0.01)
    assert job.landed and job.running, (job.state, job.error)
    then()


def test_cancel_keeps_finished_cells_and_a_rerun_resumes(demo_store, tmp_path):
    config = _config(demo_store["dense"].path, levels=(0.5, 0.75, 0.9), name="jobs-cancel")
    results, models = tmp_path / "results.sqlite", tmp_path / "models"
    job = jobs.start_sweep(config, results_path=results, models_dir=models)
    _first_cell(job, job.cancel)  # cancel once the first cell is in
    job.wait(120)
    assert job.state == "cancelled"
    stored = ResultsStore(results).cells(job.key)
    pruned = set(stored.loc[stored["criterion"] != "dense", "cell_key"])
    assert pruned == set(job.landed)  # what it finished is in the store
    assert 1 <= len(pruned) < 3  # the first cell kept, the grid not done

    resumed = jobs.start_sweep(config, results_path=results, models_dir=models)
    assert resumed is not job
    assert resumed.resumed == len(job.landed)
    states = job.cell_table()["state"].value_counts().to_dict()
    assert states == {"done": len(job.landed), "not run": 3 - len(job.landed)}
    first = resumed.cell_table()
    assert (first["state"] == "stored earlier").sum() == len(job.landed)
    resumed.wait(120)
    assert resumed.state == "finished", resumed.error
    assert len(ResultsStore(results).cells(job.key)) == 4  # dense + three levels
    assert set(resumed.landed).isdisjoint(job.landed)  # nothing finished is recomputed
    assert len(resumed.landed) + len(job.landed) == 3


def test_a_bad_grid_fails_in_the_caller_with_the_sweep_message(demo_store, tmp_path):
    config = _config(demo_store["dense"].path, levels=(1.5,))
    with pytest.raises(FairpruneError) as err:
        jobs.start_sweep(config, results_path=tmp_path / "r.sqlite", models_dir=tmp_path)
    assert str(err.value) == ERR_BAD_LEVEL.format(value=1.5)


def test_ray_options_are_checked_in_the_caller(demo_store, tmp_path):
    config = _config(demo_store["dense"].path)
    paths = {"results_path": tmp_path / "r.sqlite", "models_dir": tmp_path}
    with pytest.raises(FairpruneError) as err:
        jobs.start_sweep(config, run_on="cluster", address="  ", **paths)
    assert str(err.value) == jobs.ERR_NO_ADDRESS
    with pytest.raises(FairpruneError) as err:
        jobs.start_sweep(config, run_on="moon", **paths)
    assert str(err.value) == jobs.ERR_RUN_ON.format(value="moon", choices="serial, local, cluster")
    from fairprune.sweep.distributed import ERR_BAD_WORKERS

    with pytest.raises(FairpruneError) as err:
        jobs.start_sweep(config, run_on="local", workers=0, **paths)
    assert str(err.value) == ERR_BAD_WORKERS.format(value=0)
    assert not (tmp_path / "r.sqlite").exists() and jobs.running_jobs() == []


def test_the_sweep_runs_at_a_lower_cpu_priority_than_the_dashboard(demo_store, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    monkeypatch.setenv(jobs.NICE_ENV, "7")
    config = _config(demo_store["dense"].path, levels=(0.5, 0.75), name="jobs-nice")
    job = jobs.start_sweep(config, results_path=tmp_path / "r.sqlite", models_dir=tmp_path / "m")
    seen = []
    _first_cell(job, lambda: seen.append(os.getpriority(os.PRIO_PROCESS, job._process.pid)))
    job.wait(120)
    assert job.state == "finished", job.error
    assert seen == [os.getpriority(os.PRIO_PROCESS, 0) + 7]


def test_a_killed_sweep_process_fails_the_job_and_keeps_its_finished_cells(demo_store, tmp_path):
    config = _config(demo_store["dense"].path, levels=(0.5, 0.75, 0.9), name="jobs-killed")
    results = tmp_path / "results.sqlite"
    job = jobs.start_sweep(config, results_path=results, models_dir=tmp_path / "models")
    _first_cell(job, lambda: os.kill(job._process.pid, signal.SIGKILL))
    job.wait(120)
    assert job.state == "failed"
    assert job.error == jobs.ERR_PROCESS_ENDED.format(code=-signal.SIGKILL)
    stored = ResultsStore(results).cells(job.key)
    assert set(stored.loc[stored["criterion"] != "dense", "cell_key"]) == set(job.landed)
    states = job.cell_table()["state"].value_counts().to_dict()
    assert states == {"done": len(job.landed), "not run": 3 - len(job.landed)}


def test_a_dashboard_that_goes_away_stops_its_sweep(demo_store, tmp_path):
    """The end of the sweep's stdin (the dashboard stopped) stops it as a cancel does."""
    config = _config(demo_store["dense"].path, levels=(0.5, 0.75, 0.9), name="jobs-orphan")
    job = jobs.start_sweep(config, results_path=tmp_path / "r.sqlite", models_dir=tmp_path / "m")
    _first_cell(job, job._process.stdin.close)
    job.wait(120)
    assert job.state == "cancelled", job.error
    assert 1 <= len(job.landed) < 3


@pytest.mark.parametrize(
    ("raw", "want", "warns"),
    [(None, jobs.NICE_DEFAULT, False), ("0", 0, False), ("19", 19, False), ("5.0", 5, False),
     ("-1", jobs.NICE_DEFAULT, True), ("20", jobs.NICE_DEFAULT, True),
     ("2.5", jobs.NICE_DEFAULT, True), ("nan", jobs.NICE_DEFAULT, True),
     ("high", jobs.NICE_DEFAULT, True)],
)  # fmt: skip
def test_sweep_niceness_setting(raw, want, warns, monkeypatch, caplog):
    if raw is None:
        monkeypatch.delenv(jobs.NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(jobs.NICE_ENV, raw)
    assert jobs.sweep_niceness() == want
    assert any(jobs.NICE_ENV in r.getMessage() for r in caplog.records) == warns


def test_the_dashboard_server_does_not_collect_garbage_after_every_run():
    """Streamlit's default is a full gc.collect() after every script run: 0.25-0.5 s holding the
    interpreter's lock, after every page, widget and live-panel rerun (each second while a
    sweep runs), which stalled every other session. Read as the server reads it, from the
    project's .streamlit/config.toml in the folder it is started from."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import streamlit.config as c; c.get_config_options(force_reparse=True); "
            "print(c.get_option('runner.postScriptGC'), c.get_option('server.fileWatcherType'))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "HOME": "/nonexistent"})  # fmt: skip
    assert out.stdout.split() == ["False", "none"]
