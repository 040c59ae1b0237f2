"""jobs: a sweep in a background thread; cells land as they finish, cancel keeps them, a rerun
resumes."""

import time

import pytest

from fairprune.app import jobs
from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.errors import FairpruneError
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
    assert job.where == "this process"
    table = job.cell_table()
    assert table[["criterion", "loss", "level", "seed", "state"]].values.tolist() == [
        ["l1", "ce", 0.5, 0, "done"]
    ]
    assert jobs.get_job(job.key) is job
    assert job not in jobs.running_jobs()


def test_cancel_keeps_finished_cells_and_a_rerun_resumes(demo_store, tmp_path):
    config = _config(demo_store["dense"].path, levels=(0.5, 0.75, 0.9), name="jobs-cancel")
    results, models = tmp_path / "results.sqlite", tmp_path / "models"
    job = jobs.start_sweep(config, results_path=results, models_dir=models)
    deadline = time.time() + 120
    while not job.landed and job.running and time.time() < deadline:
        time.sleep(0.01)  # cancel once the first cell is in
    job.cancel()
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
