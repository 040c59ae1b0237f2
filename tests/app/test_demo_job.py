"""demo_job: the Overview's demo runs in the sweep's process, dense model then first seed first,
and reports its progress; tested with a tiny stand-in for the demo's model and grid."""

import io
import json
import subprocess
import sys

from fairprune.app import demo_job, jobs, sweep_process
from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.sweep.results import ResultsStore
from tests.conftest import ROOT

TINY = {"limit": 600, "test_limit": 300}


def test_the_demo_request_names_the_stores_and_priorities_not_the_grid(monkeypatch, tmp_path):
    monkeypatch.setenv(jobs.NICE_ENV, "12")
    request = demo_job.demo_job_request(results_path=tmp_path / "r.sqlite", models_dir=tmp_path)
    assert request == {"demo": True, "results": str(tmp_path / "r.sqlite"),
                       "models": str(tmp_path), "nice": 0, "later_nice": 12}  # fmt: skip
    assert demo_job.DEMO_NICE == 0  # the user waits for it: the CLI's priority


def _stand_in(monkeypatch, demo_store):
    """The fixture's dense model and a grid of two seeds × two levels stand in for the demo's."""
    import fairprune.demo

    dense = demo_store["dense"]

    def ensure(models_dir, *, progress=None, should_stop=None):
        for step in (1, 2, 3):
            progress(step, 3, f"train epoch 1/1 step {step}")
        return dense

    def config(dense_path, *, criterion="l1"):
        return SweepConfig(
            dataset="synthderm", dataset_options=TINY, dense_model=str(dense_path),
            criteria=(criterion,), losses=("ce",), reductions=(0.5, 0.75), seeds=(0, 1),
            finetune=FinetuneConfig(epochs=1), n_boot=0, name="demo stand-in",
        )  # fmt: skip

    monkeypatch.setattr(fairprune.demo, "ensure_demo_model", ensure)
    monkeypatch.setattr(fairprune.demo, "demo_sweep_config", config)


def test_the_demo_trains_then_runs_the_first_seed_at_the_top_level_first_and_reports_each_step(
    demo_store, tmp_path, monkeypatch
):
    _stand_in(monkeypatch, demo_store)
    request = demo_job.demo_job_request(results_path=tmp_path / "r.sqlite",
                                        models_dir=tmp_path / "models")  # fmt: skip
    request["later_nice"] = 0  # this test's own process runs it: keep its priority
    sent = []
    state = sweep_process.run_demo(request, lambda **m: sent.append(m), lambda: False)
    assert state == "finished"
    kinds = [m["t"] for m in sent]
    dense = [m for m in sent if m.get("stage") == "dense"]
    assert [(m["done"], m["total"]) for m in dense] == [(1, 3), (2, 3), (3, 3)]
    assert kinds.index("grid") == 3  # the grid once the dense model is there, then the sweep
    (grid,) = [m for m in sent if m["t"] == "grid"]
    assert len(grid["cells"]) == 4
    assert {c["state"] for c in grid["cells"].values()} == {"queued"}
    landed = [m["key"] for m in sent if m["t"] == "cell"]
    order = [(grid["cells"][k]["seed"], grid["cells"][k]["level"]) for k in landed]
    assert order[:2] == [(0, 0.75), (0, 0.5)]  # the first seed, its top level first
    assert sorted(order[2:]) == [(1, 0.5), (1, 0.75)]
    sweep = [m for m in sent if m["t"] == "progress" and m["stage"] == "sweep"]
    assert {m["total"] for m in sweep} == {5}  # the whole grid + the dense baseline, throughout
    assert sweep[-1]["done"] == 5
    cells = ResultsStore(tmp_path / "r.sqlite").cells(grid["key"])
    assert len(cells) == 5 and set(landed) < set(cells["cell_key"])

    # the page's side: the job follows those reports
    lines = "".join(json.dumps(m) + "\n" for m in [*sent, {"t": "end", "state": "finished"}])

    class Process:  # what _follow reads: the reports, then the exit status
        stdout, stdin = io.StringIO(lines), io.StringIO()

        def wait(self):
            return 0

    monkeypatch.setattr(jobs, "_spawn", lambda request: Process())
    job = jobs.start_process_job("demo-test", request, where=demo_job.DEMO_WHERE)
    job.wait(10)
    assert job.state == "finished" and job.key == grid["key"]
    assert jobs.get_job("demo-test") is job and jobs.get_job(grid["key"]) is job
    assert job.landed == landed and job.config.name == "demo stand-in"
    assert job.cell_table()["state"].tolist() == ["done"] * 4
    assert (job.stage, job.done, job.total) == ("sweep", 5, 5)


def test_the_progress_line_says_what_the_demo_is_doing():
    job = jobs.SweepJob(key="demo", config=None, stage="starting")
    assert demo_job.demo_progress(job) == (0.0, "Starting the demo…")
    job.stage, job.done, job.total, job.info = "dense", 40, 400, "train epoch 1/10 loss 0.6"
    assert demo_job.demo_progress(job) == (0.1, (
        "Training the dense model (step 40 of 400): train epoch 1/10 loss 0.6. The first chart "
        "follows the first pruned models."))  # fmt: skip
    assert demo_job.waiting_for_demo(job)
    job.stage, job.done, job.total, job.info = "sweep", 1, 19, "pruning l1 50%"
    assert demo_job.demo_progress(job)[1].startswith("Pruning and fine-tuning: 1 of 19 models")
    job.landed.append("cell")
    assert not demo_job.waiting_for_demo(job)  # the first pruned model: the chart
    job.state, job.error = "failed", "the sweep's process stopped"
    assert demo_job.demo_progress(job)[1] == "The demo stopped: the sweep's process stopped"
    assert not demo_job.waiting_for_demo(None)


def test_the_empty_overview_loads_nothing_heavy_before_its_button():
    code = (
        "import sys; from fairprune.app import demo_job, review, tables, ui; "
        "print(sorted(m for m in ('torch', 'fairprune.sweep', 'fairprune.app.views', "
        "'fairlearn') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert run.stdout.strip() == "[]"


def test_a_cancel_during_dense_training_ends_the_demo_and_saves_no_model(tmp_path):
    # the real ensure_demo_model: stopped at its first training step, the job ends "cancelled"
    # and the model store stays empty (a half-trained demo model would be reused by later runs)
    request = demo_job.demo_job_request(results_path=tmp_path / "r.sqlite",
                                        models_dir=tmp_path / "models")  # fmt: skip
    sent = []
    state = sweep_process.run_demo(request, lambda **m: sent.append(m), lambda: True)
    assert state == "cancelled"
    assert not any(m["t"] == "grid" for m in sent)
    assert not list((tmp_path / "models").glob("*.safetensors"))
