"""ONNX out: export any stored model, verified against onnxruntime before the file is kept.

``export_onnx`` writes opset-18 ONNX with a dynamic batch (batch norm folded into the convs by the
exporter, as it is for deployment), and checks it against onnxruntime before the file is kept:
the largest difference from the PyTorch model's logits over random batches of 1 and 3 must be at
most ``VERIFY_ATOL`` (1e-4). The dynamo exporter (``torch.export`` + onnxscript) is tried first;
a model it cannot trace goes through the TorchScript exporter. What made the model (architecture,
dataset, criterion, FLOPs reduction, the checkpoint's hash) travels in the file's
``metadata_props`` under ``fairprune.*`` keys (``record_metadata``).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.imports import load_model
from fairprune.nets.manifest import ModelRecord
from fairprune.nets.onnx_runtime import META_PREFIX, ort_session, refuse_onnx

log = logging.getLogger(__name__)

ONNX_OPSET = 18  # default-domain opset of exported models (17 is the oldest we accept)
VERIFY_ATOL = 1e-4  # largest |logit difference| between PyTorch and onnxruntime at export
VERIFY_BATCHES = (1, 3)  # batch sizes checked at export: the batch dimension must be dynamic
EXPORTERS = ("dynamo", "torchscript")  # torch.onnx.export(dynamo=True) first, then the legacy one

ERR_EXPORT_MISMATCH = (
    "the ONNX export differs from the PyTorch model by {diff:.2e} (over {atol:.0e}) on a batch of "
    "{batch}; keep auditing the PyTorch checkpoint (an operator is computed differently)."
)

ERR_EXPORT_FAILED = "cannot export this {arch} to ONNX ({reason}); audit the PyTorch checkpoint."

ERR_OUT_SUFFIX = "{path}: the output file must end in .onnx."


@dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` wrote and how closely onnxruntime reproduces the PyTorch model."""

    path: str  # the .onnx file
    exporter: str  # "dynamo" or "torchscript"
    opset: int  # default-domain opset
    max_abs_diff: float  # largest |PyTorch − onnxruntime| logit over the verification batches
    batches: tuple[int, ...]  # batch sizes verified (dynamic batch)
    file_size: int  # bytes written


def _export_proto(model: nn.Module, example: torch.Tensor, exporter: str, opset: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation and tracer chatter: the library never prints
        if exporter == "dynamo":
            program = torch.onnx.export(
                model, (example,), input_names=["input"], output_names=["logits"],
                opset_version=opset, dynamo=True, verbose=False, optimize=True,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1 << 16)},),
            )  # fmt: skip
            return program.model_proto
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "m.onnx"
            torch.onnx.export(
                model, (example,), str(out), input_names=["input"], output_names=["logits"],
                opset_version=opset, dynamo=False, do_constant_folding=True,
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )  # fmt: skip
            return onnx.load(str(out))


def _verify(model: nn.Module, session, input_size: int, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in VERIFY_BATCHES:
        x = torch.rand(batch, 3, input_size, input_size, generator=g)  # (B, 3, S, S) in [0, 1]
        with torch.inference_mode():
            ref = model(x).float().numpy()  # (B, K)
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        got = np.asarray(got, dtype=np.float32).reshape(ref.shape)
        diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
        if not np.isfinite(diff) or diff > VERIFY_ATOL:
            raise FairpruneError(
                ERR_EXPORT_MISMATCH.format(diff=diff, atol=VERIFY_ATOL, batch=batch)
            )
        worst = max(worst, diff)
    return worst


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    input_size: int,
    metadata: dict | None = None,
    exporter: str = "dynamo",
    opset: int = ONNX_OPSET,
    seed: int = 0,
) -> ExportReport:
    """Export ``model`` to ONNX and verify it against onnxruntime before keeping the file.

    Parameters
    ----------
    model : nn.Module
        Dense or pruned, on any device (exported from a CPU copy in eval mode).
    path : path
        ``FILE.onnx``; replaced only once the export is verified.
    input_size : int
        Square side S of the ``N×3×S×S`` input (the batch N stays dynamic).
    metadata : dict, optional
        Stored as ``fairprune.KEY`` metadata (architecture, dataset, criterion, ...).
    exporter : {"dynamo", "torchscript"}
        Tried first; the other one is the fallback when it fails.
    opset : int, default 18
    seed : int
        Seed of the random verification batches.

    Returns
    -------
    ExportReport
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise FairpruneError(ERR_OUT_SUFFIX.format(path=path))
    model = copy.deepcopy(model).cpu().eval()
    example = torch.rand(2, 3, input_size, input_size)  # batch 2: a batch of 1 gets specialised
    order = [exporter] + [e for e in EXPORTERS if e != exporter]
    arch = str((metadata or {}).get("arch", type(model).__name__))
    proto, used, reason = None, "", ""
    for name in order:
        try:
            proto = _export_proto(model, example, name, opset)
            used = name
            break
        except Exception as exc:  # each exporter raises its own types; the next one is tried
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            log.info("the %s exporter failed on %s: %s", name, arch, reason)
    if proto is None:
        raise FairpruneError(ERR_EXPORT_FAILED.format(arch=arch, reason=reason))
    meta = {
        "exporter": used,
        "input_size": str(input_size),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: str(v) for k, v in (metadata or {}).items()},
    }
    del proto.metadata_props[:]
    for k, v in sorted(meta.items()):
        proto.metadata_props.add(key=META_PREFIX + k, value=v)
    big = proto.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: weights go beside the file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        staged = tmp / path.name  # the final name: external data is referenced by file name
        onnx.save_model(proto, str(staged), save_as_external_data=big,
                        location=f"{path.name}.data" if big else None)  # fmt: skip
        diff = _verify(model, ort_session(str(staged), None), input_size, seed)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = path.stat().st_size
    if big:
        size += (path.parent / f"{path.name}.data").stat().st_size
    return ExportReport(str(path), used, opset, diff, VERIFY_BATCHES, int(size))


def record_metadata(record: ModelRecord) -> dict:
    """The ``fairprune.*`` metadata an export of a stored model carries."""
    return {
        "source": record.name,
        "sha256": record.sha256,
        "arch": record.arch,
        "kind": record.kind,
        "input_size": record.input_size,
        "num_outputs": record.num_outputs,
        "dataset": record.dataset,
        "dataset_fingerprint": record.dataset_fingerprint,
        "criterion": record.criterion,
        "loss": record.loss,
        "target_reduction": record.target_reduction,
        "flops_reduction": record.flops_reduction,
    }


def export_checkpoint(
    source: str | Path,
    out: str | Path,
    *,
    arch: str | None = None,
    input_size: int | None = None,
    exporter: str = "dynamo",
) -> ExportReport:
    """Export a stored checkpoint (or a ``.pt``/``.pth`` state dict) to verified ONNX.

    Parameters
    ----------
    source : path
        ``NAME.safetensors``/``NAME.json``, or a state dict with ``arch``.
    out : path
        ``FILE.onnx``.
    arch : str, optional
        For a state dict.
    input_size : int, optional
        For a state dict (default: the architecture's usual side); ours record theirs.
    exporter : {"dynamo", "torchscript"}

    Returns
    -------
    ExportReport
    """
    refuse_onnx(source)
    model, record = load_model(source, arch=arch, input_size=input_size)
    return export_onnx(
        model, out, input_size=record.input_size, metadata=record_metadata(record),
        exporter=exporter,
    )  # fmt: skip
