"""ONNX in and out: export any stored model, audit any ``.onnx`` classifier through onnxruntime.

Out: ``export_onnx`` writes opset-18 ONNX with a dynamic batch (batch norm folded into the convs by
the exporter, as it is for deployment), and checks it against onnxruntime before the file is
kept: the largest difference from the PyTorch model's logits over random batches of 1 and 3 must be
at most ``VERIFY_ATOL`` (1e-4). The dynamo exporter (``torch.export`` + onnxscript) is tried first;
a model it cannot trace goes through the TorchScript exporter. What made the model (architecture,
dataset, criterion, FLOPs reduction, the checkpoint's hash) travels in the file's
``metadata_props`` under ``fairprune.*`` keys.

In: ``load_onnx`` validates the file (``onnx_check.read_onnx``) and wraps an onnxruntime session
in ``OnnxClassifier``, an ``nn.Module`` without parameters, so ``fairprune.evaluate.predict`` and
every audit run on it unchanged. An ONNX model is audit-only: it has no PyTorch layers to prune.
Its ``ModelRecord`` has ``kind == "onnx"`` and ``arch == "onnx"``, a name ending in ``.onnx``.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.imports import load_model
from fairprune.nets.manifest import ERR_CLASSES, ModelRecord
from fairprune.nets.onnx_check import (
    MAX_ONNX_BYTES,
    OnnxInfo,
    check_inferred_shapes,
    macs_params,
    read_onnx,
)

log = logging.getLogger(__name__)

ONNX_OPSET = 18  # default-domain opset of exported models (17 is the oldest we accept)
VERIFY_ATOL = 1e-4  # largest |logit difference| between PyTorch and onnxruntime at export
VERIFY_BATCHES = (1, 3)  # batch sizes checked at export: the batch dimension must be dynamic
EXPORTERS = ("dynamo", "torchscript")  # torch.onnx.export(dynamo=True) first, then the legacy one
MAX_UPLOAD_ONNX_BYTES = 512 * 2**20  # uploads above this go into the models folder by path
_META = "fairprune."  # metadata_props prefix

ERR_ONNX_INPUT_SIZE = (
    "{path}: the model takes {want}×{want} px images but the dataset gives {got}×{got}; load the "
    "dataset with image_size={want} (--option image_size={want})."
)

ERR_ONNX_RUNTIME = (
    "{path}: onnxruntime cannot run it ({reason}); export it again with standard ONNX operators "
    "(opset 17 or newer)."
)

ERR_ONNX_OLD_OPSET = (
    "{path}: opset {opset} is older than 17; export it again with opset_version=18."
)

ERR_NOT_PRUNABLE = (
    "{path} is an ONNX model: audit only, it cannot be pruned or fine-tuned; use the PyTorch "
    "checkpoint it was exported from."
)

ERR_EXPORT_MISMATCH = (
    "the ONNX export differs from the PyTorch model by {diff:.2e} (over {atol:.0e}) on a batch of "
    "{batch}; keep auditing the PyTorch checkpoint (an operator is computed differently)."
)

ERR_EXPORT_FAILED = "cannot export this {arch} to ONNX ({reason}); audit the PyTorch checkpoint."

ERR_OUT_SUFFIX = "{path}: the output file must end in .onnx."

ERR_ONNX_UPLOAD_BIG = (
    "the upload is {size:.0f} MB, over the {cap:.0f} MB limit; copy the .onnx into the models "
    "folder and add it by path."
)


@dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` wrote and how closely onnxruntime reproduces the PyTorch model."""

    path: str  # the .onnx file
    exporter: str  # "dynamo" or "torchscript"
    opset: int  # default-domain opset
    max_abs_diff: float  # largest |PyTorch − onnxruntime| logit over the verification batches
    batches: tuple[int, ...]  # batch sizes verified (dynamic batch)
    file_size: int  # bytes written


# onnxruntime graph optimisation levels by name; "all" adds layout changes (NCHWc) to "extended"
OPTIMIZATION_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def _ort_session(model: bytes | str, threads: int | None, optimization: str = "all"):
    import onnxruntime as ort  # half a second to import: only when a model is opened

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization]
    )
    so.intra_op_num_threads = int(threads or torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only: the library never prints
    # idle intra-op threads sleep instead of spinning: a spinning pool steals the cores from
    # whatever runs next in this process (another session, torch, a dashboard page), which made
    # side-by-side latencies wrong by up to 3× at 2 threads on 2 cores
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


class OnnxClassifier(nn.Module):
    """An onnxruntime session behind the ``nn.Module`` interface: ``(N,3,S,S) → (N,K)`` logits.

    It holds no parameters and cannot be trained or pruned; ``to()``, ``eval()`` and
    ``copy.deepcopy`` are harmless (the session is shared, it is read-only).
    """

    def __init__(self, session, info: OnnxInfo, *, num_outputs: int, threads: int | None):
        super().__init__()
        self.session = session
        self.info = info
        self.num_outputs = num_outputs  # K
        self.threads = threads  # onnxruntime intra-op threads

    def __deepcopy__(self, memo):
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = self.info.input_side
        if side is not None and tuple(x.shape[2:]) != (side, side):
            raise FairpruneError(
                ERR_ONNX_INPUT_SIZE.format(path=self.info.path.name, want=side, got=x.shape[-1])
            )
        feed = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())  # (N, 3, S, S)
        try:
            (out,) = self.session.run([self.info.output_name], {self.info.input_name: feed})
        except Exception as exc:  # onnxruntime's errors have no common base class
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise FairpruneError(
                ERR_ONNX_RUNTIME.format(path=self.info.path.name, reason=reason)
            ) from None
        out = torch.from_numpy(np.asarray(out, dtype=np.float32)).reshape(len(x), -1)  # (N, K)
        return out.to(x.device)


