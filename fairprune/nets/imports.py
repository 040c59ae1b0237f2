"""Models from outside the store: a user's plain state dict (``.pt``/``.pth``, read only with
``torch.load(weights_only=True)``), uploads through the dashboard, and ``load_model`` for every route.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.checkpoint import (
    corrupt_error,
    is_inside,
    load_checkpoint,
    read_safetensors,
    safetensors_shapes,
    save_model,
)
from fairprune.nets.flops import count_macs_params
from fairprune.nets.foreign import model_from_state
from fairprune.nets.manifest import (
    COMPUTED_FIELDS,
    ERR_ARCH_MISMATCH,
    ERR_CLASSES,
    ERR_CORRUPT_PT,
    ERR_EXTENSION,
    ERR_HASH,
    ERR_MANIFEST_PAIR,
    ERR_NEED_ARCH,
    ERR_NOT_FOUND,
    ERR_NOT_STATE_DICT,
    ERR_OUTSIDE_STORE,
    ERR_PICKLE_REFUSED,
    ERR_TOO_BIG,
    MAX_WEIGHTS_BYTES,
    ModelRecord,
    check_file,
    parse_manifest,
)
from fairprune.nets.shapes import (
    check_finite,
    compare_shapes,
    expected_shapes,
    load_state,
    rebuild_model,
)
from fairprune.utils import sha256_bytes, sha256_file

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # uploads above this go in by path instead


ERR_NOT_IN_STORE = "No file {name} in the models folder {store}; check the name."


def _read_pt(data: Path | bytes, source: object) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt``/``.pth`` file or its bytes, through ``weights_only=True``."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():  # torch warns about a file's pickle protocol: noise here
            warnings.simplefilter("ignore")
            obj = torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # the weights-only unpickler met something other than tensors
        raise FairpruneError(ERR_PICKLE_REFUSED.format(path=source)) from None
    except EOFError as exc:
        raise corrupt_error(source, exc, ERR_CORRUPT_PT) from None
    except RuntimeError as exc:
        if "PytorchStreamReader" in str(exc):  # a broken zip container
            raise corrupt_error(source, exc, ERR_CORRUPT_PT) from None
        raise FairpruneError(ERR_PICKLE_REFUSED.format(path=source)) from None
    except Exception:  # anything else weights_only raises (MemoryError included) is a refusal
        raise FairpruneError(ERR_PICKLE_REFUSED.format(path=source)) from None
    # training scripts often wrap the state dict: {"epoch": 3, "state_dict": {...}}
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict):
        raise FairpruneError(ERR_NOT_STATE_DICT.format(path=source, found=type(obj).__name__))
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        found = f"a dict with a {type(obj[bad]).__name__} at {bad!r}"
        raise FairpruneError(ERR_NOT_STATE_DICT.format(path=source, found=found))
    if obj and all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}  # saved from DataParallel
    return obj


def _from_state(
    state: dict, source: object, arch: str, num_classes: int | None, input_size: int | None
) -> tuple[nn.Module, int, int, int, str]:
    """``arch`` rebuilt to fit ``state`` (pruned, masked or wrapped by any tool; see ``foreign``).

    Returns (model, num_outputs, num_classes, input_size, kind).
    """
    f = model_from_state(state, source, arch, num_classes=num_classes, input_size=input_size)
    check_finite(f.model.state_dict(), source)  # NaN/inf weights would crash the audit later
    return f.model, f.num_outputs, f.num_classes, f.input_size, f.kind


def load_model(
    path: str | Path,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
) -> tuple[nn.Module, ModelRecord]:
    """Load a checkpoint without executing anything from the file.

    Parameters
    ----------
    path : path
        ``NAME.safetensors`` or ``NAME.json`` (ours), or a ``.pt``/``.pth`` state dict.
    arch : str, optional
        Required for ``.pt``/``.pth``; ignored for ours (the manifest says).
    num_classes : int, optional
        The dataset's classes (a 1-output head counts as binary); checked against the model.
    input_size : int, optional
        For ``.pt``/``.pth``; defaults to the architecture's usual size (32 for the CIFAR-style
        nets, 224 for torchvision's).

    Returns
    -------
    (nn.Module, ModelRecord)
        The model in eval mode on the CPU and its manifest (``path`` set). A pruned checkpoint
        gives outputs identical to the model that was saved.
    """
    path = Path(path)
    if not os.path.lexists(path):  # never raises, whatever the string
        text = str(path)
        raise FairpruneError(
            ERR_NOT_FOUND.format(path=text if len(text) < 200 else text[:199] + "…")
        )
    suffix = path.suffix.lower()
    if suffix in (".safetensors", ".json"):
        model, record = load_checkpoint(path)
    elif suffix in (".pt", ".pth"):
        model, record = _load_state_dict(path, arch, num_classes, input_size)
    else:
        raise FairpruneError(ERR_EXTENSION.format(path=path))
    if num_classes is not None and record.num_classes != num_classes:
        raise FairpruneError(
            ERR_CLASSES.format(path=path, got=record.num_outputs, want=num_classes)
        )
    return model.eval(), record


def _load_state_dict(path: Path, arch, num_classes, input_size) -> tuple[nn.Module, ModelRecord]:
    if not arch:
        raise FairpruneError(ERR_NEED_ARCH.format(path=path))
    nbytes = check_file(path, cap=MAX_WEIGHTS_BYTES, what="checkpoint")  # before torch opens it
    state = _read_pt(path, path)
    model, outputs, classes, size, kind = _from_state(state, path, arch, num_classes, input_size)

    macs, params = count_macs_params(model, size)
    record = ModelRecord(
        name=path.stem,
        arch=arch,
        num_outputs=outputs,
        num_classes=classes,
        input_size=size,
        kind=kind,
        macs=macs,
        params=params,
        sha256=sha256_file(path),
        file_size=nbytes,
        path=str(path),
    )
    return model, record


def _free_name(directory: Path, stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``… so that an upload never replaces a stored model."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).lstrip(".") or "upload"
    name, n = stem, 1
    while (directory / f"{name}.safetensors").exists() or (directory / f"{name}.json").exists():
        n += 1
        name = f"{stem}-{n}"
    return name


def import_upload(
    data: bytes,
    filename: str,
    directory: str | Path,
    *,
    arch: str | None,
    num_classes: int | None,
    input_size: int | None,
    dataset: str = "",
    dataset_fingerprint: str = "",
    manifest: bytes | None = None,
) -> ModelRecord:
    """Validate an uploaded model file and store it as ours (safetensors + manifest).

    Nothing from the upload is executed: state dicts go through ``weights_only=True``,
    safetensors through the safetensors parser.

    Parameters
    ----------
    data : bytes
        The uploaded ``.pt``/``.pth`` state dict or ``.safetensors`` file, at most
        ``MAX_UPLOAD_BYTES``.
    filename : str
        Its name as uploaded; the stored model's name is its stem (``-2``, ``-3``… if taken).
    directory : path
        The model store.
    arch : str or None
        Architecture of the weights; may be None only when ``manifest`` is given.
    num_classes : int or None
        The current dataset's classes; the model's head must match.
    input_size : int or None
        Input side (None: the architecture's usual size). A manifest's own value wins.
    dataset, dataset_fingerprint : str
        Recorded in the new manifest (a given manifest's own non-empty values win).
    manifest : bytes, optional
        The ``.json`` written by fairprune beside an uploaded ``.safetensors``: needed for a
        pruned model, whose layer shapes it records. Its hash must match ``data``.

    Returns
    -------
    ModelRecord
        The stored checkpoint.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise FairpruneError(
            ERR_TOO_BIG.format(size=len(data) / 2**20, cap=MAX_UPLOAD_BYTES / 2**20)
        )
    suffix = Path(filename).suffix.lower()
    if suffix not in (".pt", ".pth", ".safetensors"):
        raise FairpruneError(ERR_EXTENSION.format(path=filename))
    directory = Path(directory)
    if manifest is not None:
        if suffix != ".safetensors":
            raise FairpruneError(ERR_MANIFEST_PAIR.format(path=filename))
        record = parse_manifest(manifest, filename)
        if len(data) != record.file_size or sha256_bytes(data) != record.sha256:
            raise FairpruneError(ERR_HASH.format(path=filename))
        if arch and arch != record.arch:
            raise FairpruneError(
                ERR_ARCH_MISMATCH.format(path=filename, found=record.arch, arch=arch)
            )
        found = safetensors_shapes(data, filename)  # the header against the bytes, first
        compare_shapes(expected_shapes(record, filename), found, filename, record.arch)
        state = read_safetensors(data, filename)
        check_finite(state, filename)
        model = rebuild_model(record, filename)
        load_state(model, state, filename, record.arch)
        if num_classes is not None and record.num_classes != num_classes:
            raise FairpruneError(
                ERR_CLASSES.format(path=filename, got=record.num_outputs, want=num_classes)
            )
        fields_ = {k: v for k, v in asdict(record).items() if k not in COMPUTED_FIELDS}
        fields_["dataset"] = record.dataset or dataset
        fields_["dataset_fingerprint"] = record.dataset_fingerprint or dataset_fingerprint
        fields_["config"] = {**record.config, "imported_from": filename}
    else:
        if not arch:
            raise FairpruneError(ERR_NEED_ARCH.format(path=filename))
        if suffix == ".safetensors":
            safetensors_shapes(data, filename)
            state = read_safetensors(data, filename)
        else:
            state = _read_pt(data, filename)
        model, outputs, classes, size, kind = _from_state(
            state, filename, arch, num_classes, input_size
        )
        from fairprune.nets.flops import count_macs_params

        macs, params = count_macs_params(model, size)
        fields_ = dict(
            arch=arch,
            num_outputs=outputs,
            num_classes=classes,
            input_size=size,
            kind=kind,
            dataset=dataset,
            dataset_fingerprint=dataset_fingerprint,
            macs=macs,
            params=params,
            config={"imported_from": filename},
        )
    directory.mkdir(parents=True, exist_ok=True)
    return save_model(model, directory, _free_name(directory, Path(filename).stem), **fields_)


def store_file(directory: str | Path, name: str) -> Path:
    """The file ``name`` inside the model store, checked to stay there (symlinks resolved).

    Parameters
    ----------
    directory : path
        The model store.
    name : str
        A file name or a path relative to the store, as typed on the Models page.

    Returns
    -------
    Path
        ``directory / name``: a regular file inside the store, at most ``MAX_WEIGHTS_BYTES``.
    """
    directory = Path(directory)
    target = directory / name
    if not is_inside(target, directory):
        raise FairpruneError(ERR_OUTSIDE_STORE.format(path=name, store=directory))
    if not os.path.exists(target):
        raise FairpruneError(ERR_NOT_IN_STORE.format(name=name, store=directory))
    check_file(target, cap=MAX_WEIGHTS_BYTES, what="checkpoint")
    return target


def add_by_path(
    directory: str | Path,
    name: str,
    *,
    arch: str | None,
    num_classes: int | None,
    input_size: int | None,
    dataset: str = "",
    dataset_fingerprint: str = "",
) -> tuple[ModelRecord, bool]:
    """Add a file already inside the model store (the Models page's "From the models folder").

    Parameters
    ----------
    directory : path
        The model store.
    name : str
        The file's name inside the store.
    arch, num_classes, input_size, dataset, dataset_fingerprint
        As for ``import_upload``.

    Returns
    -------
    (ModelRecord, bool)
        The checkpoint, and True when it was one of ours already (validated, not copied).
    """
    target = store_file(directory, name)
    if target.suffix.lower() in (".safetensors", ".json"):
        _model, record = load_model(target, num_classes=num_classes)
        return record, True
    if target.suffix.lower() not in (".pt", ".pth"):
        raise FairpruneError(ERR_EXTENSION.format(path=name))
    check_file(target, cap=MAX_UPLOAD_BYTES, what="model added by path")
    with open(target, "rb") as f:
        data = f.read(MAX_UPLOAD_BYTES + 1)
    record = import_upload(
        data, target.name, directory, arch=arch, num_classes=num_classes, input_size=input_size,
        dataset=dataset, dataset_fingerprint=dataset_fingerprint,
    )  # fmt: skip
    return record, False
