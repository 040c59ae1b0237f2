"""The backend names the pages use, in one place: pages import ``fairprune.app`` and nothing else.

A page that needs something new from the backend adds it here, so this list is the whole surface
the dashboard relies on. What changes the model store goes through the functions below, which
only an operator may call (``auth.require``) and which record what they did in the results store
(``ResultsStore.record_action``): a page that forgot to hide a button still cannot act.
"""

from __future__ import annotations

import os
from pathlib import Path

from fairprune import auth
from fairprune.app import identity
from fairprune.data import DATASETS, summarize
from fairprune.errors import FairpruneError
from fairprune.loss import LOSSES, PW_PRESETS
from fairprune.metrics import METRICS, accuracy_gap, audit
from fairprune.nets import ARCHITECTURES, load_model, record_to_row
from fairprune.nets import import_upload as _import_upload
from fairprune.nets.checkpoint import is_inside, list_models
from fairprune.nets.imports import MAX_UPLOAD_BYTES, store_file
from fairprune.nets.imports import add_by_path as _add_by_path
from fairprune.nets.onnx_io import MAX_UPLOAD_ONNX_BYTES, list_onnx, load_for_audit
from fairprune.nets.onnx_io import import_onnx as _import_onnx
from fairprune.sweep import criterion_names
from fairprune.sweep.methods import REFERENCE_CRITERION, methods_display, methods_frame

__all__ = [
    "ARCHITECTURES",
    "DATASETS",
    "FairpruneError",
    "LOSSES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_ONNX_BYTES",
    "METRICS",
    "PW_PRESETS",
    "REFERENCE_CRITERION",
    "accuracy_gap",
    "add_by_path",
    "audit",
    "criterion_names",
    "import_onnx",
    "import_upload",
    "load_for_audit",
    "load_model",
    "methods_display",
    "methods_frame",
    "record_to_row",
    "remove_model",
    "removable_files",
    "store_file",
    "summarize",
]

ERR_NO_SUCH_MODEL = "no model {name!r} in the model store {store}; pick one of the listed models."


def _operator(what: str) -> None:
    auth.require(identity.current(), "operate", what=what)


def _added(results, record, source: str) -> None:
    identity.record_action(results, "model added", record.name,
                           detail=f"{source} · sha256 {record.sha256[:16]}")  # fmt: skip


def import_upload(data: bytes, filename: str, directory, *, results, **options):
    """``fairprune.nets.import_upload`` for an operator, recorded ("model added").

    Parameters
    ----------
    data, filename, directory, **options
        As for ``fairprune.nets.import_upload``.
    results : str or path
        The results store the action is recorded in.

    Returns
    -------
    ModelRecord
    """
    _operator("add a model")
    record = _import_upload(data, filename, directory, **options)
    _added(results, record, f"uploaded {filename}")
    return record


def import_onnx(data: bytes, filename: str, directory, *, results, **options):
    """``fairprune.nets.onnx_io.import_onnx`` for an operator, recorded ("model added").

    Parameters
    ----------
    data, filename, directory, **options
        As for ``fairprune.nets.onnx_io.import_onnx``.
    results : str or path
        The results store the action is recorded in.

    Returns
    -------
    ModelRecord
    """
    _operator("add a model")
    record = _import_onnx(data, filename, directory, **options)
    _added(results, record, f"uploaded {filename} (ONNX, audit only)")
    return record


def add_by_path(directory, name: str, *, results, **options):
    """``fairprune.nets.imports.add_by_path`` for an operator; a model it adds is recorded
    ("model added"; one that was in the store already is not).

    Parameters
    ----------
    directory, name, **options
        As for ``fairprune.nets.imports.add_by_path``.
    results : str or path
        The results store the action is recorded in.

    Returns
    -------
    (ModelRecord, bool)
    """
    _operator("add a model")
    record, already = _add_by_path(directory, name, **options)
    if not already:
        _added(results, record, f"from {name} in the models folder")
    return record, already


def removable_files(directory, name: str) -> list[Path]:
    """The files of the model ``name`` that the store owns: a checkpoint's weights and manifest
    (``<stem>.safetensors``, ``<stem>.json``) or an ``.onnx`` file, each inside the store folder.

    Parameters
    ----------
    directory : path
        The model store.
    name : str
        The model's name, as listed on the Models page.

    Returns
    -------
    list of Path

    Raises
    ------
    FairpruneError
        ``ERR_NO_SUCH_MODEL`` for a name the store does not list.
    """
    return _owned(directory, name)[1]


def _owned(directory, name: str):
    """(record, files) of the listed model ``name``; ``ERR_NO_SUCH_MODEL`` if none."""
    directory = Path(directory)
    for record in [*list_models(directory), *list_onnx(directory)]:
        if record.name != name or not record.path:
            continue
        main = Path(record.path)
        files = [main] if main.suffix.lower() == ".onnx" else [main, main.with_suffix(".json")]
        # listed entries are checked to lie inside the store; checked again, symlinks resolved
        if all(os.path.lexists(f) and is_inside(f, directory) for f in files):
            return record, files
    raise FairpruneError(ERR_NO_SUCH_MODEL.format(name=name, store=directory))


def remove_model(directory, name: str, *, results) -> list[str]:
    """Delete a model's files from the model store (an operator only), recorded ("model
    removed"). Only the files the store owns go (``removable_files``); results and decisions
    about the model stay in the results store.

    Parameters
    ----------
    directory : path
        The model store.
    name : str
        The model's name, as listed on the Models page.
    results : str or path
        The results store the action is recorded in.

    Returns
    -------
    list of str
        The names of the files removed.
    """
    _operator("remove a model")
    record, files = _owned(directory, name)
    for f in files:
        f.unlink()
    removed = [f.name for f in files]
    detail = f"{', '.join(removed)} · sha256 {record.sha256[:16]}"
    identity.record_action(results, "model removed", name, detail=detail)
    return removed
