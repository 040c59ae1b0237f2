"""Warm-up ahead of the first visitor: the default views' cached values, computed in the
background when the dashboard starts on a results store, and again once new results have landed.

A Streamlit server runs every session's script in one process and its ``st.cache_data`` /
``st.cache_resource`` caches are shared by every session, so a value computed here is a cache hit
for the first person who opens a page. ``start`` is called by ``app.py`` on every run and starts
one daemon thread per process and store; the thread calls the very functions the pages call, with
the arguments a session that has clicked nothing passes (the configured store and models folder,
the newest sweep, its default comparison, the default dataset and models), so it computes nothing
a page would not, and changes no number a page shows. It never blocks a page (a page asking for a
value the thread is computing waits for that value only), does nothing on a missing or empty
store, and never raises: a failure is logged and the pages compute their values themselves.

Then the thread watches the store (its version, every ``POLL_S`` seconds; a missing file is only
looked for): when cells have landed (a sweep or the demo, started here or anywhere else) and the
store has then been quiet for ``FAIRPRUNE_REWARM_QUIET_S`` seconds (default 15), it warms the new
values, so the first visit after a sweep or the demo has run is a cache hit too. While cells keep
landing it waits: a running sweep needs the cores more than a view nobody may open. A quiet time
of 0 turns the watching off (one warm-up at start, on a store that exists then).

This module imports nothing heavy: the thread imports the backend.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from pathlib import Path

from fairprune import paths

log = logging.getLogger(__name__)

_lock = threading.Lock()
_threads: dict[tuple[str, str], threading.Thread] = {}
THREAD_NAME = "fairprune-warmup"
# A process must not exit while the thread is inside Torch: tearing down Torch's thread pools
# under a running daemon thread aborts the interpreter ("terminate called without an active
# exception", exit status 134, seen at the end of a pytest run). At exit the thread is asked to
# stop after the step it is in, and waited for up to this many seconds.
EXIT_WAIT_S = 60.0
_stop = threading.Event()
POLL_S = 2.0  # seconds between two looks at the store's version
QUIET_S = 15.0  # default FAIRPRUNE_REWARM_QUIET_S


class _Stopped(Exception):
    """The process is exiting: the warm-up ends after the step it was in."""


def _check() -> None:
    if _stop.is_set():
        raise _Stopped


def stop(timeout: float = EXIT_WAIT_S) -> None:
    """Stop every warm-up thread after the step it is in and wait for it; a later ``start``
    starts afresh. Called at exit, and by the tests between two tests: a thread still warming
    the previous test's store would otherwise read the next test's configured store (the pages'
    helpers read the configuration at each call) and create its file."""
    _stop.set()
    with _lock:
        threads = list(_threads.values())
        _threads.clear()
    for thread in threads:
        thread.join(timeout)
    _stop.clear()


atexit.register(stop)


class _QuietThread(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning raised in the warm-up thread: it
    calls the pages' cached functions outside any session on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            threading.current_thread().name.startswith(THREAD_NAME)
            and "ScriptRunContext" in record.getMessage()
        )


_NOISY = "streamlit.runtime.scriptrunner_utils.script_run_context"


def start(results: str | Path | None = None, models: str | Path | None = None):
    """Start the warm-up for a store once per process; later calls return the same thread.

    Parameters
    ----------
    results : path or str, optional
        The results store (a file, or a PostgreSQL URL); default: the configured one, what a
        session that has not changed the sidebar's store locations looks at.
    models : path, optional
        The models folder (default: the configured one).

    Returns
    -------
    threading.Thread or None
        The warm-up's daemon thread. It warms at once on a store that exists, then watches it;
        on a missing file it only looks for the file (the empty Overview stays light). With the
        watching off (``FAIRPRUNE_REWARM_QUIET_S=0``), None when the results file does not exist.
    """
    results = paths.as_location(results) if results else paths.results_location()
    models = Path(models) if models else paths.models_dir()
    quiet = quiet_s()
    if quiet is None and not paths.is_store_url(results) and not results.is_file():
        return None
    key = (str(results), str(models))
    with _lock:
        thread = _threads.get(key)
        if thread is None:
            thread = threading.Thread(target=_run, args=(results, models, quiet), daemon=True,
                                      name=f"{THREAD_NAME}-{len(_threads)}")  # fmt: skip
            _threads[key] = thread
            thread.start()
    return thread


def quiet_s() -> float | None:
    """``FAIRPRUNE_REWARM_QUIET_S`` (default ``QUIET_S``); None when it is 0 or less: no
    watching."""
    from fairprune.utils import env_number

    value = env_number("FAIRPRUNE_REWARM_QUIET_S")
    value = QUIET_S if value is None else value
    return value if value > 0 else None


def store_version(results: str | Path) -> str | None:
    """The store's version (it changes whenever a sweep or a cell is written); None while the
    results file does not exist (nothing of the backend is imported then)."""
    if not paths.is_store_url(results) and not Path(results).is_file():
        return None
    from fairprune.sweep.results import ResultsStore

    return ResultsStore(results).version()


def _run(results: str | Path, models: Path, quiet: float | None) -> None:
    logging.getLogger(_NOISY).addFilter(_QuietThread())
    try:
        _watch(results, models, quiet)
    except _Stopped:
        log.info("dashboard warm-up stopped (the process is exiting, or a test ended)")


def _watch(results: str | Path, models: Path, quiet: float | None) -> None:
    """Warm now if the store exists, then (``quiet`` set) each time its version has changed and
    stayed unchanged for ``quiet`` seconds; until ``stop``."""
    warmed = pending = None  # the version last warmed; a newer one waiting to be quiet
    since, first, failed = 0.0, True, ""
    while True:
        version = None
        try:
            version = store_version(results)
            if version is not None and version != warmed:
                now = time.monotonic()
                if version != pending:
                    pending, since = version, now
                if first or now - since >= quiet:
                    warm(results, models)
                    warmed = version  # cells landing meanwhile change the version again
        except _Stopped:
            raise
        except Exception as exc:  # the pages compute what is missing themselves
            if repr(exc) != failed:  # an unreachable store is logged once, not every poll
                log.warning("dashboard warm-up failed; the pages compute their values themselves",
                            exc_info=True)  # fmt: skip
            failed = repr(exc)
            warmed = version  # not again until the store changes
        else:
            failed = ""
        first = False
        if quiet is None or _stop.wait(POLL_S):
            return


def warm(results: str | Path, models: Path) -> list[str]:
    """Compute the default views' cached values, in the order the pages are likely visited.

    Only the configured store and models folder are warmed (the pages' helpers read the
    session's choice, and outside a session that is the configured one): for another store it
    returns at once, as it does on an empty store (nothing to show; a demo may be starting and
    needs the cores).

    Returns
    -------
    list of str
        What was warmed, in order (for tests and the log).
    """
    from fairprune.app import ui

    same = str(ui.results_path()) == str(paths.as_location(results))
    if not same or Path(ui.models_dir()) != Path(models):
        return []
    done: list[str] = []
    if _sweep_views(done) is None:
        return done
    _check()
    _dataset_views(done)
    _check()
    _methods_views(done)
    log.info("dashboard warm-up done: %s", ", ".join(done))
    return done


def _sweep_views(done: list[str]) -> str | None:
    """Overview, Sparsity sweep and the Audit page's methods A/B: the newest sweep's tables,
    charts and findings for its default comparison. Returns that sweep (None: empty store)."""
    from fairprune.app import tables

    if tables.store_is_empty():
        return None
    sweeps = tables.sweeps_table()
    sweeps = sweeps[sweeps["cells"] > 0]
    if sweeps.empty:
        return None
    sweep_id = sweeps.iloc[-1]["sweep_id"]  # pick_sweep's default: the newest sweep
    keys = tables.method_keys(sweep_id)
    tables.long_table(sweep_id)
    tables.cells_table(sweep_id)
    pair = _default_pair(sweep_id, keys)
    _check()
    if tables.is_methods_sweep(sweep_id):
        tables.methods_gap_chart(sweep_id)
    else:
        tables.sweep_chart(sweep_id, pair=pair)
    done.append("overview chart")
    _check()
    tables.headline_text(sweep_id, *pair)
    done.append("findings")
    _check()
    tables.sweep_figures(sweep_id)
    done.append("sweep charts")
    return sweep_id


def _default_pair(sweep_id: str, keys: list[str]) -> tuple:
    """What ``tables.pick_pair`` returns for a session that has not chosen: the default pair,
    the method None when there is none (or it is the baseline itself)."""
    from fairprune.app import tables

    if not keys:
        return None, None
    base, meth = tables.default_pair(sweep_id)
    base = base if base in keys else keys[0]
    meth = meth if meth in keys and meth != base else None
    return base, meth


def _dataset_views(done: list[str]) -> None:
    """The default dataset, and the Audit and What-pruning-forgot pages' default models."""
    from fairprune.app import choices, loaders

    bundle = loaders.current_dataset()
    done.append("dataset")
    records = [*loaders.model_records(), *loaders.onnx_records()]
    listed, _, _ = choices.audit_records(
        records, dataset=bundle.name, num_classes=bundle.num_classes,
        fits=lambda r: loaders.fits_input(r, bundle.input_size),
    )  # fmt: skip
    by_name = {r.name: r for r in listed}
    chosen = sorted(
        by_name, key=lambda n: (by_name[n].kind != "dense", by_name[n].target_reduction, n)
    )[:2]
    if chosen:
        _, n_boot = choices.bootstrap_choice(
            [loaders.stored_n_boots(by_name[n], bundle) for n in chosen]
        )
        for name in chosen:
            _check()
            rec = by_name[name]
            loaders.audit_cached(rec.sha256, bundle.fingerprint, False, n_boot, rec, bundle)
        if len(chosen) == 2:
            _check()
            loaders.paired(by_name[chosen[0]], by_name[chosen[1]], bundle)
        done.append("audit")
    own = [r for r in loaders.model_records(bundle.name) if r.num_classes == bundle.num_classes]
    dense = [r for r in own if r.kind == "dense"]
    if dense:
        children = choices.pruned_children([r for r in own if r.kind == "pruned"], dense[0])
        if children:
            _check()
            loaders.predictions(dense[0])
            _check()
            loaders.predictions(children[0])
            done.append("forgotten")


def _methods_views(done: list[str]) -> None:
    """The Methods page's default sweep (the newest with more than one method) and reference."""
    from fairprune.app import tables
    from fairprune.app.api import REFERENCE_CRITERION
    from fairprune.errors import FairpruneError

    sweeps = tables.sweeps_table()
    sweeps = sweeps[sweeps["cells"] > 0].iloc[::-1]
    cells = tables.cells_table()
    pruned = cells[cells["criterion"] != "dense"]
    if sweeps.empty or pruned.empty:
        return
    n_methods = pruned.groupby("sweep_id")[["criterion", "loss"]].apply(
        lambda d: len(d.drop_duplicates())
    )
    ids = list(sweeps["sweep_id"])
    sweep_id = next((s for s in ids if n_methods.get(s, 0) > 1), ids[0])
    criteria = list(dict.fromkeys(k.split(":", 1)[0] for k in tables.method_keys(sweep_id)))
    if not criteria:
        return
    reference = REFERENCE_CRITERION if REFERENCE_CRITERION in criteria else criteria[0]
    try:
        tables.methods_views(sweep_id, reference)
    except FairpruneError:  # nothing to compare: the page says so itself
        return
    done.append("methods")
