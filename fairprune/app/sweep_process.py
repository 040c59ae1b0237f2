"""The process a dashboard sweep runs in when it runs on this machine, one cell after another.

``python -m fairprune.app.sweep_process`` reads one JSON line on stdin (the sweep's config, the
stores, its CPU priority and torch threads; or ``"demo": true`` and the stores), lowers its own
priority, runs ``run_sweep`` (or the demo: ``run_demo``) and reports on its stdout, one JSON
message per line:

- ``{"t": "progress", "done": D, "total": T, "info": TEXT, "stage": "dense" | "sweep"}`` (no
  stage: "sweep");
- ``{"t": "grid", "key": SWEEP_ID, "config": {...}, "cells": {CELL_KEY: {...}}}``: the demo's
  sweep, once its dense model is there;
- ``{"t": "unit", "cells": [CELL_KEY, ...]}``: a pruned model's cells start;
- ``{"t": "cell", "key": CELL_KEY}``: a cell is written to both stores;
- ``{"t": "end", "state": "finished" | "cancelled" | "failed", "error": TEXT}``, last.

The line ``cancel`` on stdin stops the sweep after the cell in progress is dropped; so does the end
of stdin (the dashboard went away). The process is the sweep's driver: it alone writes the model
store and the results store, one transaction per cell, so the dashboard's pages read finished
cells as they land and a stopped sweep resumes where it left off.

Why a process and not a thread of the dashboard: a sweep keeps both cores busy and, in a thread,
holds the interpreter's lock for long stretches, so every page drawn during a sweep waited for
it. In its own process, at a lower CPU priority, it gets whatever the pages leave over.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading

from fairprune.app.jobs import unexpected_error

log = logging.getLogger("fairprune.sweep_process")


def _lower_priority(niceness: int) -> None:
    """Add ``niceness`` to this process's (POSIX); elsewhere, or when refused, run as it is."""
    if niceness > 0 and hasattr(os, "nice"):
        try:
            os.nice(niceness)
        except OSError as exc:  # a container that forbids it: a slower page, not a failed sweep
            log.warning("could not lower the sweep's CPU priority (%s)", exc)


def main() -> int:
    # the protocol gets stdout to itself; anything else printed goes to stderr with the logs
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    logging.basicConfig(level=logging.WARNING, format="fairprune sweep: %(levelname)s %(message)s")
    request = json.loads(sys.stdin.readline())
    _lower_priority(int(request.get("nice", 0)))

    lock = threading.Lock()
    stop = threading.Event()

    def send(**message) -> None:
        with lock:
            try:
                out.write(json.dumps(message) + "\n")
            except OSError:  # the dashboard went away: nobody to report to, so stop
                stop.set()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "cancel":
                break
        stop.set()  # "cancel", or the dashboard closed the pipe (it stopped or went away)

    threading.Thread(target=listen, name="sweep-cancel", daemon=True).start()
    state, error = "failed", ""
    try:
        from fairprune.errors import FairpruneError

        run = run_demo if request.get("demo") else run_request
        try:
            state = run(request, send, stop.is_set)
        except FairpruneError as exc:
            error = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported on the page, logged in full
        log.exception("the sweep stopped on an unexpected error")
        error = unexpected_error(exc)
    send(t="end", state=state, error=error)
    try:
        out.close()
    except OSError:
        pass
    return 0


def _sweep(config, sweep_id: str, request: dict, send, should_stop, on_cell=None, **kwargs):
    """``run_sweep`` with every step reported on the pipe (``on_cell(key)`` after each cell)."""
    from fairprune.sweep.grid import cell_key_for
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep

    def on_unit(unit) -> None:
        send(t="unit", cells=[cell_key_for(sweep_id, c) for c in unit.cells])

    def cell(cell_key: str) -> None:
        send(t="cell", key=cell_key)
        if on_cell is not None:
            on_cell(cell_key)

    run_sweep(
        config,
        store=ResultsStore(request["results"]),
        models_dir=request["models"],
        should_stop=should_stop,
        on_cell=cell,
        on_unit=on_unit,
        **kwargs,
    )


def run_request(request: dict, send, should_stop) -> str:
    """Run the sweep ``request["config"]`` (id ``request["key"]``); its end state."""
    import torch

    from fairprune.config import SweepConfig, config_from_dict

    if request.get("threads"):
        torch.set_num_threads(int(request["threads"]))  # the dashboard's, for the same bytes
    config = config_from_dict(SweepConfig, request["config"])

    def progress(done: int, total: int, info: str) -> None:
        send(t="progress", done=done, total=total, info=info)

    _sweep(config, request["key"], request, send, should_stop, progress=progress)
    return "cancelled" if should_stop() else "finished"


def run_demo(request: dict, send, should_stop) -> str:
    """The demo, as ``make demo`` runs it: train (or find) the dense model, then the demo's sweep
    in the stages of ``demo_job.demo_stages`` (the first seed at the top level, the rest of the
    first seed, the other seeds); its end state.

    The grid comes from ``fairprune.demo`` at run time. Reports: ``progress`` with stage
    ``"dense"`` (training steps), one ``grid`` message (the sweep's id, config and cells), then
    ``progress`` with stage ``"sweep"`` (models done of the whole grid), ``unit`` and ``cell``.
    After the first stage the process lowers its priority to ``request["later_nice"]``: the
    rest runs in the background, as ``make demo`` runs it.
    """
    from fairprune import demo
    from fairprune.app.demo_job import demo_stages
    from fairprune.app.jobs import cell_states
    from fairprune.config import config_to_dict
    from fairprune.sweep.grid import sweep_id_for
    from fairprune.sweep.results import ResultsStore

    def dense_progress(done: int, total: int, info: str) -> None:
        send(t="progress", stage="dense", done=done, total=total, info=info)

    from fairprune.errors import FairpruneError

    try:  # a cancel stops training at its next step; the half-trained model is never saved
        record = demo.ensure_demo_model(
            request["models"], progress=dense_progress, should_stop=should_stop
        )
    except FairpruneError:
        if should_stop():
            return "cancelled"
        raise
    if should_stop():
        return "cancelled"
    config = demo.demo_sweep_config(record.path)
    sweep_id = sweep_id_for(config, record.sha256)
    cells = cell_states(config, sweep_id, ResultsStore(request["results"]))
    send(t="grid", key=sweep_id, config=config_to_dict(config), cells=cells)
    total = len(cells) + 1  # + the dense baseline
    # models of the whole grid in the store (run_sweep's own count, under ``only``, takes the
    # cells left out for done)
    stored = {key for key, cell in cells.items() if cell["state"] == "stored earlier"}

    last = {"info": "the dense model is ready"}

    def progress(_done: int, _total: int, info: str) -> None:
        last["info"] = info
        send(t="progress", stage="sweep", done=1 + len(stored), total=total, info=info)

    def landed(cell_key: str) -> None:
        stored.add(cell_key)
        progress(0, 0, last["info"])

    for i, only in enumerate(demo_stages(config)):
        if i == 1:  # the first chart is there: the rest in the background
            _lower_priority(int(request.get("later_nice", 0)))
        _sweep(config, sweep_id, request, send, should_stop, on_cell=landed,
               progress=progress, only=only)  # fmt: skip
        if should_stop():
            return "cancelled"
    return "finished"


if __name__ == "__main__":
    sys.exit(main())
