"""Every page under streamlit's AppTest: no exception, key elements, numbers equal the backend's."""

import base64
import io
from pathlib import Path

import numpy as np
import plotly.io
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fairprune.app import views
from fairprune.data import load_dataset
from fairprune.data.base import summarize
from fairprune.evaluate import predict
from fairprune.metrics import accuracy_gap, audit
from fairprune.nets.checkpoint import list_models
from fairprune.nets.imports import load_model
from fairprune.sweep.findings import summary
from fairprune.sweep.results import ResultsStore
from tests.conftest import ROOT


def _run(page: str, timeout: float = 180, **state) -> AppTest:
    # each AppTest starts with empty Streamlit caches, as a fresh server would: a table cached by
    # an earlier test (same model, other data or settings) must not stand in for this one's
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / page), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _texts(at) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def _figure(at, key: str | None = None):
    """The plotly figure a page drew (under ``key``; else the first)."""
    charts = [c for c in at.get("plotly_chart") if key is None or key in c.proto.id]
    return plotly.io.from_json(charts[0].proto.spec)


def _trace(fig, name: str):
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


def _values(arr) -> np.ndarray:
    """A trace's array as the browser gets it: plotly sends numpy arrays as base64 typed arrays."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"])
    return np.asarray(arr, dtype=float)


def test_overview_headline_and_chart(store_env):
    at = _run("app.py")
    long = ResultsStore(store_env["results"]).export_long(store_env["sweep_id"])
    head = summary(ResultsStore(store_env["results"]), store_env["sweep_id"])["headline"]
    assert head in _texts(at)
    assert len(at.get("plotly_chart")) == 1
    cells = ResultsStore(store_env["results"]).cells(store_env["sweep_id"])
    dense = cells[cells["criterion"] == "dense"].iloc[0]
    assert at.metric[0].value == f"{dense['accuracy'] * 100:.1f}%"
    assert at.metric[1].value == f"{dense['gap'] * 100:.1f} pp"
    assert "Groups:" in _texts(at)  # the colour legend
    assert {p.proto.page for p in at.get("page_link")} >= {"Audit", "Report", "Sparsity_sweep"}
    fig = _figure(at)
    dark = long[(long["group"] == "dark") & (long["loss"] == "pw")].sort_values("flops_reduction")
    dense_dark = long[(long["group"] == "dark") & (long["loss"] == "dense")]["accuracy"]
    expected = [dense_dark.iloc[0] * 100, *(dark["accuracy"] * 100)]
    np.testing.assert_allclose(_values(_trace(fig, "dark · PW loss").y), expected)


def test_overview_on_an_empty_store_offers_the_demo(empty_env):
    at = _run("app.py")
    assert "results store is empty" in at.info[0].value
    assert at.button[0].label == "Run the demo"


def test_models_page_lists_every_checkpoint(store_env):
    at = _run("pages/1_Models.py")
    table = at.dataframe[0].value
    records = list_models(store_env["models"])
    assert len(table) == len(records) == 5
    assert set(table["sha256"]) == {r.sha256[:12] for r in records}


def test_models_page_adds_an_upload_and_refuses_a_corrupt_one(store_env, tmp_path, monkeypatch):
    import torch

    from fairprune.nets.architectures import build_model

    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(tmp_path))  # keep the shared store as it is
    buf = io.BytesIO()
    torch.save(build_model("demo_cnn", 2, 64).state_dict(), buf)
    at = _run("pages/1_Models.py")
    assert "No checkpoints yet" in at.info[0].value
    at.selectbox(key="models_arch").set_value("demo_cnn")
    at.file_uploader(key="models_upload").upload("mine.pt", buf.getvalue()).run()
    at.button(key="models_add_upload").click().run()
    assert not at.exception
    (record,) = list_models(tmp_path)
    assert at.success[0].value.startswith(f"Added `mine` ({record.params:,} params")
    at.file_uploader(key="models_upload").set_value(("bad.pt", b"PK\x03\x04junk", "x")).run()
    at.button(key="models_add_upload").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("bad.pt: ")
    assert len(list_models(tmp_path)) == 1


def test_models_page_refuses_a_foreign_file_by_path(store_env):
    (store_env["models"] / "foreign.pt").write_bytes(b"\x80\x04not a state dict")
    at = _run("pages/1_Models.py")
    at.text_input(key="models_path").input("foreign.pt").run()
    at.button(key="models_add_path").click().run()
    assert not at.exception
    assert "refused to load" in at.error[0].value
    (store_env["models"] / "foreign.pt").unlink()


def test_dataset_page_counts_equal_summarize(store_env):
    at = _run("pages/2_Dataset.py")
    bundle = load_dataset("synthderm", preset="biased")  # the demo's: the pages' default
    expected = summarize(bundle).pivot_table(index=["split", "group"], columns="label", values="n")
    shown = at.dataframe[0].value
    assert int(shown.to_numpy().sum()) == int(expected.to_numpy().sum())
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("image")) == 3 * 8  # a grid of 8 per group


def test_dataset_page_bad_folder_is_one_line_error(store_env, monkeypatch):
    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", "/nonexistent")  # allowed, but not there
    at = _run("pages/2_Dataset.py")
    at.selectbox(key="dataset_name").set_value("csv").run()
    at.text_input(key="dataset_root").input("/nonexistent/folder").run()
    at.button(key="dataset_apply").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("dataset folder not found: /nonexistent/folder")


def test_audit_numbers_equal_backend(store_env):
    at = _run("pages/3_Audit.py")
    at.select_slider(key="audit_nboot").set_value(0).run()
    names = at.multiselect(key="audit_models").value
    assert len(names) == 2
    bundle = load_dataset("synthderm", preset="biased")  # the demo's: the pages' default
    for i, name in enumerate(names):
        model, rec = load_model(store_env["models"] / f"{name}.safetensors")
        table = audit(predict(model, bundle.splits["test"]), bundle, n_boot=0)
        assert at.metric[i].value == f"{accuracy_gap(table) * 100:.1f} pp"
        shown = at.dataframe[i].value.set_index("group")
        for g, acc in table.set_index("group")["accuracy"].items():
            assert shown.loc[g, "accuracy"] == pytest.approx(acc * 100)
    assert len(at.get("plotly_chart")) == 4  # one per model + the side-by-side pair
    at.toggle(key="audit_intersectional").set_value(True).run()
    assert "dark × malignant" in set(at.dataframe[0].value["group"])


def test_sweep_page_charts_and_cells(store_env):
    at = _run("pages/4_Sparsity_sweep.py")
    assert len(at.get("plotly_chart")) == 4
    store = ResultsStore(store_env["results"])
    cells = store.cells(store_env["sweep_id"])
    assert len(at.dataframe[-1].value) == len(cells) == 5
    long = store.export_long(store_env["sweep_id"])
    gaps = views.gaps_table(long)
    ce = gaps[gaps["loss"] == "ce"].sort_values("flops_reduction")
    np.testing.assert_allclose(_values(_trace(_figure(at, "sweep_chart_gap"), "l1 · cross-entropy").y),
                               ce["gap"] * 100)  # fmt: skip
    store_head = summary(store, store_env["sweep_id"])
    assert store_head["headline"] in _texts(at)
    shown = at.dataframe[-2].value.set_index("FLOPs reduction (%)")
    top = shown.iloc[-1]
    assert top["gap l1 + ce"] == pytest.approx(round(store_head["gap_ce"], 1))
    iv = store_head["gap_dense_interval"]
    assert top["gap dense [95% CI]"] == (
        f"{iv['estimate']:.1f} [{iv['low']:.1f}, {iv['high']:.1f}]"
    )
    iv = store_head["ce_vs_dense"]
    assert top["l1 + ce − dense [95% CI]"] == (
        f"{iv['estimate']:+.1f} [{iv['low']:+.1f}, {iv['high']:+.1f}]"
    )


def test_store_picker_refuses_a_missing_folder(store_env, monkeypatch):
    from fairprune.app import ui

    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", "/no")  # allowed, but not there
    at = _run("pages/4_Sparsity_sweep.py")
    at.text_input(key="ui_models_dir").input("/no/such/folder").run()
    assert at.sidebar.error[0].value == ui.ERR_NO_MODELS_DIR.format(path="/no/such/folder")


@pytest.fixture
def private_store(store_env, tmp_path, monkeypatch):
    """Copies of the fixture's results store and model folder, for a test that runs a sweep
    (its new sweep and models must not show up in the other tests' shared store)."""
    import shutil
    import sqlite3

    results, models = tmp_path / "results.sqlite", tmp_path / "models"
    with sqlite3.connect(store_env["results"]) as src, sqlite3.connect(results) as dst:
        src.backup(dst)
    shutil.copytree(store_env["models"], models)
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(results))
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(models))
    return {**store_env, "results": results, "models": models}


