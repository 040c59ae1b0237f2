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
import time
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


ERR_PICK_DECISION = "Choose a decision: accept, needs work or reject."


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
    # a run that brings the session to this page (a new tab, or a switch from another page)
    st.session_state["_fp_arrived"] = st.session_state.get("_fp_page") != title
    st.session_state["_fp_page"] = title
    st.markdown(CSS, unsafe_allow_html=True)
    with st.sidebar:
        _store_picker()
        st.caption(f"Models: `{models_dir()}`")
        st.caption(f"Results: `{results_path()}`")


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


def store_version(sweep_id: str | None = None) -> str:
    """Changes whenever a sweep or a cell is written to the results store (not on decisions);
    with ``sweep_id``, only when that sweep's own cells change."""
    return results_store().version(sweep_id)


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
    return _long(str(results_path()), store_version(sweep_id), sweep_id)


@st.cache_resource(show_spinner=False, max_entries=32)
def _sweep_chart(path: str, version: str, sweep_id: str | None, criterion, losses):
    from fairprune.app import charts

    long = _long(path, version, sweep_id)
    return charts.accuracy_vs_reduction(
        long, criterion=criterion, losses=None if losses is None else list(losses)
    )


def sweep_chart(sweep_id: str | None, criterion: str | None = None, losses=None):
    """``charts.accuracy_vs_reduction`` of a sweep's long table, built once per version of the
    sweep and shared by every session (plotly builds it in ~70 ms; the live panel of a running
    sweep redraws it every second). ``st.plotly_chart`` copies a figure before sending it, so
    the shared one is never changed."""
    results_store()
    losses = None if losses is None else tuple(losses)
    return _sweep_chart(str(results_path()), store_version(sweep_id), sweep_id, criterion, losses)


def cells_table(sweep_id: str | None = None) -> pd.DataFrame:
    """The store's cells table (cached until the store changes)."""
    results_store()
    return _cells(str(results_path()), store_version(sweep_id), sweep_id)


def sweeps_table() -> pd.DataFrame:
    """The store's sweeps (cached until the store changes)."""
    results_store()
    return _sweeps(str(results_path()), store_version())


SESSION_SWEEP = "fp_sweep"
"""Session state: the sweep this session looks at, carried from page to page."""


def pick_sweep(key: str, label: str = "Sweep") -> str | None:
    """A select box over the store's sweeps (newest first); None when the store is empty.

    It starts on the sweep this session chose last, on any page, so moving between pages keeps
    the sweep in view. A session that has not chosen one starts on the newest sweep that no job
    is still running: a sweep another session has just started is listed, not shown unasked.
    """
    from fairprune.app import jobs

    sweeps = sweeps_table()
    sweeps = sweeps[sweeps["cells"] > 0]
    if sweeps.empty:
        return None
    sweeps = sweeps.iloc[::-1]
    labels = {
        row.sweep_id: f"{row.name or row.sweep_id} · {row.cells} models · {row.sweep_id}"
        for row in sweeps.itertuples()
    }
    if st.session_state.get(key) not in labels:
        running = {job.key for job in jobs.running_jobs()}
        idle = [s for s in labels if s not in running]
        chosen = st.session_state.get(SESSION_SWEEP)
        st.session_state[key] = chosen if chosen in labels else (idle or list(labels))[0]
    picked = st.selectbox(label, list(labels), format_func=labels.get, key=key)
    st.session_state[SESSION_SWEEP] = picked
    return picked


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _model(path: str, sha256: str):
    from fairprune.nets.onnx_io import load_for_audit

    return load_for_audit(path)  # ours, or an .onnx classifier (onnxruntime, audit only)


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


@st.cache_data(show_spinner=False, max_entries=256)
def _stored_cells(path: str, version: str, sha256: str, split_key: str) -> list:
    """[(cell key, the bootstrap resamples its sweep used, or None)] of the model's stored cells
    on ``split_key``, newest first (empty when the model is no stored cell there)."""
    from fairprune.sweep.results import ResultsStore

    store = ResultsStore(path)
    found = []
    for key in store.cells_of_model(sha256, split_key):
        n_boot = store.cell_config(key).get("sweep", {}).get("n_boot")
        ok = isinstance(n_boot, int) and not isinstance(n_boot, bool)
        found.append((key, int(n_boot) if ok else None))
    return found


