"""Streamlit glue shared by the pages: page set-up, cached loaders, the error boundary.

Models come through ``st.cache_resource`` and are shared by every session, so callers must
``copy.deepcopy`` before changing one. Tables come through ``st.cache_data`` keyed by the results
store's version (its files' size and mtime), so a page never shows a stale or half-written table.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from fairprune import paths
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


def results_path() -> Path:
    """The results store this session looks at: the sidebar's choice, else the configured one."""
    chosen = st.session_state.get("fp_results_path")
    return Path(chosen) if chosen else paths.results_path()


def _store_picker() -> None:
    """Sidebar boxes to look at another model folder or results file (per session)."""
    with st.expander("Store locations"):
        m = st.text_input("Models folder", value=str(models_dir()), key="ui_models_dir").strip()
        r = st.text_input("Results file", value=str(results_path()), key="ui_results").strip()
        # the configured locations always work; another must lie under an allowed root (checked
        # first, so a visitor cannot even learn which folders exist elsewhere on the server)
        roots = ", ".join(str(p) for p in paths.allowed_roots())
        if m and Path(m).expanduser() != paths.models_dir() and not paths.is_allowed(m):
            st.error(ERR_NOT_ALLOWED.format(path=m, roots=roots))
        elif m and not Path(m).expanduser().is_dir():
            st.error(ERR_NO_MODELS_DIR.format(path=m))
        elif m:
            st.session_state["fp_models_dir"] = str(Path(m).expanduser())
        if r and Path(r).expanduser() != paths.results_path() and not paths.is_allowed(r):
            st.error(ERR_NOT_ALLOWED.format(path=r, roots=roots))
        elif r and not Path(r).expanduser().parent.is_dir():
            st.error(ERR_NO_RESULTS_DIR.format(path=Path(r).parent))
        elif r:
            st.session_state["fp_results_path"] = str(Path(r).expanduser())


def setup_page(title: str, icon: str = "✂️") -> None:
    """Page config, styles and the sidebar's store locations."""
    st.set_page_config(page_title=f"{title} · fairprune", page_icon=icon, layout="wide")
    st.markdown(CSS, unsafe_allow_html=True)
    with st.sidebar:
        _store_picker()
        st.caption(f"Models: `{models_dir()}`")
        st.caption(f"Results: `{results_path()}`")


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


def store_version() -> str:
    """Changes whenever the results database (or its WAL) is written."""
    base = results_path()
    parts = []
    for p in (base, Path(f"{base}-wal")):
        try:
            s = p.stat()
        except FileNotFoundError:  # SQLite removes the WAL when its last connection closes
            continue
        parts.append(f"{s.st_size}:{s.st_mtime_ns}")
    return "|".join(parts)


def results_store():
    """The results store at the configured path."""
    from fairprune.sweep.results import ResultsStore

    return ResultsStore(results_path())


@st.cache_data(show_spinner=False, max_entries=32)
def _long(path: str, version: str, sweep_id: str | None) -> pd.DataFrame:
    from fairprune.sweep.results import ResultsStore

    return ResultsStore(path).export_long(sweep_id)


@st.cache_data(show_spinner=False, max_entries=32)
def _cells(path: str, version: str, sweep_id: str | None) -> pd.DataFrame:
    from fairprune.sweep.results import ResultsStore

    return ResultsStore(path).cells(sweep_id)


@st.cache_data(show_spinner=False, max_entries=8)
def _sweeps(path: str, version: str) -> pd.DataFrame:
    from fairprune.sweep.results import ResultsStore

    return ResultsStore(path).sweeps()


def long_table(sweep_id: str | None = None) -> pd.DataFrame:
    """The store's long table (cached until the store changes)."""
    results_store()  # creates the schema on first use
    return _long(str(results_path()), store_version(), sweep_id)


def cells_table(sweep_id: str | None = None) -> pd.DataFrame:
    """The store's cells table (cached until the store changes)."""
    results_store()
    return _cells(str(results_path()), store_version(), sweep_id)


def sweeps_table() -> pd.DataFrame:
    """The store's sweeps (cached until the store changes)."""
    results_store()
    return _sweeps(str(results_path()), store_version())


def pick_sweep(key: str, label: str = "Sweep") -> str | None:
    """A select box over the store's sweeps (newest first); None when the store is empty."""
    sweeps = sweeps_table()
    sweeps = sweeps[sweeps["cells"] > 0]
    if sweeps.empty:
        return None
    sweeps = sweeps.iloc[::-1]
    labels = {
        row.sweep_id: f"{row.name or row.sweep_id} · {row.cells} models · {row.sweep_id}"
        for row in sweeps.itertuples()
    }
    return st.selectbox(label, list(labels), format_func=labels.get, key=key)


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _model(path: str, sha256: str):
    from fairprune.nets.imports import load_model

    return load_model(path)


def load_model_cached(path: str, sha256: str = ""):
    """(model, record), shared across sessions: deep-copy before pruning or training it."""
    return _model(path, sha256)


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def _dataset(name: str, root: str | None, csv: str | None, options_json: str):
    from fairprune.data import load_dataset

    return load_dataset(name, root, csv=csv, **json.loads(options_json))


def dataset(
    name: str, root: str | None = None, csv: str | None = None, options: dict | None = None
):
    """A dataset bundle, loaded once per process; its folder and CSV must be allowed."""
    for path in (root, csv):
        if path:
            check_allowed(path)
    return _dataset(name, root or None, csv or None, json.dumps(options or {}, sort_keys=True))


def current_dataset_choice() -> tuple[str, str | None, str | None, dict]:
    """The dataset chosen on the Dataset page (the demo until then)."""
    return st.session_state.get("fp_dataset_choice", ("synthderm", None, None, {}))


def current_dataset():
    """The chosen dataset's bundle."""
    name, root, csv, options = current_dataset_choice()
    return dataset(name, root, csv, options)


@st.cache_resource(show_spinner="Running the model on the dataset…", max_entries=64)
def _predictions(path: str, sha256: str, name: str, root, csv, options_json: str, split: str):
    from fairprune.evaluate import predict

    model, _ = _model(path, sha256)
    bundle = _dataset(name, root, csv, options_json)
    return predict(
        model,
        bundle.splits[split],
        model_hash=sha256,
        split_key=f"{bundle.fingerprint}-{split}",
        cache_dir=paths.data_dir() / "predictions",
    )


def predictions(record, split: str = "test"):
    """Predictions of a stored model on the current dataset's split, computed once."""
    name, root, csv, options = current_dataset_choice()
    return _predictions(
        record.path, record.sha256, name, root or None, csv or None,
        json.dumps(options or {}, sort_keys=True), split,
    )  # fmt: skip


def model_records(dataset_name: str | None = None):
    """Checkpoints in the model store, optionally only those made for one dataset."""
    from fairprune.nets.checkpoint import list_models

    records = list_models(models_dir())
    if dataset_name:
        records = [r for r in records if r.dataset == dataset_name]
    return records


def synthetic_note(bundle) -> None:
    """Say plainly when the data is synthetic."""
    if getattr(bundle, "synthetic", False):
        st.markdown(
            f"<p class='fp-synthetic'>⚠️ {bundle.title}: synthetic data generated on the spot — "
            "no real patients.</p>",
            unsafe_allow_html=True,
        )
