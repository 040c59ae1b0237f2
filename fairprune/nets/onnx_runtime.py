"""ONNX in: validate an ``.onnx`` classifier and run it through onnxruntime as an ``nn.Module``.

``load_onnx`` validates the file (``onnx_check.read_onnx``) and wraps an onnxruntime session in
``OnnxClassifier``, an ``nn.Module`` without parameters, so ``fairprune.evaluate.predict`` and
every audit run on it unchanged. An ONNX model is audit-only: it has no PyTorch layers to prune
(``refuse_onnx``). Its ``ModelRecord`` has ``kind == "onnx"`` and ``arch == "onnx"``, a name
ending in ``.onnx``; what made the model is read back from its ``fairprune.*`` metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.manifest import ERR_CLASSES, ModelRecord
from fairprune.nets.onnx_check import (
    MAX_ONNX_BYTES,
    OnnxInfo,
    check_inferred_shapes,
    macs_params,
    read_onnx,
)

META_PREFIX = "fairprune."  # metadata_props prefix of what fairprune writes into an export

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


# onnxruntime graph optimisation levels by name; "all" adds layout changes (NCHWc) to "extended"
OPTIMIZATION_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def ort_session(model: bytes | str, threads: int | None, optimization: str = "all"):
    """An onnxruntime CPU session on a model's bytes (or path), quiet, its idle threads asleep."""
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
        v = int(meta.get(META_PREFIX + key, ""))
    except ValueError:
        return None
    return v if lo <= v <= hi else None


def _meta_float(meta: dict, key: str) -> float:
    try:
        v = float(meta.get(META_PREFIX + key, ""))
    except ValueError:
        return 0.0
    return v if 0.0 <= v <= 1.0 else 0.0


def _record(info: OnnxInfo, side: int, num_outputs: int, macs: int, params: int) -> ModelRecord:
    meta = info.metadata

    def text(key: str, default: str = "") -> str:
        return str(meta.get(META_PREFIX + key, default))[:200]

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
        session = ort_session(source, threads, optimization)
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


def refuse_onnx(path: str | Path) -> None:
    """Raise ``ERR_NOT_PRUNABLE`` for an ``.onnx`` path (prune and fine-tune call this first)."""
    if Path(path).suffix.lower() == ".onnx":
        raise FairpruneError(ERR_NOT_PRUNABLE.format(path=path))