def test_sweep_page_runs_a_sweep_in_the_background(private_store):
    store_env = private_store
    # the fixture's small SynthDerm, so the sweep stays seconds long
    tiny = ("synthderm", None, None, {"limit": 600, "test_limit": 300})
    at = _run("pages/4_Sparsity_sweep.py", fp_dataset_choice=tiny)
    assert at.toggle(key="sweep_new").value is False  # sweeps in the store: results first
    assert not [w for w in at.multiselect if w.key == "sweep_losses"]  # the form is not drawn
    at.toggle(key="sweep_new").set_value(True).run()
    at.multiselect(key="sweep_losses").set_value(["pw_soft"])
    at.multiselect(key="sweep_levels").set_value([0.75])
    at.number_input(key="sweep_epochs").set_value(1)
    at.button(key="sweep_run").click().run()
    assert not at.exception
    from fairprune.app import jobs

    job = jobs.get_job(at.session_state["sweep_job"])
    job.wait(180)
    assert job.state == "finished", job.error
    long = ResultsStore(store_env["results"]).export_long(job.key)
    assert set(long["loss"]) == {"dense", "pw_soft"}
    assert abs(long[long["loss"] == "pw_soft"]["flops_reduction"].iloc[0] - 0.75) <= 0.01
    at.run()  # the live panel shows the finished cells
    assert "Sweep finished" in [h.value for h in at.subheader]
    states = at.dataframe[0].value  # each cell's state, as results arrive
    assert states[["loss", "level", "state"]].values.tolist() == [["pw_soft", 0.75, "done"]]
    assert "Running on this machine (a background process, one cell after another)." in _texts(at)
    assert len(at.dataframe[1].value) == 2  # the live table: dense + the new cell
    # the same settings again: nothing is recomputed, the page says so
    at.button(key="sweep_run").click().run()
    again = jobs.get_job(at.session_state["sweep_job"])
    again.wait(120)
    assert again is not job and again.resumed == 1 and again.landed == []
    at.run()
    assert "Resumed: 1 cells were already in the results store" in _texts(at)