def _meta_int(meta: dict, key: str, lo: int, hi: int) -> int | None:
    try:
        v = int(meta.get(_META + key, ""))
    except ValueError:
        return None
    return v if lo <= v <= hi else None


def _meta_float(meta: dict, key: str) -> float:
    try:
        v = float(meta.get(_META + key, ""))
    except ValueError:
        return 0.0
    return v if 0.0 <= v <= 1.0 else 0.0


def _record(info: OnnxInfo, side: int, num_outputs: int, macs: int, params: int) -> ModelRecord:
    meta = info.metadata

    def text(key: str, default: str = "") -> str:
        return str(meta.get(_META + key, default))[:200]

    created = text("created") or datetime.fromtimestamp(info.path.stat().st_mtime, UTC).isoformat(
        timespec="seconds"
    )
    return ModelRecord(
        name=info.path.name,
        arch="onnx",
        num_outputs=num_outputs,
        num_classes=2 if num_outputs == 1 else num_outputs,
        input_size=side,
        kind="onnx",
        dataset=text("dataset"),
        dataset_fingerprint=text("dataset_fingerprint"),
        parent=text("sha256") or None,
        criterion=text("criterion", "onnx"),
        loss=text("loss", "onnx"),
        target_reduction=_meta_float(meta, "target_reduction"),
        flops_reduction=_meta_float(meta, "flops_reduction"),
        macs=macs,
        params=params,
        config={
            "onnx": {
                "opset": info.opset,
                "producer": info.producer,
                "exporter": text("exporter"),
                "source": text("source"),
                "source_arch": text("arch"),
                "source_kind": text("kind"),
                "static_input": info.input_side is not None,
            }
        },
        sha256=info.sha256,
        file_size=info.file_size,
        created=created,
        path=str(info.path),
    )


def load_onnx(
    path: str | Path,
    *,
    num_classes: int | None = None,
    input_size: int | None = None,
    threads: int | None = None,
    optimization: str = "all",
) -> tuple[OnnxClassifier, ModelRecord]:
    """Validate an ``.onnx`` classifier and open it in onnxruntime (CPU).

    Parameters
    ----------
    path : path
        The ``.onnx`` file (external weights beside it, in the same folder).
    num_classes : int, optional
        The dataset's classes; the model's outputs must match (one output = binary).
    input_size : int, optional
        The dataset's image side; must equal the model's if the model fixes it. Needed when the
        model's side is symbolic and the file does not record it.
    threads : int, optional
        onnxruntime intra-op threads (default: torch's thread count).
    optimization : {"all", "extended", "basic", "disabled"}
        onnxruntime's graph optimisation level.

    Returns
    -------
    (OnnxClassifier, ModelRecord)
        The model, ready for ``fairprune.evaluate.predict``, and its record (``kind == "onnx"``).
    """
    proto, info = read_onnx(path)
    if info.opset < 17:
        raise FairpruneError(ERR_ONNX_OLD_OPSET.format(path=info.path, opset=info.opset))
    side = info.input_side
    if side is not None and input_size is not None and side != input_size:
        raise FairpruneError(ERR_ONNX_INPUT_SIZE.format(path=info.path, want=side, got=input_size))
    side = side or input_size or _meta_int(info.metadata, "input_size", 8, 4096) or 224
    check_inferred_shapes(proto, info.input_name, side, info.path)
    try:
        # the session gets the bytes we validated, never a path to re-read or resolve; only a
        # model over protobuf's 2 GB limit is opened from its (validated) folder
        small = proto.ByteSize() < MAX_ONNX_BYTES
        source = proto.SerializeToString() if small else str(info.path)
        session = _ort_session(source, threads, optimization)
    except Exception as exc:  # onnxruntime's errors have no common base class
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise FairpruneError(ERR_ONNX_RUNTIME.format(path=info.path, reason=reason)) from None
    model = OnnxClassifier(session, info, num_outputs=info.num_outputs or 0, threads=threads)
    probe = model(torch.zeros(1, 3, side, side))  # (1, K): a dry run finds runtime problems now
    k = int(probe.shape[1])
    model.num_outputs = k
    if info.num_outputs not in (None, k) or not 1 <= k <= 1 << 16:
        raise FairpruneError(
            ERR_ONNX_RUNTIME.format(path=info.path, reason=f"it gave {k} outputs per image")
        )
    macs, params = macs_params(proto, info.input_name, side)
    record = _record(info, side, k, macs, params)
    if num_classes is not None and record.num_classes != num_classes:
        raise FairpruneError(ERR_CLASSES.format(path=info.path, got=k, want=num_classes))
    return model.eval(), record


