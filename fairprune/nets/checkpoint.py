"""The model store: safetensors weights + a JSON manifest, never a pickle.

A checkpoint is ``NAME.safetensors`` beside ``NAME.json``. The manifest says how to rebuild the
model (architecture, outputs, input size, and the shapes of every layer pruning changed), what made
it (config, parent hash) and what it costs (MACs, params).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file, save_file
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.flops import count_macs_params
from fairprune.nets.listing import (  # the torch-free half of the store, re-exported here
    corrupt_error,
    safetensors_shapes,
)
from fairprune.nets.listing import is_inside as is_inside
from fairprune.nets.listing import list_models as list_models
from fairprune.nets.manifest import (
    COMPUTED_FIELDS,
    ERR_HASH,
    ERR_NO_MANIFEST,
    ERR_NO_WEIGHTS,
    MAX_MANIFEST_BYTES,
    MAX_WEIGHTS_BYTES,
    SAFETENSORS_METADATA,
    ModelRecord,
    check_file,
    check_name,
    read_manifest,
)
from fairprune.nets.shapes import (
    check_finite,
    compare_shapes,
    expected_shapes,
    layer_shapes,
    load_state,
    rebuild_model,
)
from fairprune.utils import environment, sha256_file


def _atomic_write(path: Path, write) -> None:
    # a reader (another session, a sweep) sees the old file or the new one, never half of one
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: nn.Module, directory: str | Path, name: str, **fields_) -> ModelRecord:
    """Save ``model`` as ``NAME.safetensors`` + ``NAME.json`` in ``directory``.

    Parameters
    ----------
    model : nn.Module
        A model of architecture ``fields_["arch"]``, dense or pruned by Torch-Pruning.
    directory : path
        The model store folder (created if missing).
    name : str
        File stem: letters, digits, '-', '_' and '.'; no path separators.
    **fields_
        ``ModelRecord`` fields (arch, num_outputs, num_classes, input_size, kind, …).
        ``layer_shapes``, ``sha256``, ``file_size`` and ``created`` are computed here.

    Returns
    -------
    ModelRecord
        The manifest as written, with ``path`` set.
    """
    check_name(name)
    for k in COMPUTED_FIELDS:
        fields_.pop(k, None)
    known = {f.name for f in fields(ModelRecord)}
    unknown = set(fields_) - known
    if unknown:
        raise TypeError(f"unknown ModelRecord fields: {sorted(unknown)}")
    absent = [k for k in ("arch", "num_outputs", "num_classes", "input_size") if k not in fields_]
    if absent:
        raise TypeError(f"save_model needs the ModelRecord fields {absent}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arch, k, s = fields_["arch"], int(fields_["num_outputs"]), int(fields_["input_size"])
    shapes = layer_shapes(model, arch, k, s)
    # clone: safetensors refuses tensors that share storage, and the file must not alias the model
    state = {n: t.detach().cpu().clone().contiguous() for n, t in model.state_dict().items()}
    weights = directory / f"{name}.safetensors"
    _atomic_write(weights, lambda p: save_file(state, p, metadata=SAFETENSORS_METADATA))
    config = dict(fields_.pop("config", None) or {})
    config.setdefault("environment", environment())  # torch version, threads, device
    record = ModelRecord(
        name=name,
        config=config,
        layer_shapes=shapes,
        sha256=sha256_file(weights),
        file_size=weights.stat().st_size,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        **fields_,
    )
    manifest = asdict(record)
    manifest.pop("path")
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    _atomic_write(directory / f"{name}.json", lambda p: Path(p).write_text(text))
    return replace(record, path=str(weights))


def save_dense_model(
    model: nn.Module,
    directory: str | Path,
    name: str,
    *,
    bundle,
    arch: str,
    num_outputs: int,
    config: dict,
) -> ModelRecord:
    """Save a freshly trained dense model for ``bundle`` (MACs and params counted here).

    Parameters
    ----------
    model : nn.Module
    directory : path
        The model store.
    name : str
    bundle : DatasetBundle
        The data it was trained on (name, fingerprint, classes, input size).
    arch : str
    num_outputs : int
    config : dict
        What made it (``asdict`` of the training config, …).

    Returns
    -------
    ModelRecord
    """

    model = model.cpu()
    macs, params = count_macs_params(model, bundle.input_size)
    return save_model(
        model,
        directory,
        name,
        arch=arch,
        num_outputs=num_outputs,
        num_classes=bundle.num_classes,
        input_size=bundle.input_size,
        kind="dense",
        dataset=bundle.name,
        dataset_fingerprint=bundle.fingerprint,
        macs=macs,
        params=params,
        config=config,
    )


def read_safetensors(data: Path | bytes, source: object) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or its bytes; the parser executes nothing."""
    try:
        if isinstance(data, bytes):
            return load_safetensors_bytes(data)
        return load_file(str(data))
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise corrupt_error(source, exc) from None


def load_checkpoint(path: Path) -> tuple[nn.Module, ModelRecord]:
    """Our ``NAME.safetensors`` + ``NAME.json``: manifest checked, model rebuilt, weights loaded."""
    weights, manifest = path.with_suffix(".safetensors"), path.with_suffix(".json")
    if not os.path.exists(manifest):
        raise FairpruneError(ERR_NO_MANIFEST.format(path=path, manifest=manifest.name))
    if not os.path.exists(weights):
        raise FairpruneError(ERR_NO_WEIGHTS.format(path=path, weights=weights.name))
    # file type and size first: a FIFO or /dev/zero is never opened, hashed or parsed
    check_file(manifest, cap=MAX_MANIFEST_BYTES, what="manifest")
    size = check_file(weights, cap=MAX_WEIGHTS_BYTES, what="checkpoint")
    record = read_manifest(manifest)
    found = safetensors_shapes(weights, weights)  # header against file size, before hashing
    if size != record.file_size or sha256_file(weights) != record.sha256:
        raise FairpruneError(ERR_HASH.format(path=weights))
    # the manifest's model on the meta device against the header: nothing allocated yet
    compare_shapes(expected_shapes(record, manifest), found, weights, record.arch)
    state = read_safetensors(weights, weights)
    check_finite(state, weights)
    model = rebuild_model(record, manifest)
    load_state(model, state, weights, record.arch)
    return model, replace(record, path=str(weights))
