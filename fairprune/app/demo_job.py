"""The Overview's "Run the demo": the built-in demo as a background job, with its progress.

The demo runs in the sweep's own process (``fairprune.app.sweep_process.run_demo``), not in the
page's script: it trains (or finds) the demo's dense model, asks ``fairprune.demo`` for the
demo's grid and runs it in stages (``demo_stages``): the first seed at the top level, then, at
a lower priority, the rest. The page follows the job (``demo_progress``) and shows the chart as
soon as the first pruned models land.
"""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path

from fairprune.app import jobs

log = logging.getLogger(__name__)

DEMO_JOB_KEY = "demo"
"""The demo's job key until its process names the sweep (one demo per dashboard process)."""
DEMO_NICE = 0
"""The demo's CPU priority (POSIX niceness) while the user waits: the dense model and the first
stage run at the CLI's priority (as ``make demo`` runs its first step in the terminal), so the
first chart comes as fast as there. A page drawn meanwhile only polls the job (a few
milliseconds a second): there is nothing to protect by slowing the demo down."""
DEMO_WHERE = "this machine (a background process: the dense model, then the first seed first)"
# what the chart's first draw needs, loaded while the dense model trains instead of after it
WARM_MODULES = ("fairprune.app.views", "fairprune.app.charts", "fairprune.sweep.results")


def demo_job_request(*, results_path: str | Path, models_dir: str | Path) -> dict:
    """The request the sweep's process gets for the demo: the stores and the priorities.

    The grid is not in it: the process asks ``fairprune.demo`` for it once the dense model is
    there (``demo_sweep_config``), so the demo's settings live in one place.

    Returns
    -------
    dict
        ``demo`` (True), ``results``, ``models``, ``nice`` (``DEMO_NICE``: dense model and first
        seed) and ``later_nice`` (``jobs.sweep_niceness()``: the other seeds, in the background
        like every dashboard sweep).
    """
    return {
        "demo": True,
        "results": str(results_path),
        "models": str(models_dir),
        "nice": DEMO_NICE,
        "later_nice": jobs.sweep_niceness(),
    }


def start_demo(*, results_path: str | Path, models_dir: str | Path) -> jobs.SweepJob:
    """Start the demo in the background (or return the demo job already running).

    The page's process loads what the first chart needs meanwhile, on a thread of its own, so
    the chart does not wait for those imports once the first models land.

    Raises
    ------
    FairpruneError
        ``auth.ERR_FORBIDDEN`` for anyone but an operator: the demo trains a model and runs a
        sweep. A demo this call starts is recorded in the results store ("sweep started").
    """
    from fairprune import auth
    from fairprune.app import identity

    auth.require(identity.current(), "operate", what="run the demo")
    running = demo_job()
    job = jobs.start_process_job(
        DEMO_JOB_KEY,
        demo_job_request(results_path=results_path, models_dir=models_dir),
        where=DEMO_WHERE,
    )
    if job is not running:
        identity.record_action(results_path, "sweep started", DEMO_JOB_KEY,
                               detail="the built-in demo (SynthDerm)")  # fmt: skip
    threading.Thread(target=_warm, name="demo-warm-imports", daemon=True).start()
    return job


def _warm() -> None:
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page imports it again and shows any error
            log.warning("could not pre-load %s", name, exc_info=True)


def demo_stages(config) -> list:
    """``run_sweep``'s ``only`` for each stage of the demo, in order: the first seed at the
    grid's top level (the chart's first lines, where pruning hurts most), the rest of the first
    seed, then everything. A later stage skips what an earlier one stored."""
    first, top = config.seeds[0], max(config.reductions)
    return [
        lambda cell: cell.seed == first and abs(cell.target_reduction - top) < 1e-9,
        lambda cell: cell.seed == first,
        None,
    ]


def demo_job() -> jobs.SweepJob | None:
    """The demo job of this dashboard process, if one was started."""
    return jobs.get_job(DEMO_JOB_KEY)


def waiting_for_demo(job: jobs.SweepJob | None) -> bool:
    """True while the demo runs and none of its pruned models is in the store yet: the page
    shows the demo's progress instead of a chart of the dense model alone."""
    return job is not None and job.running and not job.landed


def demo_progress(job: jobs.SweepJob) -> tuple[float, str]:
    """(fraction done of the current stage, one line saying what the demo is doing)."""
    fraction = min(job.done / max(job.total, 1), 1.0)
    if job.state == "failed":
        return fraction, f"The demo stopped: {job.error}"
    if job.stage == "starting":
        return 0.0, "Starting the demo…"
    if job.stage == "dense":
        return fraction, (
            f"Training the dense model (step {job.done} of {job.total}): {job.info}. The first "
            "chart follows the first pruned models."
        )
    return fraction, (
        f"Pruning and fine-tuning: {job.done} of {job.total} models in the store · {job.info}. "
        "The chart appears with the first pruned models."
    )