def test_forgotten_page_rates_equal_backend(store_env):
    at = _run("pages/5_What_pruning_forgot.py")
    bundle = load_dataset("synthderm", preset="biased")  # the demo's: the pages' default
    dense, _ = load_model(store_env["dense"].path)
    pruned_name = at.selectbox(key="forgot_pruned").value
    pruned, _ = load_model(store_env["models"] / f"{pruned_name}.safetensors")
    split = bundle.splits["test"]
    _samples, rates = views.forgotten(predict(dense, split), predict(pruned, split),
                                      bundle.group_names)  # fmt: skip
    shown = at.dataframe[0].value
    assert list(shown["forgotten"]) == list(rates["forgotten"])
    np.testing.assert_allclose(shown["rate"], rates["rate"] * 100)
    assert len(at.get("plotly_chart")) == 1


def _onnx_store(store_env, tmp_path, monkeypatch):
    """A store of the fixture's dense checkpoint and its ONNX export (the shared one stays as is)."""
    import shutil

    from fairprune.nets.onnx_export import export_checkpoint

    dense = store_env["dense"]
    for suffix in (".safetensors", ".json"):
        shutil.copy(Path(dense.path).with_suffix(suffix), tmp_path)
    report = export_checkpoint(dense.path, tmp_path / "dense.onnx", exporter="torchscript")
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(tmp_path))
    return dense, Path(report.path)


