"""A meeting without browsers: N dashboard sessions asking for pages at the same moment.

    python bench/meeting.py                  # N = 1, 4, 8 on one server, N = 8 on two, N = 8
                                             # with a sweep running in the background, and
                                             # first visits after a sweep landed cells
    python bench/meeting.py --sessions 8 --same-page --json
    python bench/run.py --only meeting [the same options]

Not a test: machines here are shared and noisy (issue #23, item 1). Needs no browser.

A real dashboard server (``streamlit run app.py``, command line and environment as
tests/app/test_browser.py's ``_serve`` has them) serves the results store the environment points
at (by default the demo's: ``python -m fairprune demo``), or ``--results``/``--models-dir``. Each
session is a websocket client speaking Streamlit's own protocol the way Streamlit 1.67's front end
does (``App.sendRerunBackMsg``): a ``BackMsg`` whose ``rerun_script`` ClientState names the page
by ``page_name`` (the URL path) for the session's first page and by ``page_script_hash`` (from
the ``navigation`` message) for a sidebar switch, with the hashes of the cacheable messages it
holds, so the server sends references for those; it reads ``ForwardMsg``s until the run's
``script_finished``. Like the front end it keeps cacheable messages for
``max_cached_message_age`` runs and, while it sits on a page with an ``st.fragment(run_every=…)``,
asks for the fragment's reruns on that interval (``--no-auto-rerun`` stops that). It sends no
widget states: every page runs with its widgets' defaults, what a visitor who clicks nothing sees.

Per request, on the client's clock from sending it: **first chart**, the first message of the
run carrying the page's first content by tests/app/test_browser.py's ``PAGES`` rule (a plotly
chart with data; the Models page's dataframe; the Report page's download button), and **script
end**, the run's ``script_finished``. That is the server's share of a click: nothing is drawn, and
the socket is local (the clients share the machine's cores with the server, as browsers would).
The run after a page switch includes the dashboard's first-view pause (0.3 s after the first
chart, ``FAIRPRUNE_FIRST_VIEW_PAUSE``), so script end counts it; first chart does not.

A meeting: the N sessions open the dashboard (Overview) at once, then in each round every session
asks for a page at the same moment, rotating through the pages so that sessions ask for different
ones (``--same-page``: all ask for the same one, "everyone open the Audit page"); by default
enough rounds that every page gets ``--samples`` (8) requests per N. ``--processes 2``: two
servers on two ports serve the same store, the sessions split between them alternately. The
default run is N = 1, 4, 8 with one process, then the largest N with two, then the largest N with
a sweep running in the background.

Sweep in the background (``--background-sweep``): the largest N on one server while a sweep runs
in its own process, started as the Sweep page starts one on this machine
(``python -m fairprune.app.sweep_process`` at the dashboard's sweep niceness,
``FAIRPRUNE_SWEEP_NICE``, default 10). So that the store the environment points at is left as it
was, server and sweep work on a copy of it (results via SQLite's backup, the models folder) in a
temporary folder. The sweep is the store's newest sweep on a seed it has not run (fresh cells
that land in the copy while the sessions click, as a sweep started from the dashboard does); the
meeting starts once the sweep's first pruned model is under way and the sweep is cancelled after
it. Its row says how many cells landed during the meeting and whether the sweep still ran at its
end (if not, the grid was too small to cover the meeting and the figure is not the one wanted).

After a landing (``--after-landing``): what the first visitor pays once a sweep has landed
cells. On a scratch copy of the store, a warmed server sees a background sweep land its first
cell, then the store stays quiet; one session then visits every page. Run twice side by side:
with the warm-up watching the store and warming the new values once it is quiet (as shipped),
and with the watching off. Exit status 1 when a background sweep lands nothing in time.

Cold: a freshly started server's first page (from starting the process to the first chart), then
one session's first visit to every other page (sidebar switches) — a table of its own: a cold
process, though what earlier runs left on disk (the data cache, stored predictions) stays. It
warms the server for the meetings that follow. Exit status 2 when the store holds no sweep.

The report ends with one line per meeting against issue #23's targets (first chart, 8 sessions:
p90 ≤ 1 s and worst ≤ 2 s; with a sweep in the background p90 ≤ 1.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


def _from_browser_test():
    """``PAGES`` and ``_free_port`` of tests/app/test_browser.py. Importing it runs
    tests/conftest.py, which points ``FAIRPRUNE_CACHE`` at a fresh temporary folder (a server
    started from here would regenerate the dataset) and turns the first-view pause off: the
    environment is put back as it was."""
    saved = dict(os.environ)
    try:
        from tests.app import test_browser
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return test_browser.PAGES, test_browser._free_port


_PAGES, _free_port = _from_browser_test()
# the element whose message stands for a selector of test_browser's PAGES
ELEMENT_OF = {
    ".js-plotly-plot": "plotly_chart",
    "[data-testid='stDataFrame']": "dataframe",
    "[data-testid='stDownloadButton']": "download_button",
}
# (name, URL path, element of the page's first content), in test_browser's order
PAGES = [(name, path, ELEMENT_OF[selector]) for name, path, selector in _PAGES]
PAGE_NAMES = [name for name, *_ in PAGES]
ARTIFACTS = ROOT / "artifacts"

ERR_NO_SWEEP = (
    "The results store {path} holds no sweep: run `python -m fairprune demo` first, or pass "
    "--results and --models-dir of a store that has one."
)
ERR_SERVER = "The dashboard server did not start within {seconds:g} s; see {log}."
ERR_NOT_A_FILE = (
    "a sweep in the background needs a results store in a file (a copy is made): {path}"
)
ERR_SWEEP_START = (
    "The background sweep did not start its first pruned model within {seconds:g} s: {why}"
)
ERR_PAGES = (
    "The dashboard's sidebar lacks the page {missing}, which tests/app/test_browser.py's PAGES "
    "lists: update PAGES there."
)
ERR_NO_CELL = "The background sweep landed no cell within {seconds:g} s; see {log}."


@dataclass
class Visit:
    """One request for a page and what came back (seconds from sending the request)."""

    page: str  # the page's name, as in the sidebar
    session: int  # which session asked
    round: int  # the meeting's round; -1 when the session opened the dashboard
    server: int  # which server process answered (0 or 1)
    first_chart: float | None = None  # to the first message with the page's first content
    script_end: float | None = None  # to the run's script_finished
    kbytes: float = 0.0  # ForwardMsg bytes received during the run
    messages: int = 0  # ForwardMsgs received during the run
    references: int = 0  # of them, references to a message the session holds (ref_hash)
    exceptions: int = 0  # st.exception elements (a traceback on screen)
    error: str = ""  # what went wrong when the run did not finish


@dataclass
class _Pending:
    visit: Visit
    element: str  # the first content's element
    t0: float  # perf_counter when the request went out
    done: asyncio.Event = field(default_factory=asyncio.Event)
    run_id: str = ""  # the full run that answers the request, once it started


def _content(msg: ForwardMsg) -> str:
    """What a message draws: the element's type ("plotly_chart" only for a chart with data)."""
    if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return ""
    element = msg.delta.new_element
    kind = element.WhichOneof("type") or ""
    if kind == "plotly_chart":
        spec = element.plotly_chart.spec
        i = spec.find('"data":')
        if i < 0 or spec[i + 7 :].lstrip().startswith("[]"):
            return "plotly_chart (empty)"
    return kind


