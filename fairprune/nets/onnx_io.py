"""ONNX in the model store: list the ``.onnx`` classifiers of a folder, keep an uploaded one, and
open any model fairprune can audit (``load_for_audit``: ours, a ``.pt`` state dict, or ONNX).

Exporting lives in ``onnx_export``, running an ``.onnx`` file in ``onnx_runtime``, validating an
untrusted one in ``onnx_check``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.imports import load_model
from fairprune.nets.manifest import ModelRecord
from fairprune.nets.onnx_export import ERR_OUT_SUFFIX
from fairprune.nets.onnx_runtime import load_onnx

log = logging.getLogger(__name__)

MAX_UPLOAD_ONNX_BYTES = 512 * 2**20  # uploads above this go into the models folder by path

ERR_ONNX_UPLOAD_BIG = (
    "the upload is {size:.0f} MB, over the {cap:.0f} MB limit; copy the .onnx into the models "
    "folder and add it by path."
)


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
