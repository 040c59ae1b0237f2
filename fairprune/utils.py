"""Small shared helpers: device choice, seeding, content hashes, the progress callback type."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
"""``progress(done, total, info)``: long work reports through this; the library never prints."""


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on: ``prefer`` if given, else CUDA when present, else CPU.

    Parameters
    ----------
    prefer : str, optional
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``None`` or ``"auto"`` picks automatically.

    Returns
    -------
    torch.device
    """
    import torch  # here, not at the top: pages import this module for env_number and hashes

    if prefer and prefer != "auto":
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


def environment(device: str | torch.device | None = None) -> dict:
    """What a result depends on besides its seed: torch version, CPU threads and device.

    Bit-identical reruns are promised for the same seed on the same machine; this is recorded
    with every checkpoint so a difference between two machines can be traced to its cause.
    """
    import torch

    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(
            pick_device(device if device is None or isinstance(device, str) else str(device))
        ),
    }


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: object, length: int = 16) -> str:
    """Short hex hash of a JSON-able object, independent of dict key order."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return sha256_bytes(text.encode())[:length]


def env_number(name: str) -> float | None:
    """The finite number in the environment variable ``name``: None when it is unset or empty,
    and None with a warning when it is not a finite number (the caller keeps its default)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        log.warning("%s=%r is not a number; using the default", name, raw)
        return None
    return value


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict
) -> tuple[Callable, Callable]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__`` for names imported on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    exports : mapping of str to str
        Each public name → the module that defines it.
    namespace : dict
        The package's ``globals()``: a name, once imported, is stored there, so the next lookup
        does not come back here.

    Returns
    -------
    (__getattr__, __dir__)
        Assign both in the package's ``__init__``; ``__dir__`` lists ``__all__`` too.
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