class Session:
    """One visitor's websocket session with a dashboard server, as Streamlit's front end runs it."""

    def __init__(self, url: str, index: int, server: int = 0, *, auto_rerun: bool = True) -> None:
        self.url = url  # http://host:port of the server
        self.index = index
        self.server = server
        self.auto_rerun = auto_rerun
        self.ws: ClientConnection | None = None
        self.pages: dict[str, str] = {}  # page name -> page_script_hash (navigation message)
        self.current = ""  # page_script_hash of the page the session is on
        self.cache: dict[str, list] = {}  # message hash -> [run count last used, content, fragment]
        self.runs = 0  # finished runs, the front end's ForwardMsg cache clock
        self.max_age = 2  # new_session's max_cached_message_age
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> auto-rerun task
        self.pending: _Pending | None = None
        self.reader: asyncio.Task | None = None
        self.closed = ""

    async def visit(self, name: str, round_: int = 0, *, timeout: float = 180.0) -> Visit:
        """Ask for page ``name`` (the session's first request opens the dashboard at the page's
        URL, connecting first) and wait for the run's end."""
        path, element = next((p, e) for n, p, e in PAGES if n == name)
        visit = Visit(page=name, session=self.index, round=round_, server=self.server)
        pending = _Pending(visit, element, time.perf_counter())
        self.pending = pending
        try:
            if self.ws is None:  # a new tab: connect, then ask for the page by its URL path
                host = self.url.removeprefix("http://")
                self.ws = await connect(f"ws://{host}/_stcore/stream", subprotocols=["streamlit"],
                                        max_size=None, open_timeout=timeout)  # fmt: skip
                self.reader = asyncio.create_task(self._read())
                request = self._rerun(page_name=path, path=path)
            else:  # a sidebar link: the page's script hash; the old page's timers stop first
                if name not in self.pages:
                    raise LookupError(ERR_PAGES.format(missing=name))
                self._stop_timers(list(self.timers))
                request = self._rerun(page_hash=self.pages[name], path=path)
            await self.ws.send(request)
            await asyncio.wait_for(pending.done.wait(), timeout)
        except TimeoutError:
            visit.error = f"no script_finished within {timeout:g} s"
        except (OSError, ConnectionClosed, LookupError) as exc:
            visit.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.pending = None
        return visit

    async def close(self) -> None:
        self._stop_timers(list(self.timers))
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader

    def _rerun(self, *, page_hash: str = "", page_name: str = "", path: str = "",
               fragment_id: str = "", auto: bool = False) -> bytes:  # fmt: skip
        """The BackMsg the front end sends to (re)run a page or one of its fragments."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = ""
        state.widget_states.SetInParent()
        state.page_script_hash = page_hash
        state.page_name = page_name
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.cached_message_hashes.extend(self.cache)
        info = state.context_info
        info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
        info.url, info.is_embedded, info.color_scheme = f"{self.url}/{path}", False, "light"
        return msg.SerializeToString()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(ForwardMsg.FromString(raw), len(raw), time.perf_counter())
        except ConnectionClosed as exc:
            self.closed = str(exc)
        finally:
            if self.pending is not None and not self.pending.done.is_set():
                self.pending.visit.error = f"connection closed: {self.closed or 'by the server'}"
                self.pending.done.set()

    def _handle(self, msg: ForwardMsg, size: int, now: float) -> None:
        kind = msg.WhichOneof("type")
        pending = self.pending
        if pending is not None:
            pending.visit.kbytes += size / 1024
            pending.visit.messages += 1
        if kind == "ref_hash":  # a message this session holds: the server sent only its hash
            entry = self.cache.get(msg.ref_hash)
            if entry is None:
                if pending is not None:
                    pending.visit.error = f"cached message missing: {msg.ref_hash}"
                return
            entry[0] = self.runs
            content = entry[1]
            if pending is not None:
                pending.visit.references += 1
        else:
            content = _content(msg)
            if msg.metadata.cacheable and msg.hash:
                fragment = msg.delta.fragment_id if kind == "delta" else ""
                self.cache.setdefault(msg.hash, [self.runs, content, fragment])[0] = self.runs
        fragment_run = bool(msg.metadata.run.fragment_ids)
        if kind == "new_session":
            self.max_age = msg.new_session.config.max_cached_message_age or self.max_age
            if pending is not None and not pending.run_id and not fragment_run:
                pending.run_id = msg.metadata.run.script_run_id
        elif kind == "navigation":
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
            self.current = msg.navigation.page_script_hash
        elif kind == "auto_rerun" and self.auto_rerun:
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_timers(list(msg.stop_auto_rerun.fragment_ids))
        elif kind == "page_not_found" and pending is not None:
            pending.visit.error = f"page not found: {msg.page_not_found.page_name!r}"
        elif kind == "script_finished":
            self._finished(msg, pending, now)
        if pending is None or not pending.run_id:
            return
        if content == "exception":
            pending.visit.exceptions += 1
        if content == pending.element and pending.visit.first_chart is None:
            pending.visit.first_chart = now - pending.t0

    def _finished(self, msg: ForwardMsg, pending: _Pending | None, now: float) -> None:
        status = msg.script_finished
        if status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            # the front end's ForwardMsg cache ages by one run; a fragment run ages only its own
            fragments = set(msg.metadata.run.fragment_ids)
            self.runs += 1
            for key, (used, _content, fragment) in list(self.cache.items()):
                if fragments and fragment not in fragments:
                    continue
                if self.runs - used > self.max_age:
                    del self.cache[key]
        if pending is None or msg.metadata.run.script_run_id != pending.run_id:
            return
        if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            pending.run_id = ""  # the page called st.rerun(): the next full run answers
            return
        if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            pending.visit.error = "the page failed to compile"
        else:
            pending.visit.script_end = now - pending.t0
        pending.done.set()

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        old = self.timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return
        self._stop_timers([fragment_id])
        task = asyncio.create_task(self._tick(fragment_id, interval))
        self.timers[fragment_id] = (interval, task)

    def _stop_timers(self, fragment_ids: list[str]) -> None:
        for fragment_id in fragment_ids:
            timer = self.timers.pop(fragment_id, None)
            if timer is not None:
                timer[1].cancel()

    async def _tick(self, fragment_id: str, interval: float) -> None:
        """A fragment's auto-rerun, every ``interval`` seconds, as the front end's timer sends it."""
        while True:
            await asyncio.sleep(interval)
            request = self._rerun(page_hash=self.current, fragment_id=fragment_id, auto=True)
            try:
                await self.ws.send(request)
            except ConnectionClosed:
                return


@dataclass
class Server:
    """A dashboard server process."""

    url: str  # http://127.0.0.1:port
    started: float  # perf_counter when the process was started
    healthy_s: float  # seconds from starting the process to /_stcore/health answering "ok"
    log: Path  # the server's output


@contextlib.contextmanager
def serve(log: Path, *, wait_s: float = 120.0):
    """A dashboard server on a free port for the store the environment points at, started as
    tests/app/test_browser.py's ``_serve`` starts it (its own copy: it keeps the process's start
    time and polls the health endpoint every 50 ms, for the cold first page)."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FAIRPRUNE_FIRST_VIEW_PAUSE", None)  # the dashboard as shipped
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless",
             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],  # fmt: skip
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if proc.poll() is not None or time.perf_counter() - started > wait_s:
                        raise RuntimeError(ERR_SERVER.format(seconds=wait_s, log=log)) from None
                    time.sleep(0.05)
            yield Server(url, started, time.perf_counter() - started, log)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def scratch_store(results: Path, models: Path, into: Path) -> dict[str, Path]:
    """A copy of a file store in ``into``: the results (SQLite's online backup, safe while a
    server reads it), the models folder and an empty data folder. Returns the three paths as the
    ``FAIRPRUNE_RESULTS``, ``FAIRPRUNE_MODELS_DIR`` and ``FAIRPRUNE_DATA_DIR`` to use."""
    if not Path(results).is_file():
        raise ValueError(ERR_NOT_A_FILE.format(path=results))
    copy = {"results": into / "results.sqlite", "models": into / "models", "data": into / "data"}
    with contextlib.closing(sqlite3.connect(f"file:{results}?mode=ro", uri=True)) as src:
        with contextlib.closing(sqlite3.connect(copy["results"])) as dst:
            src.backup(dst)
    if Path(models).is_dir():
        shutil.copytree(models, copy["models"])
    copy["models"].mkdir(exist_ok=True)
    copy["data"].mkdir(exist_ok=True)
    return copy


