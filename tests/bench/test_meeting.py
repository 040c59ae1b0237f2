"""bench/meeting.py: Streamlit's websocket protocol against a real dashboard server."""

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
