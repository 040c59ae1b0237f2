"""Side-by-side speed ratios (not a test: machines here are shared and noisy).

    python bench/run.py            # a readable table
    python bench/run.py --json     # one JSON object

Each ratio is measured in one run, the two sides interleaved and repeated, medians compared:

- pw_over_ce_epoch: one PW fine-tuning epoch ÷ one cross-entropy epoch on the same pruned model
  (dense outputs cached once, as the sweep does). Target ≤ 1.05.
- eval_over_bare_forward: the audit's prediction throughput (``fairprune.evaluate.predict``, cache
  off) ÷ a bare ``torch.inference_mode()`` forward loop over the same model and the same batches.
  Target ≥ 0.9.
- pruned_speedup_75: CPU latency of the dense model ÷ the structured-pruned model at 75% FLOPs
  reduction (ideal: 1 / (1 − reduction) ≈ 4.1×), eager PyTorch at torch's default threads, at
  batch 64 (and ``_batch1``).
- speedup_75[RUNTIME][threads][batch]: the same ratio on every deployment runtime
  (``fairprune.nets.deploy``: eager torch; torch with batch norm folded and channels-last;
  onnxruntime with all graph optimisations, and with every fusion but without the blocked NCHWc
  layout ("extended")), at 1 and 2 intra-op threads, the dense and pruned models of one runtime
  measured interleaved in one table (``evaluate.latency_table``), one runtime at a time.
  ``deploy_speedup_64`` is the fastest dense runtime ÷ the fastest pruned runtime at batch 64
  per thread count (each model served by the runtime that suits it best; a same-runtime ratio
  can exceed the ideal when the runtime serves the dense model badly, e.g. eager torch at 2
  threads), ``best_fraction_of_ideal_64`` its best ÷ the ideal (target ≥ 0.75), and
  ``ms_per_image`` gives the absolute latencies behind every ratio. ``speedup_75_roundN`` and
  ``best_fraction_of_ideal_64_roundN`` (N = 8, 16): the same for the model pruned to the same
  target with channel counts kept at multiples of N (``--round-to N``; 16 floats fill an AVX-512
  register, 8 an AVX2 one); each ideal is taken from that model's own FLOPs reduction.
  ``--only speed`` runs just (c) and (d).
- ray_sweep_over_serial: wall time of an 8-cell demo-like sweep (SynthDerm, demo CNN, L1 × {CE, PW}
  × the demo's levels, the demo's fine-tuning) run on a local Ray with 2 workers ÷ the same sweep
  run serially in this process, Ray start-up and shut-down included, both from empty stores in
  this one run. Target ≤ 0.8 on 2 cores. ``--only ray`` runs just this; ``--only core`` skips it.
- meeting (``--only meeting``, ``bench/meeting.py``, its options after it): N dashboard sessions
  (1, 4, 8, then 8 on two server processes, then 8 while a sweep runs in the background at the
  dashboard's sweep niceness, on a copy of the store) asking for pages at the same moment over
  Streamlit's own websocket protocol, no browser; per page the seconds to the first chart and to
  the script's end, median / p90 / worst, a just-started server's first visits, one line per
  meeting against issue #23's targets, and the last Chromium four-session meeting
  (``bench/browser_meeting.py`` or the browser test, artifacts/browser_meeting.json) beside them.
- cells (``--only cells``, ``bench/cells.py``): seconds of one demo cell per FLOPs level —
  pruning, fine-tuning, audit — for Taylor + CE and PW-Taylor + PW side by side, and one seed's
  total; what decides how many seeds the demo affords.
- page_first_chart_s: seconds to the first chart per dashboard page, as measured by the browser
  test (tests/app/test_browser.py writes artifacts/page_timings.json), when present: opened in a
  new tab (``warm``, ``during_sweep``, ``after_sweep``) and switched to from the sidebar
  (``switch_*``), on Playwright's clock (until its polling sees the chart) and on the browser's
  own (``drawn_in_browser``: to the animation frame that draws the chart), beside the floor of a
  one-chart Streamlit page in a new tab (artifacts/floor_timing.json). ``bench/pages.py``
  compares the pages' new-tab times with the first-view pause off and as shipped.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig, TrainConfig  # noqa: E402
from fairprune.data import load_dataset  # noqa: E402
from fairprune.demo import DEMO_FINETUNE, DEMO_PW  # noqa: E402
from fairprune.evaluate import (  # noqa: E402
    dense_outputs,
    latency_table,
    measure_latency,
    predict,
)
from fairprune.nets.architectures import build_model  # noqa: E402
from fairprune.nets.checkpoint import save_dense_model  # noqa: E402
from fairprune.nets.deploy import ONNXRUNTIME, TORCH, TORCH_DEPLOY, torch_deploy  # noqa: E402
from fairprune.nets.onnx_export import export_onnx  # noqa: E402
from fairprune.nets.onnx_runtime import load_onnx  # noqa: E402
from fairprune.prune.registry import prune_model  # noqa: E402
from fairprune.train import finetune, train_dense  # noqa: E402


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


RUNTIME_VARIANTS = (  # (name, deploy runtime, onnxruntime optimisation level)
    (TORCH, TORCH, None),
    (TORCH_DEPLOY, TORCH_DEPLOY, None),
    (f"{ONNXRUNTIME} (all optimisations)", ONNXRUNTIME, "all"),
    (f"{ONNXRUNTIME} (extended, no NCHWc)", ONNXRUNTIME, "extended"),
)


def runtime_speedups(dense, pruned: dict, input_size: int, args) -> tuple[dict, dict]:
    """Dense ÷ pruned latency per pruned variant, runtime and thread count, and the milliseconds
    behind them: ``ratios[variant][clock][runtime][threads][batch]``. The models of one runtime
    and thread count are measured interleaved in one table; runtimes are measured one after the
    other, so one runtime's thread pool never competes with another's for the cores."""
    ratios: dict = {}
    ms: dict = {}
    models = {"dense": dense, **pruned}
    with tempfile.TemporaryDirectory(prefix="fairprune-bench-onnx-") as tmpdir:
        tmp = Path(tmpdir)
        onnx_files = {label: tmp / f"{label}.onnx" for label in models}
        for label, model in models.items():  # each model exported (and verified) once
            export_onnx(model, onnx_files[label], input_size=input_size)

        def runner(label: str, runtime: str, level: str | None, threads: int):
            if runtime == ONNXRUNTIME:
                return load_onnx(onnx_files[label], input_size=input_size, threads=threads,
                                 optimization=level)[0]  # fmt: skip
            if runtime == TORCH_DEPLOY:
                return torch_deploy(models[label])
            return copy.deepcopy(models[label]).cpu().eval()

        for threads in args.threads:
            for name, runtime, level in RUNTIME_VARIANTS:
                runners = {label: runner(label, runtime, level, threads) for label in models}
                table = latency_table(
                    runners, input_size, batch_sizes=(1, 64), rounds=max(args.repeats, 7),
                    min_images=128, threads=threads,
                )  # fmt: skip
                # onnxruntime sessions and their thread pools go before the next runtime
                del runners
                for clock, column in (("wall", "ms_per_image"), ("cpu", "cpu_ms_per_image")):
                    med = {(r.runtime, r.batch): getattr(r, column) for r in table.itertuples()}
                    per = {
                        lab: {str(b): round(med[(lab, b)], 4) for b in (1, 64)} for lab in models
                    }
                    ms.setdefault(clock, {}).setdefault(name, {})[str(threads)] = per
                    for lab in pruned:
                        ratios.setdefault(lab, {}).setdefault(clock, {}).setdefault(name, {})[
                            str(threads)
                        ] = {b: round(per["dense"][b] / per[lab][b], 3) for b in ("1", "64")}
    return ratios, ms


def ray_over_serial(bundle, dense, workers: int = 2) -> dict:
    """Wall times of the same 8-cell demo-like sweep serially and on a fresh local Ray."""
    from fairprune.sweep.distributed import run_sweep_ray
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        record = save_dense_model(
            dense, base / "dense", "dense", bundle=bundle, arch="demo_cnn",
            num_outputs=bundle.num_classes, config={"bench": True},
        )  # fmt: skip
        config = SweepConfig(
            dataset="synthderm", dense_model=record.path, criteria=("l1",), losses=("ce", "pw"),
            reductions=(0.5, 0.75, 0.9, 0.97), seeds=(0,), min_weight=DEMO_PW[0], gamma=DEMO_PW[1],
            finetune=DEMO_FINETUNE, name="bench",
        )  # fmt: skip
        t0 = time.perf_counter()
        run_sweep(config, store=ResultsStore(base / "serial.sqlite"), models_dir=base / "serial")
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()  # includes starting the local Ray and its workers
        run_sweep_ray(config, workers=workers, store=ResultsStore(base / "ray.sqlite"),
                      models_dir=base / "ray")  # fmt: skip
        ray_s = time.perf_counter() - t0
        cells = len(ResultsStore(base / "ray.sqlite").cells()) - 1
    return {
        "ray_sweep_over_serial": round(ray_s / serial, 4),
        "ray_sweep_s": round(ray_s, 1),
        "serial_sweep_s": round(serial, 1),
        "ray_sweep_cells": cells,
        "ray_workers": workers,
    }


def _page_lines(timings: dict) -> list[str]:
    if not any(isinstance(v, dict) for v in timings.values()):  # the old flat format
        timings = {"warm": timings}
    drawn = timings.get("drawn_in_browser", {})
    lines = []
    phases = (("warm", 1.0), ("during_sweep", 2.0), ("after_sweep", 2.0))
    for phase, target in (*phases, *((f"switch_{p}", t) for p, t in phases)):
        how = "sidebar switch" if phase.startswith("switch_") else "new tab"
        for page, secs in timings.get(phase, {}).items():
            line = (f"first chart, {how:<14} {phase.removeprefix('switch_'):<12} {page:<20} "
                    f"Playwright {secs:5.2f} s ({'ok' if secs <= target else 'over'})")  # fmt: skip
            own = drawn.get(phase, {}).get(page)
            if own is not None:
                line += f", drawn in the browser {own:5.2f} s ({'ok' if own <= target else 'over'})"
            n = len(timings.get("samples", {}).get(phase, {}).get(page, []))
            lines.append(f"{line}; target ≤ {target:g} s" + (f" (median of {n})" if n > 1 else ""))
    floor = timings.get("floor")
    if floor:
        lines.append(
            "the floor, a one-chart Streamlit page in a new tab (tests/app/one_chart_app.py): "
            f"Playwright {statistics.median(floor['playwright']):.2f} s, drawn in the browser "
            f"{statistics.median(floor['drawn_in_browser']):.2f} s (medians of "
            f"{len(floor['playwright'])})"
        )
    if "sweep_still_running_after_switches" in timings:
        lines.append("the sweep was still running when the page switches during it ended: "
                     f"{timings['sweep_still_running_after_switches']}")  # fmt: skip
    for who, secs in timings.get("cold_browser", {}).items():
        lines.append(f"first page in a browser with an empty cache (session {who}): Playwright "
                     f"{secs['playwright']:.2f} s, drawn in the browser "
                     f"{secs['drawn_in_browser']:.2f} s (Streamlit's front end downloaded)")  # fmt: skip
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads to compare"
    )
    parser.add_argument("--only", choices=["all", "core", "ray", "speed", "cells", "meeting"],
                        default="all",
                        help="core: the training/eval/latency ratios; ray: the Ray sweep ratio; "
                        "speed: the pruned speed-ups on every runtime only; cells: the cost of "
                        "one demo cell per level, Taylor + CE beside PW-Taylor + PW "
                        "(bench/cells.py); meeting: N dashboard sessions clicking at once "
                        "(bench/meeting.py, whose options follow)")  # fmt: skip
    args, rest = parser.parse_known_args()
    if args.only == "meeting":
        from bench.meeting import main as meeting_main

        return meeting_main(rest + (["--json"] if args.json else []))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.speed_only = args.only == "speed"
    if args.only == "cells":
        from bench.cells import main as cells_main

        return cells_main(["--json"] if args.json else [])

    bundle = load_dataset("synthderm")
    train, test = bundle.splits["train"], bundle.splits["test"]
    dense = build_model("demo_cnn", bundle.num_classes, bundle.input_size)
    train_dense(dense, train, TrainConfig(epochs=1, seed=0))  # weights only need to be sensible
    if args.only == "ray":
        result = ray_over_serial(bundle, dense)
        print(json.dumps(result) if args.json else _ray_line(result))
        return 0
    pruned = prune_model(
        dense, PruneConfig(criterion="l1", target_reduction=0.75), input_size=bundle.input_size
    )
    # the same target with channel counts kept at multiples of 8 and of 16 (`--round-to N`):
    # 16 floats fill an AVX-512 register, 8 an AVX2 one
    aligned = {
        n: prune_model(
            dense,
            PruneConfig(criterion="l1", target_reduction=0.75, round_to=n),
            input_size=bundle.input_size,
        )
        for n in ROUND_TO
    }
    logits = dense_outputs(dense, train)  # (N, K), cached once as the sweep does

    pw_over_ce = eval_over_bare = None
    if not args.speed_only:
        # (a) PW vs CE epoch, interleaved
        ce_times, pw_times = [], []
        base = FinetuneConfig(epochs=1, device="cpu")
        for _ in range(args.repeats):
            for loss, times in (("ce", ce_times), ("pw", pw_times)):
                model = copy.deepcopy(pruned.model)
                cfg = replace(base, loss=loss)
                times.append(
                    _timed(lambda m=model, c=cfg: finetune(m, train, c, dense_logits=logits))
                )
        pw_over_ce = statistics.median(pw_times) / statistics.median(ce_times)

        # (b) audit prediction vs bare forward loop over the same batches
        model = pruned.model.eval()

        @torch.inference_mode()
        def bare():
            for x, _y, _g, _i in test.batches(256):
                model(x)

        def audited():
            predict(model, test, batch_size=256)  # empty model_hash: no cache, full work

        bare_t, pred_t = [], []
        for _ in range(args.repeats):
            bare_t.append(_timed(bare))
            pred_t.append(_timed(audited))
        eval_over_bare = statistics.median(bare_t) / statistics.median(pred_t)  # throughput ratio

    # (c) pruned speed-up at 75% FLOPs reduction: eager torch at its default threads
    speed = {}
    for batch in (1, 64):
        d, p = [], []
        for _ in range(args.repeats):
            d.append(measure_latency(dense, bundle.input_size, batch_size=batch, repeats=20))
            p.append(measure_latency(pruned.model, bundle.input_size, batch_size=batch, repeats=20))
        speed[batch] = statistics.median(d) / statistics.median(p)
    ideal = 1 / (1 - pruned.flops_reduction)

    # (d) the same on every deployment runtime and thread count, dense and pruned interleaved
    variants = {"pruned": pruned, **{f"pruned_round{n}": aligned[n] for n in ROUND_TO}}
    ratios, ms = runtime_speedups(
        dense, {k: v.model for k, v in variants.items()}, bundle.input_size, args
    )

    def deploy_speedup(label: str) -> dict:
        """Per clock and thread count: the fastest dense runtime ÷ the fastest pruned runtime
        (each model on the runtime that serves it best, batch 64). A same-runtime ratio can
        exceed the ideal when that runtime serves the dense model badly (eager torch at 2
        threads here), so the target is judged on this one."""
        out: dict = {}
        for clock, per_rt in ms.items():
            for threads in per_rt[next(iter(per_rt))]:
                d = min(rt[threads]["dense"]["64"] for rt in per_rt.values())
                p = min(rt[threads][label]["64"] for rt in per_rt.values())
                out.setdefault(clock, {})[threads] = round(d / p, 3)
        return out

    deploy = {label: deploy_speedup(label) for label in variants}

    aligned_entries: dict = {}
    for n in ROUND_TO:
        label = f"pruned_round{n}"
        aligned_entries.update(_aligned_entries(n, aligned[n], ratios[label], deploy[label]))
    result = {
        "pw_over_ce_epoch": pw_over_ce and round(pw_over_ce, 4),
        "eval_over_bare_forward": eval_over_bare and round(eval_over_bare, 4),
        "pruned_speedup_75": round(speed[64], 3),
        "pruned_speedup_75_batch1": round(speed[1], 3),
        "pruned_flops_reduction": round(pruned.flops_reduction, 4),
        "ideal_speedup_75": round(ideal, 3),
        "speedup_75": ratios["pruned"],
        "deploy_speedup_64": deploy["pruned"],
        "best_fraction_of_ideal_64": best_fraction(deploy["pruned"], ideal),
        **aligned_entries,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "ms_per_image": ms,
        "torch_threads": torch.get_num_threads(),
    }
    if args.only == "all":
        result.update(ray_over_serial(bundle, dense))
    timings = ROOT / "artifacts" / "page_timings.json"
    if timings.exists():
        result["page_first_chart_s"] = json.loads(timings.read_text())
        floor = ROOT / "artifacts" / "floor_timing.json"
        if floor.exists():
            result["page_first_chart_s"]["floor"] = json.loads(floor.read_text())
    if args.json:
        print(json.dumps(result))
    else:
        if not args.speed_only:
            print(
                f"PW ÷ CE fine-tuning epoch time       {result['pw_over_ce_epoch']:.3f}  "
                "(target ≤ 1.05)"
            )
            print(
                f"audit ÷ bare forward throughput      {result['eval_over_bare_forward']:.3f}  "
                "(target ≥ 0.9)"
            )
        print(
            f"pruned speed-up at {result['pruned_flops_reduction']:.1%} FLOPs reduction: "
            f"{result['pruned_speedup_75']:.2f}× at batch 64, "
            f"{result['pruned_speedup_75_batch1']:.2f}× at batch 1 (ideal {result['ideal_speedup_75']:.2f}×)"
        )
        print(
            f"the same on each runtime, dense ÷ pruned (ideal {ideal:.2f}×), wall clock | CPU "
            f"time (load average {result['load_average_1min']:.1f} on {os.cpu_count()} cores):"
        )
        _print_runtimes(ratios["pruned"], ms)
        _print_deploy("fastest dense runtime ÷ fastest pruned runtime", deploy["pruned"],
                      result["best_fraction_of_ideal_64"])  # fmt: skip
        for n in ROUND_TO:
            print(
                f"with channels rounded to multiples of {n} (--round-to {n}; "
                f"{result[f'round{n}_flops_reduction']:.1%} FLOPs reduction, ideal "
                f"{result[f'ideal_speedup_75_round{n}']:.2f}×, channels "
                f"{result[f'round{n}_channels']}):"
            )
            _print_runtimes(ratios[f"pruned_round{n}"])
            _print_deploy(f"rounded to {n}, fastest dense ÷ fastest pruned",
                          deploy[f"pruned_round{n}"],
                          result[f"best_fraction_of_ideal_64_round{n}"])  # fmt: skip
        if "ray_sweep_over_serial" in result:
            print(_ray_line(result))
        for line in _page_lines(result.get("page_first_chart_s", {})):
            print(line)
    return 0


ROUND_TO = (8, 16)  # channel multiples compared with the plain pruned model


def best_fraction(speedups: dict, ideal_x: float) -> dict:
    """Per clock: the best speed-up over the thread counts ÷ the ideal."""
    return {clock: round(max(v.values()) / ideal_x, 3) for clock, v in speedups.items()}


def _aligned_entries(n: int, result, ratios: dict, deploy: dict) -> dict:
    """The JSON entries of the model pruned with ``round_to=n``."""
    ideal_n = 1 / (1 - result.flops_reduction)
    return {
        f"round{n}_flops_reduction": round(result.flops_reduction, 4),
        f"round{n}_channels": [
            m.out_channels for m in result.model.modules() if isinstance(m, torch.nn.Conv2d)
        ],
        f"ideal_speedup_75_round{n}": round(ideal_n, 3),
        f"speedup_75_round{n}": ratios,
        f"deploy_speedup_64_round{n}": deploy,
        f"best_fraction_of_ideal_64_round{n}": best_fraction(deploy, ideal_n),
    }


def _print_runtimes(ratios: dict, ms: dict | None = None) -> None:
    """One line per runtime and thread count: dense ÷ pruned, wall clock | CPU time."""
    for name, per_threads in ratios["wall"].items():
        for threads, v in per_threads.items():
            c = ratios["cpu"][name][threads]
            dense = ""
            if ms is not None:
                dense = f"   (dense {ms['wall'][name][threads]['dense']['64']:.3f} ms/image at 64)"
            print(
                f"  {name:<34} {threads} thread{'s' if threads != '1' else ' '}  "
                f"batch 64 {v['64']:.2f}× | {c['64']:.2f}×   batch 1 {v['1']:.2f}× | "
                f"{c['1']:.2f}×{dense}"
            )


def _print_deploy(what: str, deploy: dict, frac: dict) -> None:
    print(
        f"{what} at batch 64: "
        + ", ".join(f"{t} thread(s) {v:.2f}×" for t, v in deploy["wall"].items())
        + f"; best ÷ ideal: {frac['wall']:.2f} wall clock, {frac['cpu']:.2f} CPU time "
        "(target ≥ 0.75)"
    )


def _ray_line(result: dict) -> str:
    return (
        f"Ray ({result['ray_workers']} workers) ÷ serial sweep wall time "
        f"{result['ray_sweep_over_serial']:.3f}  (target ≤ 0.8; {result['ray_sweep_cells']} "
        f"cells: {result['ray_sweep_s']:.0f} s vs {result['serial_sweep_s']:.0f} s, Ray "
        "start-up included)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
