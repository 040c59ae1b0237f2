"""Sign-in and roles on the pages (AppTest) and in the backend the pages call.

AppTest (Streamlit 1.67) simulates a signed-in person: ``at.user`` is what the run reads as
``st.user`` (``is_logged_in``, ``name``, ``email``, ...) and ``at.secrets`` replaces
``st.secrets`` for the run, so an ``[auth]`` section there turns sign-in on. Outside a script run
the backend's own refusal is tested with ``identity.current`` replaced by a fixed identity (the
forged request: what a page that forgot to hide a button would call).
"""

import re
import shutil
import sqlite3

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fairprune import auth
from fairprune.app import api, demo_job, identity, jobs, review
from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.errors import FairpruneError
from fairprune.nets.checkpoint import list_models
from fairprune.sweep.results import ResultsStore
from tests.conftest import ROOT

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "not-a-secret",
    "client_id": "fairprune",
    "client_secret": "not-a-secret",
    "server_metadata_url": "http://localhost:1/.well-known/openid-configuration",
}
ROLES = {
    "viewer": ["viewer@example.org"],
    "reviewer": ["reviewer@example.org"],
    "operator": ["operator@example.org"],
}
PEOPLE = {
    "viewer": ("Vera Viewer", "viewer@example.org"),
    "reviewer": ("Rhea Reviewer", "reviewer@example.org"),
    "operator": ("Otto Operator", "operator@example.org"),
    "nobody": ("No Body", "nobody@elsewhere.org"),
}
VIEWER = auth.Identity("Vera Viewer", "viewer@example.org", frozenset({"viewer"}))
OPERATOR = auth.Identity("Otto Operator", "operator@example.org", frozenset({"operator"}))


@pytest.fixture(autouse=True)
def _no_roles_env(monkeypatch):
    monkeypatch.delenv(identity.ROLES_ENV, raising=False)


@pytest.fixture
def own_store(store_env, tmp_path, monkeypatch):
    """Private copies of the fixture's results store and models (these tests write to them)."""
    results, models = tmp_path / "results.sqlite", tmp_path / "models"
    with sqlite3.connect(store_env["results"]) as src, sqlite3.connect(results) as dst:
        src.backup(dst)
    shutil.copytree(store_env["models"], models)
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(results))
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(models))
    return {**store_env, "results": results, "models": models}


def _run(page: str, who: str | None, timeout: float = 180, **state) -> AppTest:
    """``page`` with sign-in on, as ``who`` (a key of PEOPLE; None: signed out)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / page), default_timeout=timeout)
    at.secrets = {"auth": dict(AUTH), "fairprune": {"roles": dict(ROLES)}}
    if who is None:
        at.user = {"is_logged_in": False}
    else:
        name, email = PEOPLE[who]
        at.user = {"is_logged_in": True, "name": name, "email": email, "email_verified": True}
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _line(at) -> str:
    """The sidebar's identity line, as the browser shows it (Markdown escapes removed)."""
    return at.sidebar.caption[0].value.replace("\\", "")


def test_signed_out_every_page_is_only_a_sign_in_button(empty_env):
    for page in ("app.py", "pages/6_Report.py", "pages/4_Sparsity_sweep.py"):
        at = _run(page, None)
        assert [b.key for b in at.button] == ["auth_login"], page
        assert at.button(key="auth_login").label == "Sign in"
        assert not at.title and not at.sidebar.caption and not at.error, page


def test_someone_without_a_role_gets_one_line_and_log_out(empty_env):
    at = _run("app.py", "nobody")
    assert [e.value for e in at.error] == [auth.ERR_NO_ROLE.format(email="nobody@elsewhere.org")]
    assert [b.key for b in at.button] == ["auth_logout"]
    assert not at.title


def test_a_bad_roles_file_is_one_line_for_everyone(empty_env, monkeypatch, tmp_path):
    bad = tmp_path / "roles.toml"
    bad.write_text("[roles]\nadmin = ['a@b.org']\n")
    monkeypatch.setenv(identity.ROLES_ENV, str(bad))
    at = _run("app.py", "operator")
    assert [e.value for e in at.error] == [
        auth.ERR_BAD_ROLES_FILE.format(path=bad, reason="unknown role 'admin'")
    ]
    assert not at.button and not at.title