def test_audit_page_runs_an_onnx_model_beside_its_checkpoint(store_env, tmp_path, monkeypatch):
    dense, onnx_path = _onnx_store(store_env, tmp_path, monkeypatch)
    small = ("synthderm", None, None, {"limit": 600, "test_limit": 300})  # the fixture's data
    at = _run("pages/3_Audit.py", fp_dataset_choice=small)
    at.select_slider(key="audit_nboot").set_value(0).run()
    assert at.multiselect(key="audit_models").value == [dense.name, "dense.onnx"]
    assert "**audit only, not prunable**" in at.caption[1].value
    torch_table, onnx_table = at.dataframe[0].value, at.dataframe[1].value
    # the same predictions through onnxruntime (logits within 1e-4: at most one sample on the
    # decision boundary may flip, one point of accuracy in percent for a group of 100)
    one_sample = 100 / torch_table["n"].min()
    np.testing.assert_allclose(onnx_table["accuracy"], torch_table["accuracy"], atol=one_sample)
    at.toggle(key="audit_latency").set_value(True).run()
    assert not at.exception
    # per model: its audit table, then its latency table (AppTest shows no dataframe keys)
    lat_torch, lat_onnx = at.dataframe[1].value, at.dataframe[3].value
    np.testing.assert_allclose(at.dataframe[2].value["accuracy"], onnx_table["accuracy"])
    assert list(lat_torch["runtime"]) == ["torch", "torch (BN folded, channels-last)",
                                          "onnxruntime"]  # fmt: skip
    assert list(lat_onnx["runtime"]) == ["onnxruntime"]
    assert (lat_torch["batch 64 (ms/image)"] > 0).all()
    assert lat_torch["speed vs torch (batch 64)"].iloc[0] == 1.0


def test_models_page_lists_and_adds_onnx(store_env, tmp_path, monkeypatch):
    _dense, onnx_path = _onnx_store(store_env, tmp_path, monkeypatch)
    at = _run("pages/1_Models.py")
    onnx_table = at.dataframe[1].value  # after the checkpoints' table
    assert list(onnx_table["name"]) == ["dense.onnx"] and list(onnx_table["kind"]) == ["onnx"]
    at.file_uploader(key="models_upload").upload("mine.onnx", onnx_path.read_bytes()).run()
    at.button(key="models_add_upload").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Added `mine.onnx`: an ONNX classifier run by")
    assert (tmp_path / "mine.onnx").read_bytes() == onnx_path.read_bytes()
    at.file_uploader(key="models_upload").upload("bad.onnx", b"\x00\xffjunk").run()
    at.button(key="models_add_upload").click().run()
    assert at.error[0].value.startswith("bad.onnx: not an ONNX model")
    at.run()  # the error ended that run; the next one shows the whole page
    at.selectbox(key="models_latency_model").set_value("mine.onnx")
    at.toggle(key="models_latency").set_value(True).run()
    assert not at.exception
    assert list(at.dataframe[-1].value["runtime"]) == ["onnxruntime"]


# ---------------------------------------------------------------- review decisions, stored data


@pytest.fixture
def own_store(store_env, tmp_path, monkeypatch):
    """A private copy of the fixture's results store (these tests write decisions to it)."""
    import sqlite3

    path = tmp_path / "results.sqlite"
    with sqlite3.connect(store_env["results"]) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(path))
    return {**store_env, "results": path}


FIXTURE_DATA = ("synthderm", None, None, {"limit": 600, "test_limit": 300})  # the sweep's rows


def _no_model_runs(monkeypatch):
    import fairprune.evaluate

    def refuse(*args, **kwargs):
        raise AssertionError("a page ran a model whose predictions are in the results store")

    monkeypatch.setattr(fairprune.evaluate, "predict", refuse)


