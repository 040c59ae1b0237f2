"""The results store's tables for the pages, cached until the store changes.

Tables come through ``st.cache_data`` keyed by the store's version (what changes when a sweep or
a cell is written), so a page never shows a stale or half-written table; the backend (the results
store, findings, the methods table) is imported only when a table is first asked for.
"""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from fairprune import paths
from fairprune.app.ui import results_path
from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)

ERR_HEADLINE_FAILED = (
    "No headline for this sweep: its comparison could not be computed ({reason}); the tables "
    "below still hold every number."
)


def store_version(sweep_id: str | None = None) -> str:
    """Changes whenever a sweep or a cell is written to the results store (not on decisions);
    with ``sweep_id``, only when that sweep's own cells change."""
    return results_store().version(sweep_id)


def results_store():
    """The results store this session looks at (a file, or the configured PostgreSQL store)."""
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
def _sweep_chart(path: str, version: str, sweep_id: str | None, criterion, losses, pair):
    from fairprune.app import charts

    long = _long(path, version, sweep_id)
    if criterion is None and losses is None:
        if pair is None:
            pair = _pair_default(path, version, sweep_id)
        methods = [tuple(k.split(":", 1)) for k in pair if k]
        if methods:
            return charts.accuracy_vs_reduction(long, methods=methods)
    return charts.accuracy_vs_reduction(
        long, criterion=criterion, losses=None if losses is None else list(losses)
    )


def sweep_chart(
    sweep_id: str | None, criterion: str | None = None, losses=None, pair: tuple | None = None
):
    """``charts.accuracy_vs_reduction`` of a sweep's long table, built once per version of the
    sweep and shared by every session (plotly builds it in ~70 ms; the live panel of a running
    sweep redraws it every second). ``st.plotly_chart`` copies a figure before sending it, so
    the shared one is never changed. Without ``criterion``/``losses`` it draws the comparison
    ``pair`` (baseline key, method key; default: the sweep's default pair)."""
    results_store()
    losses = None if losses is None else tuple(losses)
    pair = None if pair is None else tuple(pair)
    version = store_version(sweep_id)
    return _sweep_chart(str(results_path()), version, sweep_id, criterion, losses, pair)


@st.cache_resource(show_spinner=False, max_entries=32)
def _sweep_figures(path: str, version: str, sweep_id: str | None) -> dict:
    from fairprune.app import charts

    long = _long(path, version, sweep_id)
    return {"gap": charts.gap_vs_reduction(long), "tradeoff": charts.tradeoff_chart(long),
            "disparity": charts.disparity_chart(long)}  # fmt: skip


def sweep_figures(sweep_id: str | None) -> dict:
    """The Sparsity sweep page's other charts of a sweep's long table (``gap``, ``tradeoff``,
    ``disparity``), built once per version of the sweep and shared by every session: plotly
    builds them in ~0.2 s, which eight sessions on one page paid eight times."""
    results_store()
    return _sweep_figures(str(results_path()), store_version(sweep_id), sweep_id)


@st.cache_data(show_spinner=False, max_entries=32)
def _methods_of(path: str, version: str, sweep_id: str | None) -> tuple[list[str], tuple]:
    """The sweep's methods (``criterion:loss``, configured order) and its default pair."""
    from fairprune.sweep.findings import sweep_methods
    from fairprune.sweep.pairing import default_pair
    from fairprune.sweep.results import ResultsStore

    _, have = sweep_methods(ResultsStore(path), sweep_id)
    base, meth = default_pair(have)
    return [m.key for m in have], (base.key if base else "", meth.key if meth else "")


def method_keys(sweep_id: str | None) -> list[str]:
    """The sweep's methods as ``criterion:loss``, criteria in the sweep's configured order."""
    results_store()
    return _methods_of(str(results_path()), store_version(sweep_id), sweep_id)[0]


def default_pair(sweep_id: str | None) -> tuple[str, str]:
    """The sweep's default comparison (baseline key, method key; "" where there is none)."""
    results_store()
    return _pair_default(str(results_path()), store_version(sweep_id), sweep_id)


def _pair_default(path: str, version: str, sweep_id: str | None) -> tuple:
    return _methods_of(path, version, sweep_id)[1]


SEED_NOTE = (
    "Intervals resample the test images within each group and the pruning and fine-tuning "
    "seeds: they say whether a method differs for a new seed, not only for these models."
)

SESSION_PAIR = "fp_pair"
"""Session state: {sweep id: (baseline key, method key)} this session compares, on every page."""


