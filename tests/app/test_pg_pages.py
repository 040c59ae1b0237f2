"""Every page on a PostgreSQL results store (``FAIRPRUNE_RESULTS=postgresql://...``): no
exception, and the numbers each page shows on the fixture's SQLite store.

The PostgreSQL store is filled by running the fixture's own sweep into it (same config, same
dense model: the same sweep id and, cell for cell, the same numbers), so what is compared is the
store's round trip, not a copy of its rows."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairprune import paths
from fairprune.app import views
from fairprune.nets.checkpoint import list_models
from fairprune.sweep.findings import summary
from fairprune.sweep.results import ResultsStore
from tests.app.test_app_pages import (
    FIXTURE_DATA,
    _figure,
    _no_model_runs,
    _run,
    _texts,
    _trace,
    _values,
)


def _admin(server_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sql(server_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(_admin(server_url), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="module")
def pg_demo(demo_store, pg_server, tmp_path_factory):
    """The fixture's sweep run again into a PostgreSQL database of this module's, its models in
    a folder of their own (the fixture's dense model and the four pruned models this run makes).
    """
    from sqlalchemy.engine import make_url

    from fairprune.config import SweepConfig, config_from_dict
    from fairprune.sweep import store_dialects
    from fairprune.sweep.runner import run_sweep

    name = "fairprune_test_pages"
    _sql(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _sql(pg_server, f'CREATE DATABASE "{name}"')
    url = make_url(_admin(pg_server)).set(database=name).render_as_string(hide_password=False)
    sqlite = ResultsStore(demo_store["results"])
    sweeps = sqlite.sweeps().set_index("sweep_id")
    config = config_from_dict(
        SweepConfig, json.loads(sweeps.loc[demo_store["sweep_id"], "config_json"])
    )
    models = tmp_path_factory.mktemp("pg-models")
    dense = Path(demo_store["dense"].path)
    for suffix in (".safetensors", ".json"):
        shutil.copy(dense.with_suffix(suffix), models)
    sweep_id = run_sweep(config, store=ResultsStore(url), models_dir=models)
    assert sweep_id == demo_store["sweep_id"]
    yield {"results": url, "models": models, "data": tmp_path_factory.mktemp("pg-data"),
           "sweep_id": sweep_id, "dense": demo_store["dense"],
           "sqlite": demo_store["results"]}  # fmt: skip
    store_dialects.forget_engine(store_dialects.parse_location(url))
    _sql(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PASSWORD = "s3cret-9f2c"  # the test server trusts 127.0.0.1: any password connects


@pytest.fixture
def pg_env(pg_demo, monkeypatch):
    """Point the pages at the PostgreSQL store, by a URL with a password in it."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_demo["results"]).set(password=PASSWORD)
    results = url.render_as_string(hide_password=False)
    monkeypatch.setenv("FAIRPRUNE_RESULTS", results)
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(pg_demo["models"]))
    monkeypatch.setenv("FAIRPRUNE_DATA_DIR", str(pg_demo["data"]))
    return {**pg_demo, "results": results}


def _page(page: str, **state):
    """The page run on the PostgreSQL store: no exception (``_run``), and the store's password
    nowhere on it."""
    at = _run(page, **state)
    shown = [
        e.value
        for kind in (
            "markdown",
            "caption",
            "text_input",
            "code",
            "error",
            "warning",
            "info",
            "success",
        )
        for e in getattr(at, kind)
    ]
    shown += [d.value.to_csv() for d in at.dataframe]  # fmt: skip
    assert not [s for s in shown if PASSWORD in str(s)]
    return at


def _stores(env) -> tuple[ResultsStore, ResultsStore]:
    return ResultsStore(env["results"]), ResultsStore(env["sqlite"])