def test_a_viewer_reads_but_sees_no_sweep_form_decision_form_or_model_buttons(store_env):
    sweep = store_env["sweep_id"]
    at = _run("pages/4_Sparsity_sweep.py", "viewer")
    assert _line(at) == "Signed in as Vera Viewer (viewer@example.org) · viewer"
    assert [b.key for b in at.sidebar.button] == ["auth_logout"]
    assert not [t for t in at.toggle if t.key == "sweep_new"]  # no form to open
    assert not [b for b in at.button if b.key == "sweep_run"]
    assert not at.sidebar.expander  # no store picker
    assert at.get("plotly_chart")  # the results are there to read

    at = _run("pages/6_Report.py", "viewer", report_sweep=sweep)
    assert not [b for b in at.button if b.key == "report_decision_submit"]
    assert review.READ_ONLY.format(roles="viewer") in [c.value for c in at.caption]
    assert len(at.get("download_button")) == 3  # a viewer downloads the reports

    at = _run("pages/1_Models.py", "viewer")
    assert not at.get("file_uploader") and not [b for b in at.button if b.key == "models_remove"]
    assert "Adding and removing models is for operators; your role reads the store." in [
        c.value for c in at.caption
    ]


def test_local_mode_says_so_and_keeps_the_reviewer_box(store_env):
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages/6_Report.py"), default_timeout=180)
    at.session_state["report_sweep"] = store_env["sweep_id"]
    at.run()
    assert not at.exception
    assert at.sidebar.caption[0].value == identity.LOCAL_MODE
    assert at.text_input(key="report_reviewer").label == "Reviewer"
    assert at.sidebar.expander  # the store picker: the local user operates


def test_a_reviewers_decision_is_signed_with_name_and_email(own_store):
    sweep = own_store["sweep_id"]
    at = _run("pages/6_Report.py", "reviewer", report_sweep=sweep)
    assert not [t for t in at.text_input if t.key == "report_reviewer"]  # the identity signs
    at.radio(key="report_decision").set_value("needs work")
    at.button(key="report_decision_submit").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Recorded: needs work on ")
    # the copy may hold decisions other tests recorded on the shared store: ours is the newest
    row = ResultsStore(own_store["results"]).decisions().to_dict("records")[-1]
    assert (row["decision"], row["reviewer"], row["reviewer_email"]) == (
        "needs work", "Rhea Reviewer", "reviewer@example.org")  # fmt: skip
    shown = at.dataframe[0].value  # newest first
    assert shown[["decision", "reviewer", "email"]].values.tolist()[0] == [
        "needs work",
        "Rhea Reviewer",
        "reviewer@example.org",
    ]


def test_forged_requests_from_a_viewer_are_refused(own_store, monkeypatch):
    monkeypatch.setattr(identity, "current", lambda: VIEWER)
    store = ResultsStore(own_store["results"])
    # other tests add models to the shared store's folder and log it: count from here
    decisions, actions = len(store.decisions()), len(store.actions())
    models = len(list_models(own_store["models"]))
    config = SweepConfig(dataset="synthderm", dense_model=str(own_store["dense"].path),
                         criteria=("l1",), losses=("ce",), reductions=(0.5,))  # fmt: skip

    def refused(what: str, needed: str):
        message = auth.ERR_FORBIDDEN.format(roles="viewer", what=what, needed=needed)
        return pytest.raises(FairpruneError, match=f"^{re.escape(message)}$")

    with refused("start a sweep", "operator"):
        jobs.start_sweep(config, results_path=own_store["results"], models_dir=own_store["models"])
    with refused("run the demo", "operator"):
        demo_job.start_demo(results_path=own_store["results"], models_dir=own_store["models"])
    with refused("cancel a sweep", "operator"):
        jobs.SweepJob(key="sw-x", config=None).cancel()
    with refused("add a model", "operator"):
        api.import_upload(b"", "x.pt", own_store["models"], results=own_store["results"])
    with refused("remove a model", "operator"):
        api.remove_model(own_store["models"], own_store["dense"].name,
                         results=own_store["results"])  # fmt: skip
    with refused("record a review decision", "reviewer"):
        review.record_decision(subject=own_store["sweep_id"], kind="sweep", decision="accept",
                               reviewer="Mallory")  # fmt: skip
    assert (len(store.decisions()), len(store.actions())) == (decisions, actions)
    assert len(list_models(own_store["models"])) == models


