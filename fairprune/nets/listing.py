"""Listing the model store without Torch: the manifests, the safetensors headers checked against
their files, and the entries kept between listings.

The Models page and the pages' model choices list the store on a dashboard's first visit; this
module imports neither Torch nor safetensors' Torch bindings, so that listing costs milliseconds
on a just-started server (``checkpoint`` re-exports these names for the code that loads models).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

from fairprune.errors import FairpruneError
from fairprune.nets.manifest import (
    ERR_CORRUPT,
    ERR_HASH,
    ERR_NO_WEIGHTS,
    ERR_OUTSIDE_STORE,
    MAX_MANIFEST_BYTES,
    MAX_WEIGHTS_BYTES,
    ModelRecord,
    check_file,
    parse_json,
    read_manifest,
)

log = logging.getLogger(__name__)


def corrupt_error(source: object, exc: Exception, message: str = ERR_CORRUPT) -> FairpruneError:
    """The one-line error for an unreadable file: ``message`` with the first line of ``exc``."""
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__  # EOFError has no message
    reason = reason if len(reason) <= 160 else reason[:159] + "…"
    return FairpruneError(message.format(path=source, reason=reason))


MAX_HEADER_BYTES = 100 * 2**20  # the safetensors format's own limit on its JSON header


_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


class _BadHeader(ValueError):
    """Why a safetensors header cannot describe its file."""


def _header_entries(header: object, data_size: int) -> dict[str, tuple[int, ...]]:
    """Name → shape from a parsed header, after checking it against the data section's size."""
    if not isinstance(header, dict):
        raise _BadHeader("the header is not a JSON object")
    spans, shapes = [], {}
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise _BadHeader("__metadata__ is not a map of strings")
            continue
        label = repr(name[:40])
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise _BadHeader(f"tensor {label} lacks dtype, shape or data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPE_BYTES:
            raise _BadHeader(f"tensor {label} has an unknown dtype {str(dtype)[:20]!r}")
        ints = isinstance(shape, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        )
        if not ints or len(shape) > 8:
            raise _BadHeader(f"tensor {label} has an invalid shape")
        good = (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        )
        if not good or not 0 <= offsets[0] <= offsets[1] <= data_size:
            raise _BadHeader(f"tensor {label} has offsets outside the file")
        need = _DTYPE_BYTES[dtype]
        for d in shape:
            need *= d  # exact integers: a "huge shape" cannot overflow into a small number
        if need != offsets[1] - offsets[0]:
            raise _BadHeader(
                f"tensor {label} of shape {shape} needs {need} bytes, its offsets hold "
                f"{offsets[1] - offsets[0]}"
            )
        spans.append((offsets[0], offsets[1], label))
        shapes[name] = tuple(shape)
    end = 0
    for begin, stop, label in sorted(spans):
        if begin != end:  # the format packs tensors back to back: a gap or an overlap is a lie
            raise _BadHeader(f"tensor {label} overlaps another or leaves a gap")
        end = stop
    if end != data_size:
        raise _BadHeader(f"the tensors cover {end} of the {data_size} data bytes")
    return shapes


def safetensors_shapes(data: Path | bytes, source: object) -> dict[str, tuple[int, ...]]:
    """Check a safetensors header against the file and return name → shape; reads no tensor.

    The header's declared length must fit the file; each tensor's dtype must be known and its
    shape's bytes equal its offsets' span; the spans must tile the data section exactly. A lying
    header is refused here, before anything is allocated from it.
    """
    try:
        if isinstance(data, bytes):
            size, head = len(data), data[:8]
        else:
            size = os.stat(data).st_size
            with open(data, "rb") as f:
                head = f.read(8)
        if size < 8:
            raise _BadHeader(f"{size} bytes, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise _BadHeader(f"header length {n} runs past the end of the {size}-byte file")
        if isinstance(data, bytes):
            raw = data[8 : 8 + n]
        else:
            with open(data, "rb") as f:
                f.seek(8)
                raw = f.read(n)
        try:
            header = parse_json(raw, cap=MAX_HEADER_BYTES)
        except ValueError as exc:
            raise _BadHeader(f"header: {exc}") from None
        return _header_entries(header, size - 8 - n)
    except _BadHeader as exc:
        raise corrupt_error(source, exc) from None
    except OSError as exc:
        raise corrupt_error(source, exc) from None


def is_inside(path: Path, directory: Path) -> bool:
    """True when ``path`` (symlinks resolved) lies inside ``directory``."""
    real, root = os.path.realpath(path), os.path.realpath(directory)
    return real.startswith(root.rstrip(os.sep) + os.sep)


def _list_entry(manifest: Path, directory: Path) -> ModelRecord:
    """The record of one store entry, checked without hashing; FairpruneError if unusable."""
    weights = manifest.with_suffix(".safetensors")
    if not os.path.lexists(weights):
        raise FairpruneError(ERR_NO_WEIGHTS.format(path=manifest, weights=weights.name))
    for p in (manifest, weights):  # a symlink out of the store is not the store's model
        if not is_inside(p, directory):
            raise FairpruneError(ERR_OUTSIDE_STORE.format(path=p, store=directory))
    check_file(manifest, cap=MAX_MANIFEST_BYTES, what="manifest")
    size = check_file(weights, cap=MAX_WEIGHTS_BYTES, what="checkpoint")
    record = read_manifest(manifest)
    if size != record.file_size:
        raise FairpruneError(ERR_HASH.format(path=weights))
    safetensors_shapes(weights, weights)  # two small reads: a lying header is not listed
    return replace(record, path=str(weights))


# list_models' parsed entries, shared by every caller in the process (every dashboard session):
# (store folder as given, as resolved) → manifest name → (the two files' stats, the record or
# the reason it was skipped). An entry is reused only while both files' stats are unchanged.
_LISTED: dict[tuple[str, str], dict[str, tuple[tuple, ModelRecord | str]]] = {}
_LISTED_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple:
    """What changes when a file is written, replaced, grown or re-pointed: the link's and the
    target's (inode, size, mtime_ns, ctime_ns); OSError when it is gone."""
    link = os.lstat(path)
    stamp = (link.st_ino, link.st_size, link.st_mtime_ns, link.st_ctime_ns)
    if not os.path.islink(path):
        return stamp
    target = os.stat(path)  # a dangling link raises: not cached, _list_entry says why
    return stamp + (target.st_dev, target.st_ino, target.st_size, target.st_mtime_ns,
                    target.st_ctime_ns)  # fmt: skip


def _entry_key(manifest: Path) -> tuple | None:
    """The stats a cached entry of ``manifest`` depends on; None when they cannot be read."""
    try:
        return _file_key(manifest), _file_key(manifest.with_suffix(".safetensors"))
    except OSError:
        return None


def list_models(directory: str | Path) -> list[ModelRecord]:
    """Every valid checkpoint in ``directory``, oldest first; broken ones are logged and skipped.

    Parameters
    ----------
    directory : path
        The model store; a missing folder holds no models.

    Returns
    -------
    list of ModelRecord
        Sorted by ``created`` (then name), ``path`` set. File types, sizes, the manifest and the
        weights' size against it are checked here, without reading the weights (a FIFO or a
        link to ``/dev/zero`` is skipped, never opened); the full hash is checked by
        ``load_model``. One bad entry never hides the others.

    Notes
    -----
    Each entry's record (or the reason it is skipped) is kept for the process, keyed on both
    files' inode, size, mtime and ctime: a later call re-reads only the entries whose files
    changed, and sees added and removed ones. The records are shared: do not mutate their
    ``config`` or ``layer_shapes``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    folder = (str(directory), str(directory.resolve()))  # records' paths start as given
    with _LISTED_LOCK:
        known = dict(_LISTED.get(folder, {}))
    seen: dict[str, tuple[tuple, ModelRecord | str]] = {}
    out = []
    for manifest in sorted(directory.glob("*.json")):
        key = _entry_key(manifest)
        cached = known.get(manifest.name)
        if key is not None and cached is not None and cached[0] == key:
            entry = cached[1]
        else:
            try:
                entry = _list_entry(manifest, directory)
            except FairpruneError as exc:
                entry = str(exc)
            except Exception as exc:  # one odd entry must not break listing the whole store
                log.warning("skipping %s: %s", manifest, f"{type(exc).__name__}: {exc}"[:200])
                continue
        if key is not None:
            seen[manifest.name] = (key, entry)
        if isinstance(entry, str):
            log.warning("skipping %s: %s", manifest, entry)
        else:
            out.append(entry)
    with _LISTED_LOCK:
        _LISTED[folder] = seen
    return sorted(out, key=lambda r: (r.created, r.name))