def sweep_request(results: Path, models: Path, *, seed: int | None = None) -> dict:
    """The request the Sweep page sends its sweep process (``fairprune.app.jobs``): the store's
    newest sweep on a seed that sweep has not run (``seed``, default one past its largest), its
    dense model found in ``models`` by file name, at the dashboard's sweep niceness."""
    from dataclasses import replace

    from fairprune.app.jobs import sweep_niceness
    from fairprune.config import SweepConfig, config_from_dict, config_to_dict
    from fairprune.nets.checkpoint import list_models
    from fairprune.sweep.grid import sweep_id_for
    from fairprune.sweep.results import ResultsStore

    sweeps = ResultsStore(results).sweeps().sort_values("created")
    config = config_from_dict(SweepConfig, json.loads(sweeps["config_json"].iloc[-1]))
    dense = Path(models) / Path(config.dense_model).name
    seed = max(config.seeds) + 1 if seed is None else seed
    config = replace(config, seeds=(seed,), dense_model=str(dense),
                     name=f"bench/meeting.py: background sweep, seed {seed}")  # fmt: skip
    sha = next(r.sha256 for r in list_models(models) if Path(r.path).name == dense.name)
    return {"key": sweep_id_for(config, sha), "config": config_to_dict(config),
            "results": str(results), "models": str(models), "nice": sweep_niceness()}  # fmt: skip