def test_overview_records_decisions_on_the_sweep(own_store):
    from fairprune.app.review import ERR_PICK_DECISION
    from fairprune.sweep.results import ERR_NO_REVIEWER

    # other tests add sweeps to the shared store: look at the fixture's, whichever is newest
    at = _run("app.py", overview_sweep=own_store["sweep_id"])
    assert "No review decisions yet." in _texts(at)
    at.radio(key="overview_decision").set_value("accept")
    at.button(key="overview_decision_submit").click().run()
    assert at.error[0].value == ERR_NO_REVIEWER  # one line, nothing stored
    at.text_input(key="overview_reviewer").input("Ana")
    at.radio(key="overview_decision").set_value(None)
    at.button(key="overview_decision_submit").click().run()
    assert at.error[0].value == ERR_PICK_DECISION
    store = ResultsStore(own_store["results"])
    assert store.decisions().empty
    at.radio(key="overview_decision").set_value("needs work")
    at.text_area(key="overview_comment").input("add seeds 3-4")
    at.button(key="overview_decision_submit").click().run()
    assert not at.exception and not at.error
    sweep = own_store["sweep_id"]
    assert at.success[0].value.startswith(f"Recorded: needs work on sweep fixture ({sweep}) by Ana")
    (row,) = store.decisions().to_dict("records")
    assert (row["kind"], row["subject"], row["decision"], row["reviewer"], row["comment"]) == (
        "sweep", sweep, "needs work", "Ana", "add seeds 3-4")  # fmt: skip
    shown = at.dataframe[-1].value
    assert shown[["about", "decision", "reviewer"]].values.tolist() == [
        ["sweep · fixture", "needs work", "Ana"]
    ]


def test_audit_reads_stored_predictions_and_decides_on_a_model(own_store, monkeypatch):
    _no_model_runs(monkeypatch)
    at = _run("pages/3_Audit.py", fp_dataset_choice=FIXTURE_DATA)
    # the slider starts at the resamples the sweep audited with: its stored table is shown as is
    assert at.select_slider(key="audit_nboot").value == 50
    store = ResultsStore(own_store["results"])
    cells = store.cells(own_store["sweep_id"]).set_index("model")
    names = at.multiselect(key="audit_models").value
    for i, name in enumerate(names):
        stored = store.cell_groups(cells.loc[name, "cell_key"]).set_index("group")
        shown = at.dataframe[i].value.set_index("group")
        for col in ("accuracy", "accuracy_low", "accuracy_high"):  # the sweep's own intervals
            np.testing.assert_allclose(shown[col], stored.loc[shown.index, col] * 100)
    # another bootstrap: recomputed, but from the stored predictions (no model is run)
    at.select_slider(key="audit_nboot").set_value(0).run()
    assert not at.exception
    for i, name in enumerate(names):
        preds = store.predictions([cells.loc[name, "cell_key"]])
        acc = next(iter(preds.values())).correct.mean()
        assert at.dataframe[i].value.set_index("group").loc["overall", "accuracy"] == (
            pytest.approx(acc * 100)
        )
    # the side-by-side records a decision on model B
    at.selectbox(key="audit_cmp_decision_about").set_value(f"B: {names[1]}")
    at.text_input(key="audit_cmp_reviewer").input("Bo")
    at.radio(key="audit_cmp_decision").set_value("reject")
    at.button(key="audit_cmp_decision_submit").click().run()
    assert not at.exception and not at.error
    (row,) = store.decisions().to_dict("records")
    assert (row["kind"], row["subject"], row["decision"]) == (
        "model", cells.loc[names[1], "model_hash"], "reject")  # fmt: skip
    (decided,) = [d.value for d in at.dataframe if "about" in d.value.columns]
    assert decided["about"].tolist() == [f"model · {names[1]}"]


def test_forgotten_page_reads_stored_predictions(own_store, monkeypatch):
    _no_model_runs(monkeypatch)
    store = ResultsStore(own_store["results"])
    cells = store.cells(own_store["sweep_id"]).set_index("model")
    pick = cells[cells["criterion"] != "dense"].index[-1]  # one of the fixture sweep's models
    at = _run("pages/5_What_pruning_forgot.py", fp_dataset_choice=FIXTURE_DATA,
              forgot_pruned=pick)  # fmt: skip
    assert at.selectbox(key="forgot_pruned").value == pick
    dense = store.predictions([cells.loc[own_store["dense"].name, "cell_key"]])
    pruned = store.predictions([cells.loc[at.selectbox(key="forgot_pruned").value, "cell_key"]])
    (dp,), (pp,) = dense.values(), pruned.values()
    _samples, rates = views.forgotten(dp, pp, dp.group_names)
    shown = at.dataframe[0].value
    assert list(shown["forgotten"]) == list(rates["forgotten"])
    np.testing.assert_allclose(shown["rate"], rates["rate"] * 100)