def pick_pair(sweep_id: str | None, key: str) -> tuple[str | None, str | None]:
    """Two select boxes — the baseline method and the method compared with it — over the
    sweep's (criterion, loss) pairs, starting on the session's last choice for this sweep, else
    the default (the paper's X + CE against PW-X + PW when the sweep has both). Returns their
    ``criterion:loss`` keys (None where the sweep has nothing to offer)."""
    if sweep_id is None:
        return None, None
    results_store()
    keys, (base, meth) = _methods_of(str(results_path()), store_version(sweep_id), sweep_id)
    if not keys:
        return None, None
    chosen = st.session_state.setdefault(SESSION_PAIR, {}).get(sweep_id, (base, meth))
    none = "(none)"

    def label(k: str) -> str:
        return k.replace(":", " + ") if k != none else none

    c1, c2 = st.columns(2)
    b_key, m_key = f"{key}_baseline_{sweep_id}", f"{key}_method_{sweep_id}"
    if st.session_state.get(b_key) not in keys:
        st.session_state[b_key] = chosen[0] if chosen[0] in keys else keys[0]
    options = [none, *keys]
    if st.session_state.get(m_key) not in options:
        st.session_state[m_key] = chosen[1] if chosen[1] in keys else none
    picked_b = c1.selectbox("Baseline method", keys, format_func=label, key=b_key,
                            help="criterion + fine-tuning loss; the paper's baseline is X + ce")  # fmt: skip
    picked_m = c2.selectbox("Method compared with it", options, format_func=label, key=m_key,
                            help="the paper's method is pw_X + pw: PW in the pruning criterion "
                            "and in the fine-tuning")  # fmt: skip
    picked_m = None if picked_m == none or picked_m == picked_b else picked_m
    st.session_state[SESSION_PAIR][sweep_id] = (picked_b, picked_m or "")
    return picked_b, picked_m


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


def _findings(path: str, version: str, sweep_id: str | None, baseline=None, method=None):
    """:func:`_pair_findings` with the comparison spelled one way: no choice means the sweep's
    default pair, so a page that names it and one that does not share one cached computation."""
    if not baseline and not method and sweep_id is not None:
        baseline, method = _pair_default(path, version, sweep_id)
    return _pair_findings(path, version, sweep_id, baseline or None, method or None)


@st.cache_data(show_spinner="Computing paired intervals…", max_entries=16)
def _pair_findings(path: str, version: str, sweep_id: str | None, baseline, method):
    from fairprune.sweep.findings import findings_frame, level_findings, summary_of
    from fairprune.sweep.results import ResultsStore

    findings = level_findings(ResultsStore(path), sweep_id, baseline=baseline, method=method)
    if not findings:
        return findings_frame([]), None
    return findings_frame(findings), summary_of(findings)


def sweep_findings(sweep_id: str | None, baseline: str | None = None, method: str | None = None):
    """(findings table, headline dict or None) of a sweep for one comparison (default: the
    sweep's default pair): paired intervals on stored predictions, cached until the store
    changes. Raises FairpruneError on an unreadable sweep."""
    results_store()
    return _findings(str(results_path()), store_version(sweep_id), sweep_id, baseline, method)


@st.cache_data(show_spinner="Computing paired intervals for every method…", max_entries=16)
def _methods(path: str, version: str, sweep_id: str | None, reference: str | None):
    from fairprune.sweep.methods import methods_table
    from fairprune.sweep.results import ResultsStore

    return methods_table(ResultsStore(path), sweep_id, reference=reference)


@st.cache_resource(show_spinner="Computing paired intervals for every method…", max_entries=16)
def _methods_views(path: str, version: str, sweep_id: str | None, reference: str | None):
    from fairprune.app import charts
    from fairprune.app.api import methods_display, methods_frame

    table = _methods(path, version, sweep_id, reference)
    frame = methods_frame(table)
    if frame.empty:
        return {"table": table, "frame": frame}
    figures = {
        "pareto": charts.methods_pareto_chart(frame),
        "gap": charts.methods_metric_chart(frame, "gap", "Gap between groups vs sparsity",
                                           "gap: mean over seeds of max − min (pp)"),
        "psi": charts.methods_metric_chart(frame, "max_psi", "Max ψ (excess accuracy drop)",
                                           "max ψ (pp)"),
        "groups": charts.methods_group_chart(frame, table["groups"]),
        "accuracy": charts.methods_metric_chart(frame, "accuracy", "Overall accuracy vs sparsity",
                                                "accuracy (%)"),
    }  # fmt: skip
    return {"table": table, "frame": frame, "display": methods_display(table),
            "csv": frame.to_csv(index=False), "figures": figures}  # fmt: skip


def methods_views(sweep_id: str | None, reference: str | None = None) -> dict:
    """What the Methods page shows of a sweep, built once per version of the sweep and shared by
    every session: ``table`` (:func:`sweep_methods`), ``frame`` (``methods_frame``), and unless
    the frame is empty ``display`` (``methods_display``), ``csv`` (the frame as CSV) and
    ``figures`` (``pareto``, ``gap``, ``psi``, ``groups``, ``accuracy``). Raises FairpruneError
    on a sweep with nothing to compare. Shared: callers must not change what it holds."""
    results_store()
    return _methods_views(str(results_path()), store_version(sweep_id), sweep_id, reference)