def test_with_sign_in_on_nobody_acts_outside_a_session(own_store, monkeypatch):
    # a background thread, a test or the CLI importing the app: no session, so no identity
    monkeypatch.setattr(identity, "_secrets", lambda: {"auth": AUTH})
    assert identity.current() == auth.NOBODY
    with pytest.raises(FairpruneError, match=r"^your role \(none\) may not record"):
        review.record_decision(subject=own_store["sweep_id"], kind="sweep", decision="accept",
                               reviewer="x")  # fmt: skip
    monkeypatch.setattr(identity, "_secrets", lambda: {})
    assert identity.current() is auth.LOCAL_IDENTITY


def test_an_operators_sweep_start_and_cancel_are_in_the_action_log(own_store, monkeypatch):
    monkeypatch.setattr(identity, "current", lambda: OPERATOR)
    before = len(ResultsStore(own_store["results"]).actions())
    config = SweepConfig(
        dataset="synthderm", dataset_options={"limit": 600, "test_limit": 300},
        dense_model=str(own_store["dense"].path), criteria=("l1",), losses=("ce",),
        reductions=(0.75,), finetune=FinetuneConfig(epochs=1), n_boot=0, name="roles",
    )  # fmt: skip
    job = jobs.start_sweep(config, results_path=own_store["results"],
                           models_dir=own_store["models"])  # fmt: skip
    job.cancel()
    job.wait(120)
    actions = ResultsStore(own_store["results"]).actions().iloc[before:]
    assert actions[["action", "subject", "actor", "actor_email"]].values.tolist() == [
        ["sweep started", job.key, "Otto Operator", "operator@example.org"],
        ["sweep cancelled", job.key, "Otto Operator", "operator@example.org"],
    ]
    assert actions["detail"].iloc[0].startswith("1 cells (0 stored earlier) on this machine")


def test_an_operator_removes_a_model_after_confirming(own_store):
    name = own_store["dense"].name
    before = len(ResultsStore(own_store["results"]).actions())
    at = _run("pages/1_Models.py", "operator")
    assert [b.key for b in at.sidebar.button] == ["auth_logout"] and at.sidebar.expander
    at.selectbox(key="models_remove_pick").set_value(name).run()
    assert at.button(key="models_remove").disabled  # not before the confirmation
    at.checkbox(key="models_remove_confirm").check().run()
    at.button(key="models_remove").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == (f"Removed `{name}` ({name}.safetensors, {name}.json).")
    assert name not in {r.name for r in list_models(own_store["models"])}
    (row,) = ResultsStore(own_store["results"]).actions().iloc[before:].to_dict("records")
    assert (row["action"], row["subject"], row["actor"]) == ("model removed", name,
                                                             "Otto Operator")  # fmt: skip
    # the Report page lists it, newest first
    at = _run("pages/6_Report.py", "viewer", report_sweep=own_store["sweep_id"])
    (actions,) = [d.value for d in at.dataframe if "action" in d.value.columns]
    assert len(actions) == before + 1
    assert actions[["action", "subject", "by"]].iloc[0].tolist() == [
        "model removed",
        name,
        "Otto Operator",
    ]


def test_a_model_outside_the_store_listing_is_never_removed(own_store, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x")
    for name in ("../elsewhere", "nope", str(outside)):
        with pytest.raises(FairpruneError) as err:
            api.remove_model(own_store["models"], name, results=own_store["results"])
        message = api.ERR_NO_SUCH_MODEL.format(name=name, store=own_store["models"])
        assert str(err.value) == message
    assert outside.exists()