def test_the_postgresql_store_holds_the_sqlite_stores_numbers(pg_env):
    pg, sqlite = _stores(pg_env)
    sweep = pg_env["sweep_id"]
    cols = ["cell_key", "model_hash", "accuracy", "gap", "max_psi", "flops_reduction"]
    got = pg.cells(sweep)[cols].sort_values("cell_key").reset_index(drop=True)
    want = sqlite.cells(sweep)[cols].sort_values("cell_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    # the long table, to the last bit (what `export` writes and every chart is drawn from)
    key = ["cell_key", "group"]
    got = pg.export_long(sweep).sort_values(key).reset_index(drop=True)
    want = sqlite.export_long(sweep).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_overview_on_postgresql(pg_env):
    at = _page("app.py", overview_sweep=pg_env["sweep_id"])
    pg, sqlite = _stores(pg_env)
    head = summary(sqlite, pg_env["sweep_id"])["headline"]
    assert summary(pg, pg_env["sweep_id"])["headline"] == head
    assert head in _texts(at)
    cells = sqlite.cells(pg_env["sweep_id"])
    dense = cells[cells["criterion"] == "dense"].iloc[0]
    assert at.metric[0].value == f"{dense['accuracy'] * 100:.1f}%"
    assert at.metric[1].value == f"{dense['gap'] * 100:.1f} pp"


def test_models_page_on_postgresql(pg_env):
    at = _page("pages/1_Models.py")
    table = at.dataframe[0].value
    records = list_models(pg_env["models"])
    assert len(table) == len(records) == 5
    assert set(table["sha256"]) == {r.sha256[:12] for r in records}


def test_dataset_page_on_postgresql(pg_env):
    at = _page("pages/2_Dataset.py")
    assert not at.error and len(at.dataframe) >= 1


def test_audit_reads_the_stored_tables_and_predictions_from_postgresql(pg_env, monkeypatch):
    _no_model_runs(monkeypatch)  # every number comes from the store
    at = _page("pages/3_Audit.py", fp_dataset_choice=FIXTURE_DATA)
    assert at.select_slider(key="audit_nboot").value == 50  # the sweep's own resamples
    _, sqlite = _stores(pg_env)
    cells = sqlite.cells(pg_env["sweep_id"]).set_index("model")
    names = at.multiselect(key="audit_models").value
    assert len(names) == 2
    for i, name in enumerate(names):
        stored = sqlite.cell_groups(cells.loc[name, "cell_key"]).set_index("group")
        shown = at.dataframe[i].value.set_index("group")
        for col in ("accuracy", "accuracy_low", "accuracy_high"):
            np.testing.assert_allclose(shown[col], stored.loc[shown.index, col] * 100)
    at.select_slider(key="audit_nboot").set_value(0).run()  # from the stored predictions
    assert not at.exception
    for i, name in enumerate(names):
        (preds,) = sqlite.predictions([cells.loc[name, "cell_key"]]).values()
        overall = at.dataframe[i].value.set_index("group").loc["overall", "accuracy"]
        assert overall == pytest.approx(preds.correct.mean() * 100)


def test_sweep_page_on_postgresql(pg_env):
    at = _page("pages/4_Sparsity_sweep.py")
    _, sqlite = _stores(pg_env)
    sweep = pg_env["sweep_id"]
    assert len(at.dataframe[-1].value) == len(sqlite.cells(sweep)) == 5
    gaps = views.gaps_table(sqlite.export_long(sweep))
    ce = gaps[gaps["loss"] == "ce"].sort_values("flops_reduction")
    fig = _figure(at, "sweep_chart_gap")
    np.testing.assert_allclose(_values(_trace(fig, "l1 · cross-entropy").y), ce["gap"] * 100)
    assert summary(sqlite, sweep)["headline"] in _texts(at)


def test_forgotten_page_reads_predictions_from_postgresql(pg_env, monkeypatch):
    _no_model_runs(monkeypatch)
    _, sqlite = _stores(pg_env)
    cells = sqlite.cells(pg_env["sweep_id"]).set_index("model")
    pick = cells[cells["criterion"] != "dense"].index[-1]
    at = _page("pages/5_What_pruning_forgot.py", fp_dataset_choice=FIXTURE_DATA,
              forgot_pruned=pick)  # fmt: skip
    (dp,) = sqlite.predictions([cells.loc[pg_env["dense"].name, "cell_key"]]).values()
    (pp,) = sqlite.predictions([cells.loc[pick, "cell_key"]]).values()
    _samples, rates = views.forgotten(dp, pp, dp.group_names)
    shown = at.dataframe[0].value
    assert list(shown["forgotten"]) == list(rates["forgotten"])
    np.testing.assert_allclose(shown["rate"], rates["rate"] * 100)


def test_report_lists_decisions_and_actions_from_postgresql(pg_env):
    pg, _ = _stores(pg_env)
    sweep = pg_env["sweep_id"]
    pg.record_decision(subject=sweep, kind="sweep", decision="accept", reviewer="Ana",
                       reviewer_email="ana@example.org")  # fmt: skip
    pg.record_action(actor="Ops", actor_email="ops@example.org", action="sweep started",
                     subject=sweep, detail="test")  # fmt: skip
    at = _page("pages/6_Report.py", report_sweep=sweep)
    decided = at.dataframe[0].value
    assert decided["decision"].tolist() == ["accept"]
    shown = "\n".join(df.value.to_csv() for df in at.dataframe)
    assert "ana@example.org" in shown and "ops@example.org" in shown


def test_methods_page_on_postgresql(pg_env):
    from fairprune.sweep.methods import methods_display, methods_table

    at = _page("pages/7_Methods.py")
    pg, sqlite = _stores(pg_env)
    want = methods_display(methods_table(sqlite, pg_env["sweep_id"]))
    assert methods_display(methods_table(pg, pg_env["sweep_id"])).to_dict("records") == (
        want.to_dict("records")
    )
    assert at.dataframe[0].value.to_dict("records") == want.to_dict("records")


def test_the_store_picker_takes_only_the_configured_server(pg_env):
    from fairprune.app import ui

    shown = paths.display_location(pg_env["results"])
    at = _page("pages/4_Sparsity_sweep.py")
    assert at.text_input(key="ui_results").value == shown  # a password never reaches a page
    other = "postgresql://intruder:pw@10.0.0.1/other"
    at.text_input(key="ui_results").input(other).run()
    assert at.sidebar.error[0].value == ui.ERR_STORE_URL.format(
        url="postgresql://intruder:***@10.0.0.1/other"
    )
    assert at.session_state["fp_results_path"] == pg_env["results"]  # still the configured one
    at.text_input(key="ui_results").input(shown).run()
    assert not at.sidebar.error and not at.exception
    assert at.session_state["fp_results_path"] == pg_env["results"]
