"""Sign-in end to end: the dashboard with ``[auth]`` set, a local OpenID provider, Chromium.

The provider (oidc-provider-mock, on a thread of this process) knows four people; the roles file
(tests/app/signin/roles.toml) makes one a viewer, one a reviewer and one an operator, and the
fourth holds no role. Each person signs in through the provider's own authorization form in a
browser context of their own. The server reads a copy of the shared fixture store, so the
decision recorded here lands in no other test's store. Timeouts are generous: the machine is
shared, and the first page a server draws imports torch and loads the fixture's models.
"""

import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.app.signin import harness
from tests.app.test_browser import ARGS, ARTIFACTS, CHROMIUM, _serve

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

FIRST_DRAW_MS = 180_000  # the server's first page (imports, models, the store's caches)
DRAW_MS = 90_000  # any later page or redirect on a loaded 2-core machine
NOTHING_DRAWN = (
    "[data-testid='stSidebarNav'], .js-plotly-plot, [data-testid='stDataFrame'], "
    "[data-testid='stDownloadButton'], [data-testid='stFormSubmitButton']"
)


def _copy_store(source, target: Path):
    """A copy of an SQLite store (a PostgreSQL URL is used as it is: its tests own it)."""
    if not isinstance(source, Path):
        return source
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


@pytest.fixture(scope="module")
def signin_env(demo_store, tmp_path_factory):
    """The provider, and the environment a dashboard server with sign-in on starts in."""
    folder = tmp_path_factory.mktemp("signin")
    results = _copy_store(demo_store["results"], folder / "results.sqlite")
    with harness.provider() as issuer, pytest.MonkeyPatch.context() as env:
        env.setenv("STREAMLIT_SECRETS_FILES", str(harness.write_secrets(folder, issuer)))
        env.setenv("FAIRPRUNE_ROLES", str(harness.ROLES_FILE))
        env.setenv("FAIRPRUNE_MODELS_DIR", str(demo_store["models"]))
        env.setenv("FAIRPRUNE_RESULTS", str(results))
        env.setenv("FAIRPRUNE_DATA_DIR", str(demo_store["data"]))
        yield SimpleNamespace(issuer=issuer, results=results)


def _app(url: str, signin_env) -> SimpleNamespace:
    # the browser visits the host the redirect URI names: the cookies are set there
    return SimpleNamespace(url=url.replace("127.0.0.1", "localhost"), issuer=signin_env.issuer,
                           results=signin_env.results)  # fmt: skip


@pytest.fixture(scope="module")
def signin_app(signin_env):
    """The dashboard with sign-in on: (url, the provider's issuer, the store it reads)."""
    with _serve() as url:
        yield _app(url, signin_env)


@pytest.fixture
def forgetful_app(signin_env):
    """tests/app/signin/forgetful_page.py with sign-in on (its log: streamlit-pause-0.log)."""
    with _serve(harness.FORGETFUL_PAGE, pause="0") as url:
        yield _app(url, signin_env)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _new_page(browser):
    """A page in a browser context of its own (its own cookies), the websocket spy installed."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(harness.SPY)
    return context.new_page()


def _store(app):
    from fairprune.sweep.results import ResultsStore

    return ResultsStore(app.results)


def _sign_in(browser, app, email: str):
    """Sign ``email`` in through the provider's authorization form; the page is back on the
    dashboard (its home page) when this returns."""
    page = _new_page(browser)
    page.goto(f"{app.url}/")
    page.locator(".st-key-auth_login").get_by_role("button", name="Sign in").click(
        timeout=FIRST_DRAW_MS
    )
    page.wait_for_url(f"{app.issuer}/oauth2/authorize?**", timeout=DRAW_MS)
    page.get_by_role("button", name=email, exact=True).click()  # a predefined user
    page.wait_for_url(f"{app.url}/**", timeout=DRAW_MS)
    return page


def _identity_line(page) -> str:
    """The sidebar's ``Signed in as ...`` line, once drawn."""
    line = page.locator("[data-testid='stSidebar']").get_by_text(re.compile(r"^Signed in as "))
    line.wait_for(timeout=FIRST_DRAW_MS)
    return line.inner_text().strip()


