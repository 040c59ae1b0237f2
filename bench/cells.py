"""The cost of one demo cell, per level, for Taylor + CE and PW-Taylor + PW side by side.

    python bench/cells.py                      # a table
    python bench/cells.py --json               # one JSON object
    python bench/cells.py --models-dir models  # reuse the demo's dense model from a store
    python bench/run.py --only cells           # the same, from the bench runner

Runs the demo's own grid (``fairprune.demo.demo_sweep_config``: the biased preset, the demo's
levels, fine-tuning and PW settings) for one seed through ``run_sweep``, the two criteria
interleaved level by level (taylor, pw_taylor, next level, …), into a fresh results store, and
times each stage from the sweep's own progress reports: pruning (calibration gradients, the FLOPs
search), fine-tuning, and the audit (prediction on the test split, the per-group bootstrap, a
latency probe) with the store write. The machine is shared: the load average is printed beside
the figures; compare two versions in one run, not across days.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed_stage(table: dict, name: str, fn):
    """``fn`` wrapped to add its wall time to ``table[name]`` (a list per call)."""

    def wrapped(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            table.setdefault(name, []).append(time.perf_counter() - t0)

    return wrapped


def measure(models_dir: str | None, seed: int = 0, pair: str = "taylor", levels=None) -> dict:
    """Per (criterion, level): seconds pruning, fine-tuning and auditing one cell."""
    import torch

    from fairprune.demo import DEMO_LEVELS, demo_sweep_config, ensure_demo_model
    from fairprune.sweep import runner
    from fairprune.sweep.results import ResultsStore

    with tempfile.TemporaryDirectory(prefix="fairprune-bench-cells-") as tmp:
        models = models_dir or str(Path(tmp) / "models")
        t0 = time.perf_counter()
        record = ensure_demo_model(models)
        dense_s = time.perf_counter() - t0
        base = demo_sweep_config(record.path, pair=pair, seeds=(seed,))
        # one level at a time, both criteria: the two sides measured interleaved
        stages: dict = {}
        # where run_unit finds finetune and the context its dense outputs (once per sweep, for
        # the PW forms): timed in place, so the figures come from the sweep's own code path
        patched = []
        for fn, name in ((runner.run_unit, "finetune"), (runner.load_context, "dense_outputs")):
            globs = fn.__globals__
            if name in globs:
                patched.append((globs, name, globs[name]))
                globs[name] = _timed_stage(stages, name, globs[name])
        rows = []
        try:
            for level in levels or DEMO_LEVELS:
                for criterion in base.criteria:
                    config = replace(base, criteria=(criterion,), reductions=(level,))
                    marks: list[tuple[float, str]] = []
                    stages.clear()

                    def progress(done, total, info, marks=marks):
                        marks.append((time.perf_counter(), info))

                    store = ResultsStore(Path(tmp) / f"{criterion}-{level}.sqlite")
                    start = time.perf_counter()
                    runner.run_sweep(config, store=store, models_dir=Path(tmp) / "cells",
                                     progress=progress)  # fmt: skip
                    end = time.perf_counter()
                    t_prune = next(t for t, i in marks if i.startswith("pruning"))
                    t_ft = next(t for t, i in marks if i.startswith("fine-tuning"))
                    t_done = next(t for t, i in marks if i.startswith("done"))
                    cells = store.cells()
                    cell = cells[cells["criterion"] == criterion].iloc[0]
                    finetune_s = sum(stages.get("finetune", [])) or None
                    outputs_s = sum(stages.get("dense_outputs", []))  # a sweep's one-off
                    rows.append(
                        {
                            "criterion": criterion,
                            "loss": cell["loss"],
                            "level": level,
                            "flops_reduction": round(float(cell["flops_reduction"]), 4),
                            "setup_s": round(t_prune - start, 2),  # dense audit, first time only
                            "prune_s": round(t_ft - t_prune - outputs_s, 2),
                            "dense_outputs_s": round(outputs_s, 2),
                            "finetune_s": finetune_s and round(finetune_s, 2),
                            "audit_s": finetune_s and round(t_done - t_ft - finetune_s, 2),
                            # prune + fine-tune + audit, without the sweep's one-off dense outputs
                            "cell_s": round(t_done - t_prune - outputs_s, 2),
                            "total_s": round(end - start, 2),
                        }
                    )
        finally:
            for globs, name, fn in patched:
                globs[name] = fn
    per_seed = sum(r["cell_s"] for r in rows)
    return {
        "rows": rows,
        "dense_s": round(dense_s, 1),
        "per_seed_s": round(per_seed, 1),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def table_text(result: dict) -> str:
    """The measurement as a fixed-width table."""
    head = (
        f"{'criterion':<10} {'loss':<4} {'level':>8} {'reached':>8} {'prune s':>8} "
        f"{'finetune s':>10} {'audit s':>8} {'cell s':>7}"
    )
    lines = [head]
    for r in result["rows"]:
        ft = "-" if r["finetune_s"] is None else f"{r['finetune_s']:.1f}"
        au = "-" if r["audit_s"] is None else f"{r['audit_s']:.1f}"
        lines.append(
            f"{r['criterion']:<10} {r['loss']:<4} {r['level']:>8.2%} {r['flops_reduction']:>8.2%} "
            f"{r['prune_s']:>8.1f} {ft:>10} {au:>8} {r['cell_s']:>7.1f}"
        )
    lines.append(
        f"one seed of the demo (both arms, these levels): {result['per_seed_s']:.0f} s of cells; "
        f"dense model trained or found in {result['dense_s']:.0f} s; torch threads "
        f"{result['torch_threads']}, load average {result['load_average_1min']:.1f} on "
        f"{result['cpus']} cores"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--models-dir", default=None,
                        help="a model store holding (or to hold) the demo's dense model; "
                        "default: a temporary one (the dense model is trained first)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--criteria", default="taylor", choices=["taylor", "autobot"])
    parser.add_argument("--levels", type=float, nargs="+", default=None,
                        help="only these of the demo's levels (default: all five)")  # fmt: skip
    args = parser.parse_args(argv)
    result = measure(args.models_dir, seed=args.seed, pair=args.criteria, levels=args.levels)
    print(json.dumps(result) if args.json else table_text(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