@st.cache_data(show_spinner=False, max_entries=256)
def _stored(path: str, version: str, sha256: str, split_key: str, n_boot: int | None):
    """(StoredPredictions, per-group table or None) of the model's stored cells, or None: the
    table of the newest cell audited with ``n_boot`` resamples, if any."""
    from fairprune.sweep.results import ResultsStore

    found = _stored_cells(path, version, sha256, split_key)
    if not found:
        return None
    same = [key for key, boot in found if n_boot is not None and boot == n_boot]
    key = same[0] if same else found[0][0]  # one model, one split: the same predictions
    store = ResultsStore(path)
    table = store.cell_groups(key) if same else None  # the sweep's own audit, intervals included
    return store.predictions([key])[key], table


def stored_n_boots(record, bundle) -> list[int]:
    """The bootstrap resamples of the per-group tables stored for this model (one per sweep it
    is a cell of, newest first; empty: no stored cell). The Audit page starts from one every
    chosen model has, so it reads those tables instead of running the bootstrap again."""
    found = _stored_cells(
        str(results_path()), store_version(), record.sha256, f"{bundle.fingerprint}-test"
    )
    return list(dict.fromkeys(boot for _, boot in found if boot))


def stored_predictions(sha256: str, split_key: str):
    """The per-sample predictions a sweep stored for this model on ``split_key``, or None."""
    found = _stored(str(results_path()), store_version(), sha256, split_key, None)
    return None if found is None else found[0]


def predictions(record, split: str = "test"):
    """Predictions of a model on the current dataset's split: read from the results store when
    the model is a stored sweep cell on these very rows, else computed once (and cached)."""
    name, root, csv, options = current_dataset_choice()
    bundle = current_dataset()
    stored = stored_predictions(record.sha256, f"{bundle.fingerprint}-{split}")
    if stored is not None:
        return stored
    return _predictions(
        record.path, record.sha256, name, root or None, csv or None,
        json.dumps(options or {}, sort_keys=True), split,
    )  # fmt: skip


def audit_table(record, bundle, *, intersectional: bool = False, n_boot: int = 200):
    """A model's per-group audit on the test split: the table its sweep stored when the model is
    a sweep cell audited with the same bootstrap, else computed from its predictions."""
    from fairprune.metrics import audit

    if not intersectional:
        split_key = f"{bundle.fingerprint}-test"
        found = _stored(str(results_path()), store_version(), record.sha256, split_key, n_boot)
        if found is not None and found[1] is not None:
            return found[1]
    return audit(predictions(record), bundle, intersectional=intersectional, n_boot=n_boot)


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


def onnx_records():
    """The ``.onnx`` classifiers in the model store (audit only; ``kind == "onnx"``)."""
    from fairprune.nets.onnx_io import list_onnx

    return list_onnx(models_dir())


def fits_input(record, input_size: int) -> bool:
    """False for an ONNX model whose fixed input side differs from the dataset's."""
    onnx = record.config.get("onnx", {}) if record.kind == "onnx" else {}
    return not onnx.get("static_input") or record.input_size == input_size


def onnx_caption(record) -> str:
    """One line saying what an ONNX record is and that it is audit-only."""
    onnx = record.config.get("onnx", {})
    source = onnx.get("source_arch") or "unknown architecture"
    origin = f"exported from {onnx['source']} ({source})" if onnx.get("source") else source
    fr = f" · FLOPs reduction {record.flops_reduction:.1%}" if record.flops_reduction else ""
    return (
        f"ONNX · run by onnxruntime · **audit only, not prunable** · {origin} · opset "
        f"{onnx.get('opset', '?')}{fr} · {record.macs:,} MACs · hash `{record.sha256[:12]}`"
    )


LATENCY_BATCHES = (1, 64)  # images per call: single-image serving, and batch throughput


