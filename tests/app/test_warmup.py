"""The dashboard's warm-up: the default views' cached values before the first visitor; pages
that import only what they need."""

import json
import subprocess
import sys

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fairprune.app import charts, loaders, tables, warmup
from fairprune.sweep.results import ResultsStore
from tests.conftest import ROOT


def _fail(*args, **kwargs):
    raise AssertionError("recomputed: the warm-up should have cached this")


def _clear_caches() -> None:
    """Empty Streamlit's caches once no warm-up thread is running: a thread started by an earlier
    test's app.py (AppTest runs it) must not fill a cache, or meet a builder patched to fail,
    while this test watches."""
    warmup.stop(timeout=300)
    st.cache_data.clear()
    st.cache_resource.clear()


def test_warmup_fills_the_caches_the_pages_read(store_env, monkeypatch):
    _clear_caches()
    done = warmup.warm(store_env["results"], store_env["models"])
    assert done == ["overview chart", "findings", "sweep charts", "dataset", "audit", "forgotten",
                    "methods"]  # fmt: skip
    # the page's default: the newest sweep (other tests add sweeps to the shared fixture store)
    sweeps = tables.sweeps_table()
    sweep_id = sweeps[sweeps["cells"] > 0].iloc[-1]["sweep_id"]
    pair = warmup._default_pair(sweep_id, tables.method_keys(sweep_id))
    expected = tables.headline_text(sweep_id, *pair)
    # every default view is now a cache hit: the builders behind them must not run again
    import fairprune.sweep.findings as findings
    import fairprune.sweep.methods as methods

    for name in ("accuracy_vs_reduction", "gap_vs_reduction", "tradeoff_chart", "disparity_chart"):
        monkeypatch.setattr(charts, name, _fail)
    monkeypatch.setattr(findings, "level_findings", _fail)
    monkeypatch.setattr(methods, "methods_table", _fail)
    monkeypatch.setattr("fairprune.metrics.audit", _fail)
    monkeypatch.setattr("fairprune.evaluate.predict", _fail)
    monkeypatch.setattr(warmup, "start", lambda *a, **k: None)  # this test warmed by hand
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    assert expected in "\n".join(m.value for m in at.markdown)
    for page in ("pages/3_Audit.py", "pages/4_Sparsity_sweep.py", "pages/7_Methods.py",
                 "pages/5_What_pruning_forgot.py"):  # fmt: skip
        at = AppTest.from_file(str(ROOT / page), default_timeout=120).run()
        assert not at.exception, (page, [e.message for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        assert len(at.get("plotly_chart")) >= 1, page


def test_warmup_values_equal_a_cold_pages(store_env):
    """The warm-up computes the same values a page computes (same arguments, same numbers)."""
    sweep_id = store_env["sweep_id"]
    _clear_caches()
    cold = tables.sweep_findings(sweep_id, "l1:ce", "l1:pw")[0]
    _clear_caches()
    warmup.warm(store_env["results"], store_env["models"])
    warm = tables.sweep_findings(sweep_id, "l1:ce", "l1:pw")[0]
    assert warm.equals(cold)
    assert len(warm) == 2  # two levels


def test_warmup_on_a_missing_or_empty_store_does_nothing(empty_env):
    assert warmup.start(empty_env / "results.sqlite", empty_env / "models") is None
    ResultsStore(empty_env / "results.sqlite")  # an empty store file
    assert warmup.warm(empty_env / "results.sqlite", empty_env / "models") == []


def test_warmup_starts_one_daemon_thread_per_store(store_env, monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "warm", lambda results, models: calls.append(results))
    monkeypatch.setattr(warmup, "_threads", {})
    first = warmup.start(store_env["results"], store_env["models"])
    second = warmup.start(store_env["results"], store_env["models"])
    first.join(10)
    assert first is second and first.daemon
    assert calls == [store_env["results"]]


def test_stop_ends_a_running_warmup_after_its_step_and_a_later_start_runs_afresh(
    store_env, monkeypatch
):
    import threading
    import time

    steps, entered = [], threading.Event()

    def warm(results, models):  # a warm-up of many steps, as the real one checks between them
        entered.set()
        for i in range(600):
            warmup._check()
            steps.append(i)
            time.sleep(0.05)

    monkeypatch.setattr(warmup, "warm", warm)
    monkeypatch.setattr(warmup, "_threads", {})
    first = warmup.start(store_env["results"], store_env["models"])
    assert entered.wait(10)
    warmup.stop(timeout=10)
    assert not first.is_alive() and len(steps) < 600 and warmup._threads == {}
    second = warmup.start(store_env["results"], store_env["models"])
    assert second is not first and second.is_alive()  # the stop flag was cleared
    warmup.stop(timeout=10)
    assert not second.is_alive()


def test_the_warmup_watches_the_store_and_warms_again_once_new_cells_are_quiet(
    empty_env, monkeypatch
):
    """On a missing store it only looks for the file; each change of the store's version is
    warmed once the version has stayed put for the quiet time, and not while it keeps changing
    (a sweep landing cells)."""
    import threading
    import time

    version, warmed, lock = [None], [], threading.Lock()

    def warm(results, models):
        with lock:
            warmed.append(version[0])

    monkeypatch.setenv("FAIRPRUNE_REWARM_QUIET_S", "1.0")
    monkeypatch.setattr(warmup, "POLL_S", 0.02)
    monkeypatch.setattr(warmup, "store_version", lambda results: version[0])
    monkeypatch.setattr(warmup, "warm", warm)
    monkeypatch.setattr(warmup, "_threads", {})

    def settle(seconds: float) -> list:
        time.sleep(seconds)
        with lock:
            return list(warmed)

    thread = warmup.start(empty_env / "results.sqlite", empty_env / "models")
    assert thread is not None and thread.is_alive()
    assert settle(0.5) == []  # no store yet: nothing to warm
    version[0] = "v1"  # the demo's first cells
    assert settle(0.3) == []  # not quiet yet
    assert settle(1.7) == ["v1"]
    for i in range(10):  # a sweep landing a cell every 0.1 s: never quiet for 1 s
        version[0] = f"v2.{i}"
        assert settle(0.1) == ["v1"]
    assert settle(2.0) == ["v1", "v2.9"]  # once, for the last version
    assert settle(1.2) == ["v1", "v2.9"]  # an unchanged store is not warmed again
    warmup.stop(timeout=10)
    assert not thread.is_alive()


def test_an_unreadable_store_is_logged_once_not_at_every_look(empty_env, monkeypatch, caplog):
    import time

    looks = []

    def unreachable(results):
        looks.append(1)
        raise OSError("connection refused")

    monkeypatch.setenv("FAIRPRUNE_REWARM_QUIET_S", "1")
    monkeypatch.setattr(warmup, "POLL_S", 0.02)
    monkeypatch.setattr(warmup, "store_version", unreachable)
    monkeypatch.setattr(warmup, "_threads", {})
    with caplog.at_level("WARNING", logger=warmup.__name__):
        warmup.start(empty_env / "results.sqlite", empty_env / "models")
        time.sleep(0.5)
        warmup.stop(timeout=10)
    assert len(looks) >= 5
    assert [r.getMessage() for r in caplog.records if r.name == warmup.__name__] == [
        "dashboard warm-up failed; the pages compute their values themselves"
    ]


def test_a_store_that_exists_at_start_is_warmed_at_once_and_its_version_is_the_stores(
    store_env, tmp_path, monkeypatch
):
    import threading

    called = threading.Event()
    monkeypatch.setenv("FAIRPRUNE_REWARM_QUIET_S", "60")
    monkeypatch.setattr(warmup, "warm", lambda results, models: called.set())
    monkeypatch.setattr(warmup, "_threads", {})
    warmup.start(store_env["results"], store_env["models"])
    assert called.wait(10)  # without waiting for the quiet time
    assert (
        warmup.store_version(store_env["results"]) == ResultsStore(store_env["results"]).version()
    )
    assert warmup.store_version(tmp_path / "missing.sqlite") is None
    assert not (tmp_path / "missing.sqlite").exists()


def test_warmup_of_another_store_than_the_configured_one_stops_at_once(store_env, tmp_path):
    ResultsStore(tmp_path / "other.sqlite")
    assert warmup.warm(tmp_path / "other.sqlite", store_env["models"]) == []


@pytest.mark.parametrize(
    "modules",
    [
        # what app.py and the empty Overview import before a store exists
        ["fairprune.app.warmup", "fairprune.app.ui", "fairprune.app.tables",
         "fairprune.app.demo_job", "fairprune.app.review"],
        ["fairprune.app.loaders", "fairprune.app.choices", "fairprune.app.jobs"],
    ],
)  # fmt: skip
def test_light_page_modules_do_not_import_the_backend(modules):
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in ('torch', 'torch_pruning', 'ray', 'onnxruntime', "
        "'fairlearn', 'sklearn') if k in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout  # fmt: skip
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_audit_cached_is_shared_between_calls(store_env, monkeypatch):
    st.cache_data.clear()
    bundle = loaders.dataset("synthderm", options={"limit": 600, "test_limit": 300})
    record = store_env["dense"]
    first = loaders.audit_cached(record.sha256, bundle.fingerprint, False, 50, record, bundle)
    monkeypatch.setattr(loaders, "audit_table", _fail)
    again = loaders.audit_cached(record.sha256, bundle.fingerprint, False, 50, record, bundle)
    assert again.equals(first)


def test_the_pages_default_dataset_is_the_demos():
    from fairprune import demo

    assert loaders.DEFAULT_DATASET == (demo.DEMO_DATASET, None, None, demo.demo_options())
