"""Streamlit glue every page shares: page set-up, the sidebar's store locations, the error
boundary (``run_page``, ``guard``), the first-view pause, the group legend.

The cached tables of the results store are in ``tables``, cached models, datasets and predictions
in ``loaders``, review decisions in ``review``. Nothing here imports torch or the results store,
so a page draws its first elements before the backend is loaded.
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from fairprune import paths
from fairprune.app import identity
from fairprune.errors import FairpruneError

CSS = """
<style>
html, body, [class*="css"] { font-size: 18px; }
.fp-headline { font-size: 1.35rem; background: #fff7e0; border-left: 6px solid #E69F00;
               padding: .8rem 1rem; border-radius: 4px; margin: .5rem 0 1rem 0; }
.fp-synthetic { font-size: .95rem; color: #6b4e00; }
</style>
"""


log = logging.getLogger(__name__)


ERR_NO_MODELS_DIR = "No folder {path}: enter an existing models folder (or clear the box)."
ERR_NO_RESULTS_DIR = "No folder {path} for the results file: enter a path in an existing folder."
ERR_STORE_URL = (
    "{url} is not this dashboard's results store; a database server can only be the one it was "
    "started on (FAIRPRUNE_RESULTS): clear the box, or enter a results file."
)
ERR_NOT_ALLOWED = (
    "{path} is outside the folders this dashboard may read ({roots}); move the data there, or "
    "ask whoever runs the dashboard to add its folder to FAIRPRUNE_ALLOWED_ROOTS."
)
ERR_PAGE_FAILED = (
    "Something went wrong on this page ({kind}); the details are in the server log. "
    "Check the inputs above and try again."
)


def allowed_roots() -> list[Path]:
    """The folders this dashboard may read datasets and models from (resolved)."""
    return paths.allowed_roots()


def check_allowed(path: str | Path) -> Path:
    """``path`` if it lies (symlinks resolved) under an allowed root; else one clear error.

    The dashboard serves whoever opens it: it reads datasets and adds models only under the
    folders its operator allowed (``FAIRPRUNE_ALLOWED_ROOTS``, default ``data/`` and
    ``models/``).
    """
    if not paths.is_allowed(path):
        roots = ", ".join(str(r) for r in paths.allowed_roots())
        raise FairpruneError(ERR_NOT_ALLOWED.format(path=path, roots=roots))
    return Path(path)


def models_dir() -> Path:
    """The model store this session looks at: the sidebar's choice, else ``paths.models_dir()``."""
    chosen = st.session_state.get("fp_models_dir")
    return Path(chosen) if chosen else paths.models_dir()


def results_path() -> str | Path:
    """The results store this session looks at: the sidebar's choice, else the configured one
    (a PostgreSQL URL stays a str, a file is a ``Path``)."""
    chosen = st.session_state.get("fp_results_path")
    return paths.as_location(chosen) if chosen else paths.results_location()


def _store_picker() -> None:
    """Sidebar boxes to look at another model folder or results store (per session)."""
    with st.expander("Store locations"):
        m = st.text_input("Models folder", value=str(models_dir()), key="ui_models_dir").strip()
        r = st.text_input(
            "Results store", value=paths.display_location(results_path()), key="ui_results",
            help="an SQLite file, or the PostgreSQL store this dashboard was started on",
        ).strip()  # fmt: skip
        # the configured locations always work; another must lie under an allowed root (checked
        # first, so a visitor cannot even learn which folders exist elsewhere on the server)
        roots = ", ".join(str(p) for p in paths.allowed_roots())
        if m and Path(m).expanduser() != paths.models_dir() and not paths.is_allowed(m):
            st.error(ERR_NOT_ALLOWED.format(path=m, roots=roots))
        elif m and not Path(m).expanduser().is_dir():
            st.error(ERR_NO_MODELS_DIR.format(path=m))
        elif m:
            st.session_state["fp_models_dir"] = str(Path(m).expanduser())
        configured = paths.results_location()
        if not r:
            return
        if paths.is_store_url(r):
            # a database server only as configured (the box shows it with the password masked): a
            # visitor must not point the server at other databases, nor learn the password
            ok = paths.is_store_url(configured)
            if ok and r in (configured, paths.display_location(configured)):
                st.session_state["fp_results_path"] = configured
            else:
                st.error(ERR_STORE_URL.format(url=paths.display_location(r)))
        elif Path(r).expanduser() != configured and not paths.is_allowed(r):
            st.error(ERR_NOT_ALLOWED.format(path=r, roots=roots))
        elif not Path(r).expanduser().parent.is_dir():
            st.error(ERR_NO_RESULTS_DIR.format(path=Path(r).parent))
        else:
            st.session_state["fp_results_path"] = str(Path(r).expanduser())


def setup_page(title: str, icon: str = "✂️") -> None:
    """Page config, styles, the sign-in gate, the sidebar's identity and store locations."""
    st.set_page_config(page_title=f"{title} · fairprune", page_icon=icon, layout="wide")
    # a run that brings the session to this page (a new tab, or a switch from another page)
    st.session_state["_fp_arrived"] = st.session_state.get("_fp_page") != title
    st.session_state["_fp_page"] = title
    st.markdown(CSS, unsafe_allow_html=True)
    # app.py gates before a page runs; again here, for a page script run on its own
    identity.gate()
    with st.sidebar:
        identity.sidebar()
        if identity.may("operate"):  # pointing the dashboard at other stores is an operator's
            _store_picker()
        st.caption(f"Models: `{models_dir()}`")
        st.caption(f"Results: `{paths.display_location(results_path())}`")


# The browser builds every element a run has sent before it draws the first chart, and a new
# session's run sends the whole page at once: the server had sent the first chart 0.05-0.15 s
# into the run, and the browser drew it after the page's other elements. So the run that brings
# a session to a page pauses after the page's first chart (the Models page: its table) and the
# browser draws it while the rest waits. Measured side by side in new tabs (bench/pages.py, on
# 2 cores shared with the server): first chart 0.60-0.77x the time without the pause, the whole
# page 0.78-1.16x. Reruns on the same page (a widget, a landed cell) never pause.
# FAIRPRUNE_FIRST_VIEW_PAUSE: seconds (0 turns it off).
FIRST_VIEW_PAUSE_S = 0.3
_sleep = time.sleep


def first_view_pause() -> float:
    """Seconds the run that brings a session to a page pauses after its first chart."""
    from fairprune.utils import env_number

    seconds = env_number("FAIRPRUNE_FIRST_VIEW_PAUSE")
    return FIRST_VIEW_PAUSE_S if seconds is None else max(seconds, 0.0)


def pause_for_first_view() -> None:
    """Call right after a page's first chart: on the run that brought the session to this page
    (a new tab, or a switch from another page), pause so the browser draws that chart before
    the rest of the page arrives. Later calls in the run, and reruns, return at once."""
    if st.session_state.pop("_fp_arrived", False):
        _sleep(first_view_pause())


def group_legend(groups) -> None:
    """A row of colour chips: the colour each group has on every chart of the dashboard."""
    from fairprune.app.charts import group_color
    from fairprune.app.views import group_order

    groups = group_order(groups)
    chips = " ".join(
        f"<span style='display:inline-block;margin-right:1.2rem'><span style='display:inline-"
        f"block;width:1rem;height:1rem;border-radius:3px;vertical-align:middle;background:"
        f"{group_color(g, groups)}'></span> {html.escape(str(g))}</span>"
        for g in groups
    )
    st.markdown(f"<div class='fp-legend'>Groups: {chips}</div>", unsafe_allow_html=True)


@contextlib.contextmanager
def guard():
    """The pages' error boundary: one ``st.error`` line and the page ends; never a traceback.

    A ``FairpruneError`` shows its message (what to do). Anything else is a bug or an input
    nobody foresaw: the page says so in one line and the traceback goes to the server log only
    (it may name server paths). Streamlit's own ``st.stop``/``st.rerun`` pass through.
    """
    try:
        yield
    except FairpruneError as exc:
        st.error(str(exc))
        st.stop()
    except Exception as exc:
        log.exception("unexpected error on a dashboard page")
        st.error(ERR_PAGE_FAILED.format(kind=type(exc).__name__))
        st.stop()


def synthetic_note(bundle) -> None:
    """Say plainly when the data is synthetic."""
    if getattr(bundle, "synthetic", False):
        st.markdown(
            f"<p class='fp-synthetic'>⚠️ {bundle.title}: synthetic data generated on the spot — "
            "no real patients.</p>",
            unsafe_allow_html=True,
        )


def run_page(title: str, body: Callable[[], None], icon: str = "✂️") -> None:
    """Set up the page and run its ``body`` inside the error boundary (:func:`guard`).

    Every page is ``ui.run_page("Title", body)``: whatever ``body`` raises (a
    ``FairpruneError``, another ``ValueError``, a bug) ends the page with one ``st.error`` line
    instead of a traceback, and the elements drawn before it stay on screen.
    """
    setup_page(title, icon)
    with guard():
        body()