@st.cache_data(show_spinner="Measuring latency on this machine's CPU…", max_entries=64)
def _latency(path: str, sha256: str, input_size: int, threads: int) -> pd.DataFrame:
    from fairprune.evaluate import latency_table
    from fairprune.nets.deploy import runtimes

    model, _ = _model(path, sha256)
    runners = runtimes(model, input_size, threads=threads)
    return latency_table(runners, input_size, batch_sizes=LATENCY_BATCHES, rounds=5,
                         threads=threads)  # fmt: skip


def latency(record, input_size: int | None = None) -> pd.DataFrame:
    """Milliseconds per image on each runtime (rows) at batch 1 and 64 (columns), cached.

    Parameters
    ----------
    record : ModelRecord
    input_size : int, optional
        Image side; default the model's own.

    Returns
    -------
    pandas.DataFrame
        Columns ``runtime``, ``batch 1 (ms/image)``, ``batch 64 (ms/image)`` and
        ``speed vs torch (batch 64)`` (torch's time ÷ this runtime's; empty for an ONNX model).
    """
    import torch

    side = int(input_size or record.input_size)
    long = _latency(record.path, record.sha256, side, torch.get_num_threads())
    wide = long.pivot(index="runtime", columns="batch", values="ms_per_image")
    wide = wide.reindex([r for r in dict.fromkeys(long["runtime"])])
    out = pd.DataFrame({"runtime": wide.index})
    for b in LATENCY_BATCHES:
        out[f"batch {b} (ms/image)"] = wide[b].to_numpy()
    last = LATENCY_BATCHES[-1]
    if "torch" in wide.index:
        out[f"speed vs torch (batch {last})"] = (wide.loc["torch", last] / wide[last]).to_numpy()
    return out


@st.cache_data(show_spinner="Computing paired intervals…", max_entries=64)
def _paired(sha_a: str, sha_b: str, fingerprint: str, _preds_a, _preds_b, _group_names):
    from fairprune.app.views import paired_comparison

    return paired_comparison(_preds_a, _preds_b, _group_names)


def paired(record_a, record_b, bundle):
    """:func:`fairprune.app.views.paired_comparison` of two models on the current dataset's test
    split, cached per (model, model, dataset): a model's file is named by its content hash, so
    the same pair on the same rows always gives the same intervals."""
    return _paired(record_a.sha256, record_b.sha256, bundle.fingerprint,
                   predictions(record_a), predictions(record_b), bundle.group_names)  # fmt: skip


@st.cache_data(show_spinner="Computing paired intervals…", max_entries=16)
def _findings(path: str, version: str, sweep_id: str | None):
    from fairprune.sweep.findings import findings_frame, level_findings, summary_of
    from fairprune.sweep.results import ResultsStore

    findings = level_findings(ResultsStore(path), sweep_id)
    if not findings:
        return findings_frame([]), None
    return findings_frame(findings), summary_of(findings)


def sweep_findings(sweep_id: str | None):
    """(findings table, headline dict or None) of a sweep: paired intervals on stored
    predictions, cached until the store changes. Raises FairpruneError on an unreadable sweep."""
    results_store()
    return _findings(str(results_path()), store_version(sweep_id), sweep_id)


@st.cache_data(show_spinner="Computing paired intervals for every method…", max_entries=16)
def _methods(path: str, version: str, sweep_id: str | None, reference: str | None):
    from fairprune.sweep.methods import methods_table
    from fairprune.sweep.results import ResultsStore

    return methods_table(ResultsStore(path), sweep_id, reference=reference)


def sweep_methods(sweep_id: str | None, reference: str | None = None) -> dict:
    """:func:`fairprune.sweep.methods.methods_table` of a sweep, on stored predictions, cached
    until the store changes. Raises FairpruneError on a sweep with nothing to compare."""
    results_store()
    return _methods(str(results_path()), store_version(sweep_id), sweep_id, reference)


@st.cache_data(show_spinner=False, max_entries=8)
def _report(path: str, version: str, sweep_id: str, n_decisions: int, title: str, synthetic: bool,
            _long, _cells, _sweeps, _decisions) -> str:  # fmt: skip
    from fairprune.app.report import build_report

    findings, headline = _headline(path, version, sweep_id)
    try:
        methods = _methods(path, version, sweep_id, None)
    except FairpruneError:  # nothing pruned to compare yet: the report goes without the table
        methods = None
    return build_report(_long, _cells, sweeps=_sweeps, synthetic=synthetic, title=title,
                        headline=headline, findings=findings, decisions=_decisions,
                        methods=methods)  # fmt: skip