class BackgroundSweep:
    """A sweep in its own process, as the dashboard runs one on this machine
    (``python -m fairprune.app.sweep_process``: one JSON request on stdin, its messages on
    stdout, ``cancel`` on stdin stops it)."""

    def __init__(self, request: dict, log: Path) -> None:
        self.request = request
        self.log = log
        self.started = threading.Event()  # the first pruned model is under way (a "unit")
        self.ended = threading.Event()
        self.landed: list[float] = []  # perf_counter of each cell written to the store
        self.state = ""  # the process's end state: finished, cancelled, failed
        self.error = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BackgroundSweep:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fairprune.app.sweep_process"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            encoding="utf-8",
        )  # fmt: skip
        self.proc.stdin.write(json.dumps(self.request) + "\n")
        self.proc.stdin.flush()
        threading.Thread(target=self._read, name="background-sweep", daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("t") == "unit":
                self.started.set()
            elif msg.get("t") == "cell":
                self.landed.append(time.perf_counter())
            elif msg.get("t") == "end":
                self.state, self.error = msg.get("state", ""), msg.get("error", "")
        self.ended.set()
        self.started.set()  # a sweep that ended before its first unit: nobody waits forever

    def wait_started(self, timeout: float) -> None:
        """Until the first pruned model is under way; RuntimeError if it ends or stalls first."""
        if not self.started.wait(timeout) or self.ended.is_set():
            why = self.error or self.state or f"no pruned model started; see {self.log}"
            raise RuntimeError(ERR_SWEEP_START.format(seconds=timeout, why=why))

    def running(self) -> bool:
        return not self.ended.is_set()

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write("cancel\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ended.wait(5)
        self._log.close()


@contextlib.contextmanager
def _scratch_server(results: Path, models: Path, log: str, *, timeout: float, auto_rerun: bool,
                    **env: str):  # fmt: skip
    """A fresh server on a scratch copy of the store (``scratch_store``), warmed by a ``cold``
    pass: yields (the server, ``sweep_request`` for the copy, the cold pass). The environment
    points at the copy, plus ``env``, until the end, then is restored."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="fairprune-meeting-") as tmp:
        copy = scratch_store(results, models, Path(tmp))
        try:
            os.environ.update(FAIRPRUNE_RESULTS=str(copy["results"]),
                              FAIRPRUNE_MODELS_DIR=str(copy["models"]),
                              FAIRPRUNE_DATA_DIR=str(copy["data"]), **env)  # fmt: skip
            request = sweep_request(copy["results"], copy["models"])
            with serve(ARTIFACTS / f"{log}.log") as server:
                yield server, request, cold(server, timeout=timeout, auto_rerun=auto_rerun)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def meeting_with_sweep(results: Path, models: Path, sessions: int, rounds: int | None = None, *,
                       wait_s: float = 300.0, **options) -> dict:  # fmt: skip
    """``meeting`` on a fresh server while a sweep runs in the background, both on a scratch copy
    of the store (``scratch_store``): the server is warmed by a ``cold`` pass first, the meeting
    starts when the sweep's first pruned model is under way, and the sweep is cancelled after it.

    Returns
    -------
    dict
        ``meeting``'s result, with ``cold`` (the scratch server's cold pass) and ``background``:
        niceness, cells landed during the meeting, whether the sweep still ran at its end, and
        its end state once cancelled.
    """
    with _scratch_server(results, models, "meeting-server-sweep",
                         timeout=options.get("timeout", 180.0),
                         auto_rerun=options.get("auto_rerun", True)) as (server, request, warm):  # fmt: skip
        with BackgroundSweep(request, ARTIFACTS / "meeting-sweep.log") as sweep:
            sweep.wait_started(wait_s)
            before = len(sweep.landed)
            run = meeting([server.url], sessions, rounds, **options)
            landed, running = len(sweep.landed) - before, sweep.running()
    run["cold"] = warm
    run["background"] = {"niceness": request["nice"], "sweep": request["key"],
                         "cells_landed": landed, "running_at_end": running,
                         "state": sweep.state or "killed", "error": sweep.error}  # fmt: skip
    return run


LANDED_QUIET_S = 5.0  # the servers' FAIRPRUNE_REWARM_QUIET_S in the after-landing measure
LANDED_SETTLE_S = 25.0  # then this long for the re-warm to run, with or without it


def after_landing(results: Path, models: Path, *, rewarm: bool, wait_s: float = 300.0,
                  timeout: float = 180.0, auto_rerun: bool = True) -> dict:  # fmt: skip
    """One session's first visit to every page after a sweep has landed cells (issue #23,
    item 2: the cold work after a landing is done ahead of the first visitor).

    On a scratch copy of the store (``scratch_store``) a fresh server is warmed by a ``cold``
    pass; a sweep then runs in the background (as ``meeting_with_sweep`` runs one) until its
    first cell has landed and is cancelled; the store is quiet for ``LANDED_QUIET_S`` +
    ``LANDED_SETTLE_S`` seconds, then one session opens the Overview (the new sweep is the newest)
    and visits every other page. ``rewarm``: the server watches the store and warms the new
    values once it is quiet (``FAIRPRUNE_REWARM_QUIET_S``, as shipped); else it does not (0), as
    before the watching: the first visitor pays. Both wait the same time.

    Returns
    -------
    dict
        ``summarize``'s result and ``visits``, with ``rewarm`` and ``cells_landed``.
    """
    name = "rewarm" if rewarm else "no-rewarm"
    quiet = str(LANDED_QUIET_S if rewarm else 0)
    with _scratch_server(results, models, f"meeting-server-landed-{name}", timeout=timeout,
                         auto_rerun=auto_rerun, FAIRPRUNE_REWARM_QUIET_S=quiet) as (server, request, _):  # fmt: skip
        with BackgroundSweep(request, ARTIFACTS / f"meeting-sweep-landed-{name}.log") as sweep:
            sweep.wait_started(wait_s)
            end = time.perf_counter() + wait_s
            while not sweep.landed and sweep.running() and time.perf_counter() < end:
                time.sleep(0.2)
            landed = len(sweep.landed)
        if not landed:
            raise RuntimeError(ERR_NO_CELL.format(seconds=wait_s, log=sweep.log))
        time.sleep(LANDED_QUIET_S + LANDED_SETTLE_S)
        visits = asyncio.run(_first_visits(server.url, timeout, auto_rerun))
    return {"rewarm": rewarm, "cells_landed": landed, **summarize(visits),
            "visits": [asdict(v) for v in visits]}  # fmt: skip


def _p90(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _stats(values: list[float]) -> dict | None:
    """Median, p90 and worst in seconds (None without values)."""
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "p90": round(_p90(values), 3),
            "worst": round(max(values), 3)}  # fmt: skip


def summarize(visits: list[Visit]) -> dict:
    """Per page (every page of the dashboard, in the sidebar's order) and over all visits: the
    number of visits and median / p90 / worst of first chart and script end."""

    def block(mine: list[Visit]) -> dict:
        return {
            "n": len(mine),
            "first_chart": _stats([v.first_chart for v in mine if v.first_chart is not None]),
            "script_end": _stats([v.script_end for v in mine if v.script_end is not None]),
            "kbytes": round(statistics.median(v.kbytes for v in mine), 1) if mine else None,
        }

    firsts = [v.first_chart for v in visits if v.first_chart is not None]
    overall = block(visits)
    overall.update(
        over_1s=sum(t > 1 for t in firsts),
        over_2s=sum(t > 2 for t in firsts),
        no_first_chart=sum(v.first_chart is None for v in visits),
        exceptions=sum(v.exceptions for v in visits),
        errors=[
            f"{v.page} (session {v.session}, round {v.round}): {v.error}" for v in visits if v.error
        ],
    )
    return {"pages": {name: block([v for v in visits if v.page == name]) for name in PAGE_NAMES},
            "overall": overall}  # fmt: skip


def rounds_for(sessions: int, samples: int = 8) -> int:
    """Rounds that give every page at least ``samples`` requests when ``sessions`` sessions each
    ask for one page a round, rotating through the pages."""
    return len(PAGES) * math.ceil(samples / sessions)


def ask(session: int, round_: int, *, same_page: bool = False) -> str:
    """The page a session asks for in a round: rotating, each session on a different page (never
    the one it is on); with ``same_page`` everyone on the same one. Round -1 opens the
    dashboard: the Overview."""
    if round_ < 0:
        return PAGE_NAMES[0]
    return PAGE_NAMES[(round_ + 1 + (0 if same_page else session)) % len(PAGES)]


async def _meeting(urls: list[str], sessions: int, rounds: int, *, same_page: bool, gap: float,
                   timeout: float, auto_rerun: bool) -> tuple[list[Visit], list[Visit], list[str]]:  # fmt: skip
    people = [Session(urls[i % len(urls)], i, i % len(urls), auto_rerun=auto_rerun)
              for i in range(sessions)]  # fmt: skip
    try:
        opened = await asyncio.gather(*(s.visit(ask(s.index, -1), -1, timeout=timeout)
                                        for s in people))  # fmt: skip
        visits: list[Visit] = []
        for r in range(rounds):
            await asyncio.sleep(gap)
            visits += await asyncio.gather(
                *(s.visit(ask(s.index, r, same_page=same_page), r, timeout=timeout) for s in people)
            )
    finally:
        await asyncio.gather(*(s.close() for s in people))
    return list(opened), visits, list(people[0].pages)


def meeting(urls: list[str], sessions: int, rounds: int | None = None, *, same_page: bool = False,
            samples: int = 8, gap: float = 0.5, timeout: float = 180.0,
            auto_rerun: bool = True) -> dict:  # fmt: skip
    """N sessions open the dashboard at once, then ask for pages round after round at the same
    moment; the sessions split over ``urls`` (one per server process) alternately.

    Returns
    -------
    dict
        processes, sessions, mode, rounds, ``navigation`` (the page names the server's sidebar
        lists), ``open`` (the opening's summary), ``pages`` and
        ``overall`` (the rounds' summary, see ``summarize``) and every ``visits`` entry.
    """
    rounds = rounds_for(sessions, samples) if rounds is None else rounds
    opened, visits, navigation = asyncio.run(
        _meeting(urls, sessions, rounds, same_page=same_page, gap=gap, timeout=timeout,
                 auto_rerun=auto_rerun)
    )  # fmt: skip
    opening = summarize(opened)["overall"]
    return {"processes": len(urls), "sessions": sessions, "rounds": rounds,
            "mode": "same page" if same_page else "rotating", "navigation": navigation,
            "open": opening,
            **summarize(visits), "visits": [asdict(v) for v in opened + visits]}  # fmt: skip


async def _first_visits(url: str, timeout: float, auto_rerun: bool) -> list[Visit]:
    person = Session(url, 0, auto_rerun=auto_rerun)
    try:
        return [await person.visit(name, timeout=timeout) for name in PAGE_NAMES]
    finally:
        await person.close()


def cold(server: Server, *, timeout: float = 180.0, auto_rerun: bool = True) -> dict:
    """A just-started server: one session opens the Overview, then visits every other page
    from the sidebar once. ``first_page`` times the Overview from starting the process."""
    since_start = time.perf_counter() - server.started
    visits = asyncio.run(_first_visits(server.url, timeout, auto_rerun))
    first = visits[0]

    def later(t: float | None) -> float | None:
        return None if t is None else round(since_start + t, 3)

    return {
        "first_page": {
            "healthy": round(server.healthy_s, 3),
            "first_chart": later(first.first_chart),
            "script_end": later(first.script_end),
        },
        **summarize(visits),
        "visits": [asdict(v) for v in visits],
    }


def _check_store(results: Path) -> str:
    """Empty when the store holds a sweep, else the one-line reason why not."""
    if not results.is_file():
        return ERR_NO_SWEEP.format(path=results)
    from fairprune.errors import FairpruneError
    from fairprune.sweep.results import ResultsStore

    try:
        return "" if len(ResultsStore(results).sweeps()) else ERR_NO_SWEEP.format(path=results)
    except FairpruneError as exc:
        return str(exc)


def _cells(s: dict | None) -> str:
    if s is None:
        return f"{'–':>6} {'–':>5} {'–':>5}"
    return f"{s['median']:6.2f} {s['p90']:5.2f} {s['worst']:5.2f}"


def table(run: dict) -> list[str]:
    """A summary as text: one row per page, one for all the visits, the counts over 1 and 2 s."""
    lines = [
        f"{'':<20} {'':>3}   {'first chart (s)':<18}   {'script end (s)':<18}   {'KB':>6}",
        f"{'page':<20} {'n':>3}   {'median':>6} {'p90':>5} {'worst':>5}   {'median':>6} "
        f"{'p90':>5} {'worst':>5}   {'median':>6}",
    ]
    for name, s in [*run["pages"].items(), ("all", run["overall"])]:
        kb = f"{'–':>6}" if s["kbytes"] is None else f"{s['kbytes']:6.0f}"
        lines.append(f"{name:<20} {s['n']:>3}   {_cells(s['first_chart'])}   "
                     f"{_cells(s['script_end'])}   {kb}")  # fmt: skip
    o = run["overall"]
    lines.append(f"first chart over 1 s: {o['over_1s']} of {o['n']}, over 2 s: {o['over_2s']}; "
                 f"no first chart: {o['no_first_chart']}; exceptions on screen: "
                 f"{o['exceptions']}")  # fmt: skip
    lines += [f"  error: {e}" for e in o["errors"]]
    return lines


def report(result: dict) -> list[str]:
    """The whole result as text."""
    lines = [f"store: {result['store']} · load average {result['load_average_1min']:.1f} on "
             f"{result['cpus']} cores · the client runs on the same cores"]  # fmt: skip
    if "cold" in result:
        c = result["cold"]
        f = c["first_page"]
        lines += ["", "cold: a just-started server (one session, each page's first visit)",
                  f"first page (Overview) from starting the process: healthy "
                  f"{f['healthy']:.2f} s, first chart {_opt(f['first_chart'])}, script end "
                  f"{_opt(f['script_end'])}", *table(c)]  # fmt: skip
    for run in result["runs"]:
        o = run["open"]
        lines += [
            "",
            f"N = {run['sessions']} session{'s' if run['sessions'] > 1 else ''}, "
            f"{run['processes']} process{'es' if run['processes'] > 1 else ''}, {run['mode']}, "
            f"{run['rounds']} rounds{_background(run)}; the {run['sessions']} opening the "
            f"Overview at once: first chart "
            f"{_opt(o['first_chart'] and o['first_chart']['median'])} median, "
            f"{_opt(o['first_chart'] and o['first_chart']['worst'])} worst",
            *table(run),
        ]  # fmt: skip
    for run in result.get("landed", []):
        how = (
            f"the server warms the new values once the store is quiet ({LANDED_QUIET_S:g} s)"
            if run["rewarm"]
            else "no re-warm (the first visitor pays)"
        )
        lines += ["", f"after a sweep landed {run['cells_landed']} cell"
                  f"{'s' if run['cells_landed'] != 1 else ''} and the store was quiet "
                  f"{LANDED_QUIET_S + LANDED_SETTLE_S:g} s, one session's first visits; {how}",
                  *table(run)]  # fmt: skip
    return lines + ["", *targets(result), *chromium_lines()]


def chromium_lines(path: Path | None = None) -> list[str]:
    """The last Chromium four-session meeting (artifacts/browser_meeting.json, written by
    ``bench/browser_meeting.py`` and tests/app/test_browser.py), beside this benchmark's."""
    path = ARTIFACTS / "browser_meeting.json" if path is None else path
    if not path.is_file():
        return ["Chromium meeting: none measured yet (python bench/browser_meeting.py)"]
    run = json.loads(path.read_text())
    o = run["overall"]
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(path.stat().st_mtime))
    return [f"Chromium meeting ({run['sessions']} browsers, {run['rounds']} rounds, {when} UTC, "
            f"load {run.get('load_average_1min', float('nan')):.1f}, "
            f"{run.get('store', 'the test fixture')}): click to first chart median "
            f"{o['median']:.2f} s, p90 {o['p90']:.2f} s, worst {o['worst']:.2f} s; tabs opened "
            f"at once in {run['open_s']:.2f} s; {run['verdict']}"]  # fmt: skip


def _background(run: dict) -> str:
    b = run.get("background")
    if not b:
        return ""
    end = "still running at the end" if b["running_at_end"] else "ENDED BEFORE THE MEETING DID"
    return (f", a sweep in the background (nice {b['niceness']}, {b['cells_landed']} cells "
            f"landed during the meeting, {end})")  # fmt: skip


def targets(result: dict) -> list[str]:
    """One line per meeting: first chart p90 / worst and script end p90 / worst, against issue
    #23's targets (8 sessions: first chart p90 ≤ 1 s, worst ≤ 2 s; with a sweep in the
    background, p90 ≤ 1.5 s)."""
    lines = [f"{'meeting':<38} {'first chart p90 / worst':>24} {'script end p90 / worst':>24}"
             "   target (first chart)"]  # fmt: skip
    for run in result["runs"]:
        o = run["overall"]
        name = (f"N = {run['sessions']}, {run['processes']} process"
                f"{'es' if run['processes'] > 1 else ''}, {run['mode']}")  # fmt: skip
        if run.get("background"):
            name += ", sweep running"
        fc, se = o["first_chart"], o["script_end"]
        cells = [f"{s['p90']:.2f} / {s['worst']:.2f}" if s else "–" for s in (fc, se)]
        goal = ""
        if run.get("background"):
            goal = _met(fc and o["no_first_chart"] == 0 and fc["p90"] <= 1.5, "p90 ≤ 1.5 s")
        elif run["sessions"] >= 8:
            ok = fc and o["no_first_chart"] == 0 and fc["p90"] <= 1.0 and fc["worst"] <= 2.0
            goal = _met(ok, "p90 ≤ 1 s, worst ≤ 2 s")
        lines.append(f"{name:<38} {cells[0]:>24} {cells[1]:>24}   {goal}")
    for run in result.get("landed", []):
        o = run["overall"]
        fc, se = o["first_chart"], o["script_end"]
        cells = [f"{s['p90']:.2f} / {s['worst']:.2f}" if s else "–" for s in (fc, se)]
        name = f"first visits after cells landed, {'re-warmed' if run['rewarm'] else 'no re-warm'}"
        goal = ""
        if run["rewarm"]:
            goal = _met(fc and o["no_first_chart"] == 0 and fc["worst"] <= 1.0, "every page ≤ 1 s")
        lines.append(f"{name:<38} {cells[0]:>24} {cells[1]:>24}   {goal}")
    return lines


def _met(ok, goal: str) -> str:
    return f"{goal}: {'met' if ok else 'NOT met'}"


def _opt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8],
                        help="N: sessions asking at once, one meeting per value")  # fmt: skip
    parser.add_argument("--processes", type=int, choices=[1, 2], default=None,
                        help="server processes for every N (default: 1 for every N, then 2 for "
                        "the largest)")  # fmt: skip
    parser.add_argument("--same-page", action="store_true",
                        help="everyone asks for the same page each round")  # fmt: skip
    parser.add_argument("--samples", type=int, default=8, help="requests per page and N")
    parser.add_argument("--rounds", type=int, default=None, help="(default: from --samples)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between rounds")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per request")
    parser.add_argument("--no-auto-rerun", action="store_true",
                        help="do not send the fragments' timed reruns")  # fmt: skip
    parser.add_argument("--results", type=Path, help="results store (default: the environment's)")
    parser.add_argument("--models-dir", type=Path, help="model folder (default: the environment's)")
    parser.add_argument("--background-sweep", choices=["yes", "no", "only"], default="yes",
                        help="yes (default): also the largest N while a sweep runs in the "
                        "background (on a copy of the store); no: skip it; only: just "
                        "that")  # fmt: skip
    parser.add_argument("--after-landing", choices=["yes", "no", "only"], default="yes",
                        help="yes (default): also one session's first visits after a sweep "
                        "landed cells, with and without the warm-up watching the store (on a "
                        "copy of it); no: skip it; only: just that")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.results is not None:
        os.environ["FAIRPRUNE_RESULTS"] = str(args.results.resolve())
    if args.models_dir is not None:
        os.environ["FAIRPRUNE_MODELS_DIR"] = str(args.models_dir.resolve())
    from fairprune.paths import results_path

    store = results_path()
    problem = _check_store(store)
    if problem:
        print(problem)
        return 2
    plan = [(args.processes or 1, n) for n in args.sessions]
    if args.processes is None:
        plan.append((2, max(args.sessions)))
    if "only" in (args.background_sweep, args.after_landing):
        plan = []
    options = {"same_page": args.same_page, "samples": args.samples, "gap": args.gap,
               "timeout": args.timeout, "auto_rerun": not args.no_auto_rerun}  # fmt: skip
    result: dict = {"store": str(store), "pages": PAGE_NAMES, "runs": [],
                    "auto_rerun": not args.no_auto_rerun, "cpus": len(os.sched_getaffinity(0))}  # fmt: skip
    for processes in dict.fromkeys(p for p, _ in plan):  # fresh servers per process count
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(serve(ARTIFACTS / f"meeting-server-{k}.log"))
                       for k in range(processes)]  # fmt: skip
            for server in servers:  # the cold pass warms each server
                warm = cold(server, timeout=args.timeout, auto_rerun=options["auto_rerun"])
                if "cold" not in result:  # the first server's: the one-process group's
                    result["cold"] = warm
            for p, n in plan:
                if p == processes:
                    result["runs"].append(meeting([s.url for s in servers], n, args.rounds,
                                                  **options))  # fmt: skip
    from fairprune.paths import models_dir

    if args.background_sweep != "no" and args.after_landing != "only":
        run = meeting_with_sweep(store, models_dir(), max(args.sessions), args.rounds, **options)
        result.setdefault("cold", run["cold"])
        result["runs"].append(run)
    if args.after_landing != "no" and args.background_sweep != "only":
        result["landed"] = [
            after_landing(store, models_dir(), rewarm=rewarm, timeout=args.timeout,
                          auto_rerun=options["auto_rerun"])
            for rewarm in (False, True)
        ]  # fmt: skip
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