def _open(page, app, path: str, drawn: str) -> None:
    """Open a page by its URL; return once its script run has finished and ``drawn`` (an element
    it draws) is on the page."""
    page.goto(f"{app.url}/{path}")
    harness.wait_run(page, FIRST_DRAW_MS / 1000)
    page.wait_for_selector(drawn, timeout=DRAW_MS)


def _click(locator) -> None:
    """Click, and wait until the script run the click asks for has finished."""
    harness.forget_received(locator.page)
    locator.click()
    harness.wait_run(locator.page, DRAW_MS / 1000)


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"signin-{name}.png"), full_page=True)


def _logout_id(page) -> str:
    """The Log out button's id as the harness computes it, checked against the ids the server
    drew on the page (it is drawn by the page or by app.py: one of the two hashes)."""
    ids = {harness.button_id("auth_logout", h) for h in harness.script_hashes(page)}
    (drawn,) = ids & harness.received_widget_ids(page)
    return drawn


def test_signed_out_pages_show_only_the_sign_in_button(signin_app, chromium):
    page = _new_page(chromium)
    for path in ("", "Report", "Sparsity_sweep"):
        _open(page, signin_app, path, ".st-key-auth_login")
        assert page.get_by_role("button", name="Sign in").count() == 1, path
        assert page.locator("[data-testid='stButton']").count() == 1, path
        assert page.locator(NOTHING_DRAWN).count() == 0, path
        assert page.get_by_text(re.compile("^Signed in as|local mode")).count() == 0, path
    _shot(page, "signed-out")
    page.context.close()


def test_someone_without_a_role_gets_one_line(signin_app, chromium):
    from fairprune.auth import ERR_NO_ROLE

    email = "nobody@elsewhere.org"
    page = _sign_in(chromium, signin_app, email)
    line = page.get_by_text(ERR_NO_ROLE.format(email=email), exact=True)
    harness.wait_run(page, FIRST_DRAW_MS / 1000)
    line.wait_for(timeout=DRAW_MS)
    assert page.locator(NOTHING_DRAWN).count() == 0
    assert page.get_by_role("button", name=re.compile("Run sweep|Record decision")).count() == 0
    _shot(page, "no-role")
    page.context.close()


def test_a_viewer_reads_but_cannot_run_a_sweep_or_decide(signin_app, chromium):
    store = _store(signin_app)
    sweeps, actions, decisions = len(store.sweeps()), len(store.actions()), len(store.decisions())
    page = _sign_in(chromium, signin_app, "viewer@example.org")
    assert _identity_line(page) == "Signed in as Vera Viewer (viewer@example.org) · viewer"

    _open(page, signin_app, "Sparsity_sweep", ".js-plotly-plot")
    if page.locator(".st-key-sweep_new").count():  # the form, where a viewer may see it
        _click(page.locator(".st-key-sweep_new").get_by_text("New sweep"))
    assert page.locator(".st-key-sweep_run").count() == 0
    assert page.get_by_role("button", name="Run sweep").count() == 0
    _shot(page, "viewer-sweep")

    # A forged click: the viewer's own websocket sends the page's last rerun request with the
    # sweep_run button pressed, the message a click sends. Streamlit hands a pressed button to a
    # run only when the script draws that button, which it does not for a viewer: nothing may
    # start. The ids are Streamlit's own for those keys on this page (checked below on the Log
    # out button: its computed id is one the server drew, and forging its click logs out).
    _logout_id(page)
    sweep_run = harness.button_id("sweep_run", harness.script_hashes(page)[1])
    harness.send_trigger(page, sweep_run)  # and waits for the run it asks for to end
    assert page.get_by_text("Running sweep").count() == 0
    assert len(store.sweeps()) == sweeps and len(store.actions()) == actions

    _open(page, signin_app, "Report", "[data-testid='stDownloadButton']")
    assert page.locator(".st-key-report_decision_submit").count() == 0
    assert page.get_by_role("button", name="Record decision").count() == 0
    page_hash = harness.script_hashes(page)[1]
    forged = harness.button_id("report_decision_submit", page_hash, kind="form_submit_button")
    harness.send_trigger(page, forged)
    assert len(store.decisions()) == decisions

    # the forgery works on a button the page did draw: the viewer is sent off to log out
    harness.send_trigger(page, _logout_id(page), wait=False)
    page.wait_for_url(f"{signin_app.issuer}/oauth2/end_session?**", timeout=DRAW_MS)
    page.context.close()