def sweep_methods(sweep_id: str | None, reference: str | None = None) -> dict:
    """:func:`fairprune.sweep.methods.methods_table` of a sweep, on stored predictions, cached
    until the store changes. Raises FairpruneError on a sweep with nothing to compare."""
    results_store()
    return _methods(str(results_path()), store_version(sweep_id), sweep_id, reference)


@st.cache_data(show_spinner=False, max_entries=8)
def _report(path: str, version: str, sweep_id: str, n_decisions: int, title: str, synthetic: bool,
            _long, _cells, _sweeps, _decisions, baseline=None, method=None) -> str:  # fmt: skip
    from fairprune.app.report import build_report

    findings, headline = _headline(path, version, sweep_id, baseline, method)
    try:
        methods = _methods(path, version, sweep_id, None)
    except FairpruneError:  # nothing pruned to compare yet: the report goes without the table
        methods = None
    return build_report(_long, _cells, sweeps=_sweeps, synthetic=synthetic, title=title,
                        headline=headline, findings=findings, decisions=_decisions,
                        methods=methods)  # fmt: skip


def report_builder(sweep_id: str, long, cells, sweeps, decisions, *, title: str, synthetic: bool,
                   pair: tuple = (None, None)):  # fmt: skip
    """A function of no arguments that returns the sweep's HTML report (cached until the store
    or its decisions change), its findings for the comparison ``pair`` (baseline key, method key;
    default: the sweep's default pair). It reads no session state, so ``st.download_button`` can
    call it on its own thread when the button is clicked: the page never waits for the report."""
    path, version = str(results_path()), store_version(sweep_id)
    baseline, method = pair
    # decisions are append-only: their count tells whether a cached report is still current
    return lambda: _report(path, version, sweep_id, len(decisions), title, synthetic, long, cells,
                           sweeps, decisions, baseline, method)  # fmt: skip


def _headline(path: str, version: str, sweep_id: str | None, baseline=None, method=None):
    """(findings table or None, headline sentence) of a sweep: its headline, what to do when
    there is nothing to compare yet, or one line saying why there is none (an unreadable sweep;
    a comparison the data cannot support, e.g. a group without test samples). Never raises a
    ``ValueError``: the headline sits above the sweep's charts, which must still be drawn."""
    from fairprune.sweep.findings import NO_PRUNED

    try:
        findings, head = _findings(path, version, sweep_id, baseline, method)
    except FairpruneError as exc:
        return None, str(exc)
    except ValueError as exc:  # e.g. an interval over a group with no samples
        log.warning("no headline for sweep %s", sweep_id, exc_info=True)
        return None, ERR_HEADLINE_FAILED.format(reason=_one_line(exc))
    return findings, head["headline"] if head else NO_PRUNED


def _one_line(exc: BaseException) -> str:
    """An exception's first line, short enough for a sentence."""
    lines = str(exc).strip().splitlines()
    return (lines[0][:120] if lines else "") or type(exc).__name__


def headline_text(
    sweep_id: str | None, baseline: str | None = None, method: str | None = None
) -> str:
    """The sweep's headline sentence for one comparison (default: the sweep's default pair), or
    what to do when there is nothing to compare yet."""
    results_store()
    version = store_version(sweep_id)
    return _headline(str(results_path()), version, sweep_id, baseline, method)[1]


def store_is_empty() -> bool:
    """True when the results store holds nothing to show. Without a store file yet (a fresh
    clone) this loads nothing of the backend, so the empty Overview draws its button at once."""
    location = results_path()
    if not paths.is_store_url(location) and not location.exists():
        return True
    return long_table().empty


def is_methods_sweep(sweep_id: str | None) -> bool:
    """True when every pruned method of the sweep is unstructured (a methods comparison read on
    weight sparsity, where a FLOPs chart would put every point at 0)."""
    from fairprune.prune.registry import is_unstructured

    cells = cells_table(sweep_id)
    pruned = cells[cells["criterion"] != "dense"]["criterion"].unique()
    return bool(len(pruned)) and all(is_unstructured(c) for c in pruned)


def methods_gap_chart(sweep_id: str | None):
    """Every method's gap against weight sparsity, with intervals (the Methods page's chart)."""
    from fairprune.app import charts
    from fairprune.app.api import methods_frame

    frame = methods_frame(sweep_methods(sweep_id))
    return charts.methods_metric_chart(
        frame, "gap", "Gap between groups vs weight sparsity, every method",
        "gap: mean over seeds of max − min (pp)",
    )  # fmt: skip