def test_report_lists_and_records_decisions_and_carries_them_into_the_report(own_store):
    store = ResultsStore(own_store["results"])
    sweep = own_store["sweep_id"]
    store.record_decision(subject=sweep, kind="sweep", decision="accept", reviewer="Ana")
    at = _run("pages/6_Report.py", report_sweep=sweep)
    assert at.dataframe[0].value["decision"].tolist() == ["accept"]
    model = store.cells(sweep).query("criterion != 'dense'").iloc[0]
    at.selectbox(key="report_decision_about").set_value(f"model {model['model']}")
    at.text_input(key="report_reviewer").input("Cy")
    at.radio(key="report_decision").set_value("needs work")
    at.button(key="report_decision_submit").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["decision"].tolist() == ["needs work", "accept"]  # newest first
    assert list(store.decisions(sweep_id=sweep)["subject"]) == [sweep, model["model_hash"]]
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download HTML report", "Download CSV (one row per model × group)",
                      "Download decisions (CSV, full history)"]  # fmt: skip
    assert at.get("iframe") == []  # megabytes: the page loads the report only when asked
    at.toggle(key="report_preview").set_value(True).run()
    (preview,) = at.get("iframe")  # the report as downloaded, previewed on the page
    report = preview.proto.srcdoc
    assert "<h2>Review decisions</h2>" in report
    assert f"<td>model · {model['model']}</td>" in report and "<td>needs work</td>" in report
    assert "<td>sweep · fixture</td>" in report and "<td>Cy</td>" in report


def test_methods_page_table_and_charts_equal_the_backend(methods_env):
    from fairprune.sweep.methods import methods_display, methods_table

    at = _run("pages/7_Methods.py")
    table = methods_table(ResultsStore(methods_env["results"]))
    shown = at.dataframe[0].value
    expected = methods_display(table)
    assert list(shown.columns) == list(expected.columns)
    assert shown.to_dict("records") == expected.to_dict("records")
    assert len(shown) == 18 and (shown["Pareto front"] == "★").sum() >= 2
    assert len(at.get("plotly_chart")) == 5
    fig = _figure(at, "methods_gap")
    for row in table["methods"]:
        if row["level"] != 0.9:
            continue
        trace = _trace(fig, row["method"])
        assert _values(trace.y)[-1] == pytest.approx(row["gap"]["estimate"])
    pareto = _figure(at, "methods_pareto")
    stars = {t.name for t in pareto.data if t.marker is not None and t.marker.symbol == "star"}
    assert stars == {r["method"] for r in table["methods"] if r["pareto"]}
    assert "weight sparsity" in _texts(at) and "FLOPs and latency do not fall" in _texts(at)


def test_methods_page_on_an_empty_store_says_what_to_run(empty_env):
    at = _run("pages/7_Methods.py")
    assert "No pruned models" in at.info[0].value and "fairgrape" in at.info[0].value


def test_the_run_that_brings_a_session_to_a_page_pauses_once_after_its_first_chart(
    store_env, monkeypatch
):
    from fairprune.app import ui

    slept = []
    monkeypatch.setattr(ui, "_sleep", slept.append)
    monkeypatch.delenv("FAIRPRUNE_FIRST_VIEW_PAUSE", raising=False)
    at = _run("pages/3_Audit.py")  # a new session: once, though the page draws four charts
    assert len(at.get("plotly_chart")) == 4 and slept == [ui.FIRST_VIEW_PAUSE_S]
    at.toggle(key="audit_intersectional").set_value(True).run()  # a widget: same page
    at.run()
    assert not at.exception and slept == [ui.FIRST_VIEW_PAUSE_S]
    at.session_state["_fp_page"] = "Overview"  # the session switches here from another page
    monkeypatch.setenv("FAIRPRUNE_FIRST_VIEW_PAUSE", "0.05")
    at.run()
    assert slept == [ui.FIRST_VIEW_PAUSE_S, 0.05]


@pytest.mark.parametrize(("value", "seconds"), [("", 0.3), ("0", 0.0), ("1.5", 1.5), ("-2", 0.0),
                                                ("soon", 0.3), ("nan", 0.3), ("inf", 0.3)])  # fmt: skip
def test_first_view_pause_reads_its_setting(monkeypatch, value, seconds):
    from fairprune.app import ui

    monkeypatch.setenv("FAIRPRUNE_FIRST_VIEW_PAUSE", value)
    assert ui.first_view_pause() == seconds


