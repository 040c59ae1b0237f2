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
  reduction (ideal: 4×), at batch 1 and at batch 64.
- page_first_chart_s: seconds from navigation to the first chart per dashboard page, as measured by
  the browser test (tests/test_browser.py writes artifacts/page_timings.json), when present.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fairprune.config import FinetuneConfig, PruneConfig, TrainConfig  # noqa: E402
from fairprune.data import load_dataset  # noqa: E402
from fairprune.evaluate import dense_outputs, measure_latency, predict  # noqa: E402
from fairprune.nets.architectures import build_model  # noqa: E402
from fairprune.prune.targeting import prune_model  # noqa: E402
from fairprune.train import finetune, train_dense  # noqa: E402


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    bundle = load_dataset("synthderm")
    train, test = bundle.splits["train"], bundle.splits["test"]
    dense = build_model("demo_cnn", bundle.num_classes, bundle.input_size)
    train_dense(dense, train, TrainConfig(epochs=1, seed=0))  # weights only need to be sensible
    pruned = prune_model(
        dense, PruneConfig(criterion="l1", target_reduction=0.75), input_size=bundle.input_size
    )
    logits = dense_outputs(dense, train)  # (N, K), cached once as the sweep does

    # (a) PW vs CE epoch, interleaved
    ce_times, pw_times = [], []
    base = FinetuneConfig(epochs=1, device="cpu")
    for _ in range(args.repeats):
        for loss, times in (("ce", ce_times), ("pw", pw_times)):
            model = copy.deepcopy(pruned.model)
            cfg = replace(base, loss=loss)
            times.append(_timed(lambda m=model, c=cfg: finetune(m, train, c, dense_logits=logits)))
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

    # (c) pruned speed-up at 75% FLOPs reduction
    speed = {}
    for batch in (1, 64):
        d, p = [], []
        for _ in range(args.repeats):
            d.append(measure_latency(dense, bundle.input_size, batch_size=batch, repeats=20))
            p.append(measure_latency(pruned.model, bundle.input_size, batch_size=batch, repeats=20))
        speed[batch] = statistics.median(d) / statistics.median(p)

    result = {
        "pw_over_ce_epoch": round(pw_over_ce, 4),
        "eval_over_bare_forward": round(eval_over_bare, 4),
        "pruned_speedup_75": round(speed[64], 3),
        "pruned_speedup_75_batch1": round(speed[1], 3),
        "pruned_flops_reduction": round(pruned.flops_reduction, 4),
        "ideal_speedup_75": round(1 / (1 - pruned.flops_reduction), 3),
        "torch_threads": torch.get_num_threads(),
    }
    timings = ROOT / "artifacts" / "page_timings.json"
    if timings.exists():
        result["page_first_chart_s"] = json.loads(timings.read_text())
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"PW ÷ CE fine-tuning epoch time       {result['pw_over_ce_epoch']:.3f}  (target ≤ 1.05)"
        )
        print(
            f"audit ÷ bare forward throughput      {result['eval_over_bare_forward']:.3f}  (target ≥ 0.9)"
        )
        print(
            f"pruned speed-up at {result['pruned_flops_reduction']:.1%} FLOPs reduction: "
            f"{result['pruned_speedup_75']:.2f}× at batch 64, "
            f"{result['pruned_speedup_75_batch1']:.2f}× at batch 1 (ideal {result['ideal_speedup_75']:.2f}×)"
        )
        if "page_first_chart_s" in result:
            for page, secs in result["page_first_chart_s"].items():
                print(f"first chart on {page:<28} {secs:.2f} s (target ≤ 2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