def test_a_reviewer_signs_a_decision_and_logs_out(signin_app, chromium):
    store = _store(signin_app)
    before = len(store.decisions())
    page = _sign_in(chromium, signin_app, "reviewer@example.org")
    assert _identity_line(page) == "Signed in as Rhea Reviewer (reviewer@example.org) · reviewer"

    _open(page, signin_app, "Report", "[data-testid='stDownloadButton']")
    assert page.get_by_label("Reviewer").count() == 0  # the identity signs, not a text box
    page.get_by_text("needs work", exact=True).first.click()
    page.locator(".st-key-report_decision_submit").get_by_role("button").click()
    page.get_by_text(re.compile(r"^Recorded: needs work on ")).wait_for(timeout=DRAW_MS)
    rows = store.decisions()
    assert len(rows) == before + 1
    row = rows.sort_values("id").iloc[-1]
    assert (row["decision"], row["reviewer_email"]) == ("needs work", "reviewer@example.org")
    assert "Rhea Reviewer" in row["reviewer"]
    _shot(page, "reviewer-decision")

    # Log out: Streamlit drops its cookie and sends the browser to the provider's end of session
    page.locator(".st-key-auth_logout").get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{signin_app.issuer}/oauth2/end_session?**", timeout=DRAW_MS)
    page.get_by_role("button", name="End session").click()
    page.locator(".st-key-auth_login").wait_for(timeout=DRAW_MS)
    assert page.url.startswith(signin_app.url)
    assert not any(c["name"].startswith("_streamlit_user") for c in page.context.cookies())
    page.reload()  # no silent sign-in: the identity cookie is gone
    harness.wait_run(page, DRAW_MS / 1000)
    page.locator(".st-key-auth_login").wait_for(timeout=DRAW_MS)
    assert page.get_by_text(re.compile("^Signed in as")).count() == 0
    page.context.close()


def test_a_page_that_forgets_to_hide_the_buttons_still_refuses_a_viewer(forgetful_app, chromium):
    from fairprune.auth import ERR_FORBIDDEN

    store = _store(forgetful_app)
    counts = len(store.sweeps()), len(store.actions()), len(store.decisions())
    page = _sign_in(chromium, forgetful_app, "viewer@example.org")
    page.get_by_text("Signed in as Vera Viewer (viewer@example.org) · viewer").wait_for(
        timeout=FIRST_DRAW_MS
    )
    for label, needed in (("Run sweep", "operator"), ("Record decision", "reviewer")):
        _click(page.get_by_role("button", name=label))
        line = ERR_FORBIDDEN.format(roles="viewer", what="WHAT", needed=needed)
        refusal = re.escape(line).replace("WHAT", ".+")  # what is refused: the backend's words
        alert = page.locator("[data-testid='stAlert']")
        assert re.fullmatch(refusal, alert.inner_text().strip()), alert.inner_text()
        _shot(page, f"forgetful-{needed}")
    assert (len(store.sweeps()), len(store.actions()), len(store.decisions())) == counts
    page.context.close()