def report_builder(sweep_id: str, long, cells, sweeps, decisions, *, title: str, synthetic: bool):
    """A function of no arguments that returns the sweep's HTML report (cached until the store
    or its decisions change). It reads no session state, so ``st.download_button`` can call it on
    its own thread when the button is clicked: the page never waits for the report."""
    path, version = str(results_path()), store_version(sweep_id)
    # decisions are append-only: their count tells whether a cached report is still current
    return lambda: _report(path, version, sweep_id, len(decisions), title, synthetic, long, cells,
                           sweeps, decisions)  # fmt: skip


def _headline(path: str, version: str, sweep_id: str | None):
    """(findings table or None, headline sentence) of a sweep: its headline, what to do when
    there is nothing to compare yet, or the one-line error of an unreadable sweep."""
    from fairprune.sweep.findings import NO_PRUNED

    try:
        findings, head = _findings(path, version, sweep_id)
    except FairpruneError as exc:
        return None, str(exc)
    return findings, head["headline"] if head else NO_PRUNED


def headline_text(sweep_id: str | None) -> str:
    """The sweep's headline sentence, or what to do when there is nothing to compare yet."""
    results_store()
    return _headline(str(results_path()), store_version(sweep_id), sweep_id)[1]


def decisions(sweep_id: str | None = None, subject: str | None = None) -> pd.DataFrame:
    """Review decisions from the store, oldest first (read fresh: the table is small)."""
    return results_store().decisions(sweep_id=sweep_id, subject=subject)


def decision_form(subjects: dict[str, tuple[str, str]], key: str, title: str) -> None:
    """A form to record one review decision, for a review meeting.

    Parameters
    ----------
    subjects : dict
        Label → (kind, subject): what can be decided on here ("sweep", its id) or ("model",
        its SHA-256). One entry shows no chooser.
    key : str
        The page's widget-key prefix.
    title : str
        The form's heading.
    """
    from fairprune.sweep.results import DECISIONS

    with st.form(f"{key}_decision_form", clear_on_submit=False):
        st.markdown(f"**{title}**")
        labels = list(subjects)
        label = (
            st.selectbox("About", labels, key=f"{key}_decision_about")
            if len(labels) > 1
            else labels[0]
        )
        c1, c2 = st.columns([1, 2])
        reviewer = c1.text_input(
            "Reviewer", value=st.session_state.get("fp_reviewer", ""), key=f"{key}_reviewer"
        )
        decision = c2.radio(
            "Decision", DECISIONS, horizontal=True, index=None, key=f"{key}_decision"
        )
        comment = st.text_area("Comment", key=f"{key}_comment", height=80)
        submitted = st.form_submit_button("Record decision", key=f"{key}_decision_submit")
    if not submitted:
        return
    kind, subject = subjects[label]
    if decision is None:
        st.error(ERR_PICK_DECISION)
        return
    try:
        row = results_store().record_decision(
            subject=subject, kind=kind, decision=decision or "", reviewer=reviewer,
            comment=comment,
        )  # fmt: skip
    except FairpruneError as exc:
        st.error(str(exc))
        return
    st.session_state["fp_reviewer"] = row["reviewer"]  # this session's name, on every page
    st.success(f"Recorded: {row['decision']} on {label} by {row['reviewer']} at "
               f"{row['created']}. Decisions are never overwritten.")  # fmt: skip


def show_decisions(table: pd.DataFrame, cells: pd.DataFrame, sweeps: pd.DataFrame, key: str):
    """The decisions as a table, newest first (or a caption when there are none)."""
    from fairprune.app.views import decisions_display

    if table.empty:
        st.caption("No review decisions yet.")
        return
    shown = decisions_display(table, cells, sweeps).iloc[::-1].reset_index(drop=True)
    st.dataframe(shown, hide_index=True, key=f"{key}_decisions")