_records: OrderedDict[tuple, ModelRecord] = OrderedDict()
_RECORDS_KEPT = 256


def onnx_record(path: str | Path) -> ModelRecord:
    """The record of an ``.onnx`` file (validated, opened once; cached by size and mtime).

    Parameters
    ----------
    path : path

    Returns
    -------
    ModelRecord
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _records:
        _records[key] = load_onnx(path, threads=1)[1]
        while len(_records) > _RECORDS_KEPT:
            _records.popitem(last=False)
    return _records[key]


def list_onnx(directory: str | Path) -> list[ModelRecord]:
    """Every valid ``.onnx`` classifier in ``directory``; broken ones are logged and skipped.

    Parameters
    ----------
    directory : path

    Returns
    -------
    list of ModelRecord
        Sorted by name; ``kind == "onnx"``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob("*.onnx")):
        try:
            out.append(onnx_record(path))
        except (FairpruneError, OSError) as exc:
            log.warning("skipping %s: %s", path, exc)
    return out


def load_for_audit(
    path: str | Path,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
) -> tuple[nn.Module, ModelRecord]:
    """Any model fairprune can audit: ours, a ``.pt``/``.pth`` state dict, or an ``.onnx`` file.

    Parameters
    ----------
    path : path
    arch : str, optional
        For ``.pt``/``.pth`` state dicts.
    num_classes, input_size : int, optional
        The dataset's; checked against the model.

    Returns
    -------
    (nn.Module, ModelRecord)
    """
    if Path(path).suffix.lower() == ".onnx":
        return load_onnx(path, num_classes=num_classes, input_size=input_size)
    return load_model(path, arch=arch, num_classes=num_classes, input_size=input_size)


def refuse_onnx(path: str | Path) -> None:
    """Raise ``ERR_NOT_PRUNABLE`` for an ``.onnx`` path (prune and fine-tune call this first)."""
    if Path(path).suffix.lower() == ".onnx":
        raise FairpruneError(ERR_NOT_PRUNABLE.format(path=path))


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
        proto.metadata_props.add(key=_META + k, value=v)
    big = proto.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: weights go beside the file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        staged = tmp / path.name  # the final name: external data is referenced by file name
        onnx.save_model(proto, str(staged), save_as_external_data=big,
                        location=f"{path.name}.data" if big else None)  # fmt: skip
        diff = _verify(model, _ort_session(str(staged), None), input_size, seed)
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


def import_onnx(
    data: bytes,
    filename: str,
    directory: str | Path,
    *,
    num_classes: int | None,
    input_size: int | None,
) -> ModelRecord:
    """Validate an uploaded ``.onnx`` classifier and keep it in the model store, unchanged.

    Parameters
    ----------
    data : bytes
        The file, at most ``MAX_UPLOAD_ONNX_BYTES``; weights must be inside it (a model with
        external weight files is added by path).
    filename : str
        As uploaded; stored as ``STEM.onnx`` (``STEM-2.onnx``… if taken).
    directory : path
        The model store.
    num_classes, input_size : int or None
        The current dataset's; the model must fit them.

    Returns
    -------
    ModelRecord
    """
    if len(data) > MAX_UPLOAD_ONNX_BYTES:
        raise FairpruneError(
            ERR_ONNX_UPLOAD_BIG.format(size=len(data) / 2**20, cap=MAX_UPLOAD_ONNX_BYTES / 2**20)
        )
    if Path(filename).suffix.lower() != ".onnx":
        raise FairpruneError(ERR_OUT_SUFFIX.format(path=filename))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(filename).stem)
    stem = stem.lstrip(".") or "upload"
    with tempfile.TemporaryDirectory(dir=directory, prefix=".upload.") as tmp:
        staged = Path(tmp) / f"{stem}.onnx"
        staged.write_bytes(data)
        try:
            load_onnx(staged, num_classes=num_classes, input_size=input_size, threads=1)
        except FairpruneError as exc:  # name the upload, not the staging folder
            raise FairpruneError(str(exc).replace(str(staged), filename)) from None
        name, n = stem, 1
        while (directory / f"{name}.onnx").exists():
            n += 1
            name = f"{stem}-{n}"
        target = directory / f"{name}.onnx"
        os.chmod(staged, 0o644)
        os.replace(staged, target)
    return onnx_record(target)


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
