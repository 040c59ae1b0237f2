"""The process a dashboard sweep runs in when it runs on this machine, one cell after another.

``python -m fairprune.app.sweep_process`` reads one JSON line on stdin (the sweep's config, the
stores, its CPU priority and torch threads), lowers its own priority, runs ``run_sweep`` and
reports on its stdout, one JSON message per line:

- ``{"t": "progress", "done": D, "total": T, "info": TEXT}``
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

    def send(**message) -> None:
        with lock:
            out.write(json.dumps(message) + "\n")

    stop = threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "cancel":
                break
        stop.set()  # "cancel", or the dashboard closed the pipe (it stopped or went away)

    threading.Thread(target=listen, name="sweep-cancel", daemon=True).start()
    state, error = "failed", ""
    try:
        import torch

        from fairprune.config import SweepConfig, config_from_dict
        from fairprune.errors import FairpruneError
        from fairprune.sweep.grid import cell_key_for
        from fairprune.sweep.results import ResultsStore
        from fairprune.sweep.runner import run_sweep

        if request.get("threads"):
            torch.set_num_threads(int(request["threads"]))  # the dashboard's, for the same bytes
        config = config_from_dict(SweepConfig, request["config"])
        key = request["key"]

        def progress(done: int, total: int, info: str) -> None:
            send(t="progress", done=done, total=total, info=info)

        def on_unit(unit) -> None:
            send(t="unit", cells=[cell_key_for(key, c) for c in unit.cells])

        try:
            run_sweep(
                config,
                store=ResultsStore(request["results"]),
                models_dir=request["models"],
                progress=progress,
                should_stop=stop.is_set,
                on_cell=lambda cell_key: send(t="cell", key=cell_key),
                on_unit=on_unit,
            )
            state = "cancelled" if stop.is_set() else "finished"
        except FairpruneError as exc:
            error = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported on the page, logged in full
        log.exception("the sweep stopped on an unexpected error")
        error = unexpected_error(exc)
    send(t="end", state=state, error=error)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