def _copy_cell(path, cell_key: str, new_key: str, sweep_id: str, n_boot: int) -> None:
    """Store a cell again as one of another (newer) sweep audited with ``n_boot`` resamples:
    what a second sweep from the same dense model leaves for its baseline."""
    import json
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        for table in ("cells", "group_rows", "predictions"):
            for row in conn.execute(f"SELECT * FROM {table} WHERE cell_key = ?", (cell_key,)):
                row = dict(row)
                row["cell_key"] = new_key
                if table == "cells":
                    config = json.loads(row["config_json"])
                    config.setdefault("sweep", {})["n_boot"] = n_boot
                    row.update(sweep_id=sweep_id, config_json=json.dumps(config),
                               created=row["created"] + 1e6)  # fmt: skip
                cols = ", ".join(row)
                conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))  # fmt: skip


def _copy_sweep(path, sweep_id: str, new_id: str) -> None:
    """Store a sweep again, cells and all, as a newer sweep ``new_id``."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone())
        row.update(sweep_id=new_id, name=f"{new_id} sweep", created=row["created"] + 1e6)
        conn.execute(f"INSERT INTO sweeps ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     tuple(row.values()))  # fmt: skip
    for key in ResultsStore(path).cells(sweep_id)["cell_key"]:
        _copy_cell(path, key, f"{new_id}-{key}", new_id, 50)


def test_the_sweep_a_session_chose_stays_in_view_from_page_to_page(own_store):
    _copy_sweep(own_store["results"], own_store["sweep_id"], "newer")
    at = _run("app.py")
    assert at.selectbox(key="overview_sweep").value == "newer"  # the newest, unasked
    at.selectbox(key="overview_sweep").set_value(own_store["sweep_id"]).run()
    for page, key in (("pages/6_Report.py", "report_sweep"),
                      ("pages/4_Sparsity_sweep.py", "sweep_pick")):  # fmt: skip
        at.switch_page(page).run()
        assert not at.exception
        assert at.selectbox(key=key).value == own_store["sweep_id"], page
    at.selectbox(key="sweep_pick").set_value("newer").run()
    at.switch_page("app.py").run()
    assert at.selectbox(key="overview_sweep").value == "newer"


def test_a_sweep_another_session_is_running_is_listed_not_shown_unasked(own_store, monkeypatch):
    from types import SimpleNamespace

    from fairprune.app import jobs

    _copy_sweep(own_store["results"], own_store["sweep_id"], "newer")
    monkeypatch.setattr(jobs, "running_jobs", lambda: [SimpleNamespace(key="newer")])
    at = _run("pages/6_Report.py")
    box = at.selectbox(key="report_sweep")
    assert box.value == own_store["sweep_id"]
    assert [o.split(" · ")[-1] for o in box.options] == ["newer", own_store["sweep_id"]]


def test_audit_starts_from_resamples_every_chosen_model_has_stored(own_store, monkeypatch):
    """The dense model is a cell of a newer sweep audited with 200 resamples too; the pruned one
    only of the fixture's (50): the page starts at 50 and runs no bootstrap."""
    import fairprune.metrics

    store = ResultsStore(own_store["results"])
    cells = store.cells(own_store["sweep_id"])
    dense = cells[cells["criterion"] == "dense"].iloc[0]
    _copy_cell(own_store["results"], dense["cell_key"], "newer-dense", "newer", 200)
    assert store.cells_of_model(dense["model_hash"]) == ["newer-dense", dense["cell_key"]]
    _no_model_runs(monkeypatch)

    def no_bootstrap(*args, **kwargs):
        raise AssertionError("the page ran a bootstrap that the store holds")

    monkeypatch.setattr(fairprune.metrics, "audit", no_bootstrap)
    at = _run("pages/3_Audit.py", fp_dataset_choice=FIXTURE_DATA)
    names = at.multiselect(key="audit_models").value
    assert names[0] == dense["model"] and at.select_slider(key="audit_nboot").value == 50
    for i, name in enumerate(names):
        key = cells.set_index("model").loc[name, "cell_key"]
        stored = store.cell_groups(key).set_index("group")
        shown = at.dataframe[i].value.set_index("group")
        np.testing.assert_allclose(
            shown["accuracy_low"], stored.loc[shown.index, "accuracy_low"] * 100
        )


