"""Predictions: computed once per (model, dataset split) and reused by every metric and chart.

Also the dense outputs the PW loss needs, and CPU latency per image.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fairprune.outcomes import Outcomes
from fairprune.utils import Progress, pick_device

log = logging.getLogger(__name__)

_CACHE_SIZE = 64


@dataclass(frozen=True)
class Predictions(Outcomes):
    """A model's outputs on one split, with the split's labels and groups."""

    logits: np.ndarray  # (N, K) raw outputs; K == 1 for single-logit binary
    probs: np.ndarray  # (N, C) class probabilities; C == 2 for single-logit binary
    y_pred: np.ndarray  # (N,) predicted class
    y_true: np.ndarray  # (N,) true class
    groups: np.ndarray  # (N,) group index into the bundle's group_names
    model_hash: str = ""  # content hash of the model that made them
    split_key: str = ""  # dataset fingerprint + split name


def logits_to_probs(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits → (N, C) probabilities; a single logit becomes [1 - σ, σ]."""
    t = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    if t.shape[1] == 1:
        s = torch.sigmoid(t[:, 0])
        return torch.stack([1 - s, s], dim=1).numpy()
    return torch.softmax(t, dim=1).numpy()


@torch.inference_mode()
def model_outputs(
    model: nn.Module,
    split,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Run ``model`` over every row of ``split`` in order.

    Returns
    -------
    torch.Tensor
        (N, K) float32 logits on the CPU, row-aligned with the split.
    """
    dev = pick_device(device if isinstance(device, str) or device is None else str(device))
    model = model.to(dev).eval()
    nhwc = dev.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules())
    if nhwc:  # channels-last convolutions run ~20% faster on CPU; a copy leaves the caller's alone
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    chunks = []
    total = len(split)
    done = 0
    for x, _y, _g, _idx in split.batches(batch_size, shuffle=False):
        x = x.to(dev, non_blocking=True)
        if nhwc and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out = model(x)  # (B, K)
        chunks.append(out.float().cpu())
        done += len(x)
        if progress is not None:
            progress(done, total, "predict")
    if not chunks:
        return torch.zeros(0, 1)
    return torch.cat(chunks).reshape(total, -1)


def dense_outputs(dense_model: nn.Module, split, *, batch_size: int = 256, device=None):
    """The dense model's (N, K) logits on ``split``, for the PW loss. Compute once and reuse."""
    return model_outputs(dense_model, split, batch_size=batch_size, device=device)


_memory: OrderedDict[tuple[str, str], Predictions] = OrderedDict()


def predict(
    model: nn.Module,
    split,
    *,
    batch_size: int = 256,
    device=None,
    model_hash: str = "",
    split_key: str = "",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Predictions:
    """Predictions of ``model`` on ``split``, cached per (model_hash, split_key).

    Parameters
    ----------
    model : nn.Module
    split : SplitData
    model_hash, split_key : str
        Cache key; with either empty nothing is cached.
    cache_dir : path, optional
        Also keep the predictions on disk (``.npz``, no pickle) so another process reuses them.

    Returns
    -------
    Predictions
    """
    key = (model_hash, split_key)
    cacheable = bool(model_hash and split_key)
    if cacheable and key in _memory:
        _memory.move_to_end(key)
        return _memory[key]
    disk = (
        Path(cache_dir) / f"{model_hash[:24]}-{split_key}.npz" if cacheable and cache_dir else None
    )
    logits = None
    if disk is not None and disk.exists():
        try:
            with np.load(disk, allow_pickle=False) as z:
                if len(z["logits"]) == len(split):
                    logits = z["logits"]
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable prediction cache %s", disk)
    if logits is None:
        logits = model_outputs(
            model, split, batch_size=batch_size, device=device, progress=progress
        )
        logits = logits.numpy()
        if disk is not None:
            disk.parent.mkdir(parents=True, exist_ok=True)
            tmp = disk.with_suffix(".tmp.npz")
            np.savez(tmp, logits=logits)
            tmp.replace(disk)
    probs = logits_to_probs(logits)
    preds = Predictions(
        logits=logits,
        probs=probs,
        y_pred=probs.argmax(axis=1).astype(np.int64),
        y_true=np.asarray(split.labels, dtype=np.int64),
        groups=np.asarray(split.groups, dtype=np.int64),
        model_hash=model_hash,
        split_key=split_key,
    )
    if cacheable:
        _memory[key] = preds
        while len(_memory) > _CACHE_SIZE:
            _memory.popitem(last=False)
    return preds


@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    input_size: int,
    *,
    batch_size: int = 1,
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
) -> float:
    """Median CPU latency per image in milliseconds.

    Parameters
    ----------
    model : nn.Module
    input_size : int
        Square side of the input.
    batch_size : int, default 1
        Images per forward call (1 = single-image serving latency).
    repeats, warmup : int
    threads : int, optional
        Torch CPU threads for the measurement (restored afterwards).

    Returns
    -------
    float
        Milliseconds per image (median over ``repeats`` forward calls).
    """
    model = model.to("cpu").eval()
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        x = torch.rand(batch_size, 3, input_size, input_size)
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return float(np.median(times) * 1000.0 / batch_size)


@torch.inference_mode()
def latency_table(
    runners: dict[str, nn.Module],
    input_size: int,
    *,
    batch_sizes: tuple[int, ...] = (1, 64),
    rounds: int = 7,
    min_images: int = 64,
    threads: int | None = None,
    seed: int = 0,
):
    """Median CPU latency per image of several models measured side by side, interleaved.

    Each round times every runner once per batch size, in turn, so background load on a shared
    machine falls on all of them alike; the medians over rounds are compared.

    Parameters
    ----------
    runners : dict
        ``{name: module}``, e.g. one model on several runtimes (``fairprune.nets.deploy``), or a
        dense and a pruned model.
    input_size : int
        Square side S of the ``(B, 3, S, S)`` inputs.
    batch_sizes : tuple of int
        Images per forward call.
    rounds : int
        Timed rounds (after one warm-up round).
    min_images : int
        Each timing runs enough calls to cover at least this many images (timer resolution).
    threads : int, optional
        Torch CPU threads during the measurement (restored afterwards); give onnxruntime
        sessions the same count when they are created.
    seed : int

    Returns
    -------
    pandas.DataFrame
        One row per (runner, batch): ``runtime``, ``batch``, ``ms_per_image`` (median wall
        clock), ``ms_per_image_low`` / ``ms_per_image_high`` (quartiles over rounds) and
        ``cpu_ms_per_image`` (median CPU time of the process: with one thread, the latency the
        model would have on an idle core, whatever else the machine is running).
    """
    import pandas as pd

    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    times: dict[tuple[str, int], list[float]] = {(n, b): [] for n in runners for b in batch_sizes}
    cpu: dict[tuple[str, int], list[float]] = {(n, b): [] for n in runners for b in batch_sizes}
    try:
        models = {n: m.to("cpu").eval() for n, m in runners.items()}
        inputs = {b: torch.rand(b, 3, input_size, input_size, generator=g) for b in batch_sizes}
        for r in range(rounds + 1):
            for b in batch_sizes:
                calls = max(1, -(-min_images // b))
                for name, model in models.items():
                    c0, t0 = time.process_time(), time.perf_counter()
                    for _ in range(calls):
                        model(inputs[b])
                    if r:  # round 0 warms caches, allocators and lazy initialisation up
                        times[(name, b)].append((time.perf_counter() - t0) * 1000 / (calls * b))
                        cpu[(name, b)].append((time.process_time() - c0) * 1000 / (calls * b))
    finally:
        torch.set_num_threads(old)
    rows = []
    for (name, b), ts in times.items():
        q1, med, q3 = np.percentile(ts, [25, 50, 75])
        rows.append(dict(runtime=name, batch=b, ms_per_image=float(med),
                         ms_per_image_low=float(q1), ms_per_image_high=float(q3),
                         cpu_ms_per_image=float(np.median(cpu[(name, b)]))))  # fmt: skip
    return pd.DataFrame(rows)
