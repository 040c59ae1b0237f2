"""bench/meeting.py: Streamlit's websocket protocol against a real dashboard server."""

import json
import time

import pytest

from bench import meeting

DASHBOARD = ["Overview", "Models", "Dataset", "Audit", "Sparsity sweep", "What pruning forgot",
             "Methods", "Report"]  # fmt: skip


@pytest.mark.timeout(300)
def test_two_sessions_one_round_each_run_finishes_after_its_first_chart(store_env, tmp_path):
    t0 = time.perf_counter()
    with meeting.serve(tmp_path / "server.log") as server:
        run = meeting.meeting([server.url], 2, 1, gap=0.0, timeout=120)
    visits = run["visits"]
    # both open the Overview at once, then session 0 asks for Models and session 1 for Dataset
    assert [(v["page"], v["session"], v["round"]) for v in visits] == [
        ("Overview", 0, -1), ("Overview", 1, -1), ("Models", 0, 0), ("Dataset", 1, 0)
    ]  # fmt: skip
    assert [v["error"] for v in visits] == [""] * 4 and run["overall"]["exceptions"] == 0
    assert all(0 < v["first_chart"] <= v["script_end"] for v in visits)
    assert list(run["pages"]) == DASHBOARD == meeting.PAGE_NAMES
    assert sorted(run["navigation"]) == sorted(DASHBOARD)  # what the server's sidebar lists
    assert run["pages"]["Models"]["n"] == 1 and run["pages"]["Audit"]["n"] == 0
    assert run["overall"]["n"] == 2 and run["open"]["n"] == 2
    assert time.perf_counter() - t0 < 120  # ~20 s on an idle 2-core machine


def test_sweep_request_is_the_newest_sweep_on_a_new_seed_at_the_sweep_niceness(store_env):
    from fairprune.config import SweepConfig, config_from_dict
    from fairprune.sweep.grid import sweep_id_for
    from fairprune.sweep.results import ResultsStore

    # other tests add sweeps to the shared store: the request follows whichever is newest
    sweeps = ResultsStore(store_env["results"]).sweeps().sort_values("created")
    newest = config_from_dict(SweepConfig, json.loads(sweeps["config_json"].iloc[-1]))
    request = meeting.sweep_request(store_env["results"], store_env["models"])
    config = config_from_dict(SweepConfig, request["config"])
    assert config.seeds == (max(newest.seeds) + 1,)
    assert (config.criteria, config.reductions) == (newest.criteria, newest.reductions)
    assert config.dense_model == str(store_env["models"] / "synthderm-demo_cnn-dense.safetensors")
    assert (
        request["key"] == sweep_id_for(config, store_env["dense"].sha256) != store_env["sweep_id"]
    )
    assert request["nice"] == 10 and request["results"] == str(store_env["results"])


@pytest.mark.timeout(600)
def test_a_meeting_while_a_sweep_runs_on_a_copy_of_the_store(store_env):
    from fairprune.sweep.results import ResultsStore

    before = ResultsStore(store_env["results"]).sweeps()["cells"].tolist()
    models = sorted(p.name for p in store_env["models"].iterdir())
    run = meeting.meeting_with_sweep(store_env["results"], store_env["models"], 2, 1, gap=0.0,
                                     timeout=120)  # fmt: skip
    assert [v["error"] for v in run["visits"]] == [""] * 4 and run["overall"]["n"] == 2
    background = run["background"]
    assert background["niceness"] == 10 and background["state"] in ("cancelled", "finished")
    assert background["cells_landed"] >= 0 and background["error"] == ""
    # the store the environment points at is left as it was: the sweep wrote to the copy
    assert ResultsStore(store_env["results"]).sweeps()["cells"].tolist() == before
    assert sorted(p.name for p in store_env["models"].iterdir()) == models
    line = meeting.targets({"runs": [run]})[1]
    assert line.startswith("N = 2, 1 process, rotating, sweep running") and "p90 ≤ 1.5 s" in line


def test_targets_say_which_meetings_meet_issue_23s():
    def run(sessions, p90, worst, background=None):
        overall = {"first_chart": {"median": p90, "p90": p90, "worst": worst},
                   "script_end": {"median": 1.0, "p90": 1.0, "worst": 1.0},
                   "no_first_chart": 0}  # fmt: skip
        out = {"sessions": sessions, "processes": 1, "mode": "rotating", "overall": overall}
        return {**out, "background": background} if background else out

    lines = meeting.targets({"runs": [run(1, 0.1, 0.2), run(8, 0.9, 1.9), run(8, 0.9, 2.1),
                                      run(8, 1.4, 3.0, {"niceness": 10})]})  # fmt: skip
    assert [line.split("   ")[-1].strip() for line in lines[1:]] == [
        "", "p90 ≤ 1 s, worst ≤ 2 s: met", "p90 ≤ 1 s, worst ≤ 2 s: NOT met", "p90 ≤ 1.5 s: met"
    ]  # fmt: skip


def test_the_after_landing_rows_name_the_re_warm_and_judge_only_it():
    def landed(rewarm, worst):
        overall = {"first_chart": {"median": 0.1, "p90": worst, "worst": worst},
                   "script_end": {"median": 0.5, "p90": 0.6, "worst": 0.9},
                   "no_first_chart": 0, "n": 8, "over_1s": int(worst > 1), "over_2s": 0,
                   "exceptions": 0, "errors": []}  # fmt: skip
        pages = {"Overview": {**overall, "kbytes": 20.0}}
        return {"rewarm": rewarm, "cells_landed": 1, "overall": {**overall, "kbytes": 20.0},
                "pages": pages}  # fmt: skip

    result = {"runs": [], "landed": [landed(False, 1.4), landed(True, 0.06)]}
    assert [line.split("   ")[-1].strip() for line in meeting.targets(result)[1:]] == [
        "", "every page ≤ 1 s: met"
    ]  # fmt: skip
    result["landed"][1] = landed(True, 1.2)
    assert meeting.targets(result)[-1].endswith("every page ≤ 1 s: NOT met")
    text = meeting.report({**result, "store": "s", "load_average_1min": 0.5, "cpus": 2})
    assert "no re-warm (the first visitor pays)" in "\n".join(text)
    assert "after a sweep landed 1 cell and the store was quiet 30 s" in "\n".join(text)