# ---------------------------------------------------------------- the demo button, empty choices


def _stub_demo(monkeypatch, job):
    """The Overview's demo with a stand-in job: nothing trains, the page only follows ``job``."""
    from fairprune.app import demo_job

    started = []
    monkeypatch.setattr(demo_job, "start_demo", lambda **kw: started.append(kw) or job)
    monkeypatch.setattr(demo_job, "demo_job", lambda: job if started else None)
    return started


def test_overview_runs_the_demo_as_a_job_and_follows_its_progress(empty_env, monkeypatch):
    from fairprune.app import demo_job, jobs

    job = jobs.SweepJob(key="demo", config=None, stage="dense", done=40, total=400,
                        info="train epoch 1/10 loss 0.6")  # fmt: skip
    started = _stub_demo(monkeypatch, job)
    at = _run("app.py")
    assert not (empty_env / "results.sqlite").exists()  # an empty store costs no backend
    at.button(key="overview_run_demo").click().run()
    assert not at.exception and not at.error
    assert started == [{"results_path": empty_env / "results.sqlite",
                        "models_dir": empty_env / "models"}]  # fmt: skip
    assert at.info[0].value.startswith("The demo is running in the background")
    (bar,) = at.get("progress")
    assert bar.proto.text == demo_job.demo_progress(job)[1]
    assert at.get("plotly_chart") == [] and at.button == []
    job.state, job.error = "failed", "the sweep's process stopped before it finished"
    at.run()  # a failed demo: one line, and the button to try again
    assert [e.value for e in at.error] == [f"The demo stopped: {job.error}"]
    assert at.button[0].label == "Run the demo"


def test_overview_shows_the_chart_once_the_demos_first_pruned_models_land(store_env,
                                                                          monkeypatch):  # fmt: skip
    from fairprune.app import jobs

    job = jobs.SweepJob(key="demo", config=None, stage="sweep", done=1, total=19)
    _stub_demo(monkeypatch, job).append({})  # started in another session
    at = _run("app.py")
    assert at.get("plotly_chart") == [] and len(at.get("progress")) == 1
    job.landed.append("first-cell")
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1 and at.get("progress") == []


def _csv_dataset(root: Path) -> tuple:
    """A tiny two-class CSV dataset under ``root`` (the dashboard's dataset choice for it)."""
    from PIL import Image

    (root / "img").mkdir(parents=True)
    rows = ["path,label,group"]
    for i in range(24):
        Image.new("RGB", (8, 8), (10 * i, 100, 200)).save(root / "img" / f"{i:02d}.png")
        rows.append(f"img/{i:02d}.png,{'ab'[i % 2]},{'xy'[(i // 2) % 2]}")
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    return ("csv", str(root), str(root / "data.csv"), {"image_size": 8})


def test_audit_says_in_one_line_when_no_model_was_made_for_the_dataset(store_env, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    from fairprune.app import choices

    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", str(tmp_path))
    at = _run("pages/3_Audit.py", fp_dataset_choice=_csv_dataset(tmp_path))
    names = [r.name for r in list_models(store_env["models"])]
    assert [i.value for i in at.info] == [
        choices.no_models_message("CSV dataset (data.csv)", names)
    ]
    assert at.multiselect == [] and at.get("plotly_chart") == []


def test_forgotten_offers_only_the_dense_models_own_pruned_models(store_env, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    import json
    import shutil

    from fairprune.app import choices

    dense = store_env["dense"]
    pruned = next(r for r in list_models(store_env["models"]) if r.kind == "pruned")
    for record in (dense, pruned):
        for suffix in (".safetensors", ".json"):
            shutil.copy(Path(record.path).with_suffix(suffix), tmp_path)
    manifest = tmp_path / f"{pruned.name}.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "parent": "0" * 64}))  # another model's child
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(tmp_path))
    at = _run("pages/5_What_pruning_forgot.py", fp_dataset_choice=FIXTURE_DATA)
    assert [i.value for i in at.info] == [choices.NO_PRUNED_CHILD.format(dense=dense.name)]
    assert not [s for s in at.selectbox if s.key == "forgot_pruned"]