# --- the team deployment end to end: sign-in, a PostgreSQL store, a CLI sweep killed and resumed


NO_DECISIONS = "No review decisions yet."


@pytest.fixture
def team_app(signin_env, pg_url, tmp_path, monkeypatch):
    """The dashboard with sign-in on, reading a fresh PostgreSQL database (empty until a sweep
    from the command line writes to it), its models folder the sweep's."""
    monkeypatch.setenv("FAIRPRUNE_RESULTS", pg_url)
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(tmp_path / "models"))
    with _serve() as url:
        app = _app(url, signin_env)
        yield SimpleNamespace(**{**vars(app), "results": pg_url, "models": tmp_path / "models"})


def test_a_cli_sweep_into_postgresql_killed_and_resumed_while_signed_in_people_read_and_decide(
    team_app, chromium, demo_store, tmp_path
):
    """What a review board's server sees: a viewer and a reviewer signed in, a sweep driven from
    the command line into the shared PostgreSQL store, SIGKILLed mid-cell and resumed; the pages
    read the store throughout, the reviewer's decision is signed, no cell is lost or doubled."""
    import pandas as pd

    from fairprune.sweep.results import ResultsStore
    from tests.sweep.test_pg_integration import _running, _sigkill, _sweep_args, _wait_cells

    store = ResultsStore(team_app.results)
    viewer = _sign_in(chromium, team_app, "viewer@example.org")
    reviewer = _sign_in(chromium, team_app, "reviewer@example.org")
    args = _sweep_args(team_app.results, demo_store, team_app.models,
                       levels=("0.5", "0.75", "0.9"), name="team")  # fmt: skip

    with _running(args, tmp_path / "run1.log") as proc:
        _wait_cells(store, proc, 1, tmp_path / "run1.log")  # the dense cell
        _open(viewer, team_app, "Report", "[data-testid='stDownloadButton']")  # mid-sweep
        assert viewer.locator("[data-testid='stException']").count() == 0
        assert viewer.get_by_text(NO_DECISIONS, exact=True).count() == 1
        _wait_cells(store, proc, 2, tmp_path / "run1.log")  # and the first pruned one
        _sigkill(proc)  # the next unit is under way: mid-cell
    before = store.cells().set_index("cell_key")
    assert 2 <= len(before) < 4

    with _running(args, tmp_path / "run2.log") as proc:  # resumed while the reviewer decides
        _open(reviewer, team_app, "Report", "[data-testid='stDownloadButton']")
        reviewer.get_by_text("needs work", exact=True).first.click()
        reviewer.locator(".st-key-report_decision_submit").get_by_role("button").click()
        reviewer.get_by_text(re.compile(r"^Recorded: needs work on ")).wait_for(timeout=DRAW_MS)
        assert proc.wait(300) == 0, (tmp_path / "run2.log").read_text()[-2000:]
    after = store.cells()
    assert len(after) == 4 and after["cell_key"].is_unique  # dense + three levels, each once
    kept = after.set_index("cell_key").loc[before.index]
    pd.testing.assert_frame_equal(kept, before, check_like=True)  # the rows written before
    (sweep_id,) = set(after["sweep_id"])
    decisions = store.decisions()
    assert len(decisions) == 1
    row = decisions.iloc[0]
    assert (row["subject"], row["decision"], row["reviewer_email"]) == (
        sweep_id,
        "needs work",
        "reviewer@example.org",
    )
    assert list(store.actions()["action"]) == ["sweep started", "sweep started"]

    # the finished sweep on the viewer's pages, the signed decision on the Report
    _open(viewer, team_app, "Sparsity_sweep", ".js-plotly-plot")
    _open(viewer, team_app, "Report", "[data-testid='stDownloadButton']")
    assert viewer.get_by_text(NO_DECISIONS, exact=True).count() == 0  # the table is drawn
    for page in (viewer, reviewer):
        assert page.locator("[data-testid='stException']").count() == 0
        page.context.close()
