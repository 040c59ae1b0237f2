"""Where fairprune keeps its files: the model store, the results database, generated data.

Every location can be moved with an environment variable, so tests and the dashboard's browser
test run against a temporary folder and never touch a user's store.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder for the results database and caches (``FAIRPRUNE_DATA_DIR``, default ``data/``)."""
    path = Path(os.environ.get("FAIRPRUNE_DATA_DIR", ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """The model store folder (``FAIRPRUNE_MODELS_DIR``, default ``models/``)."""
    path = Path(os.environ.get("FAIRPRUNE_MODELS_DIR", ROOT / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_path() -> Path:
    """The SQLite results store (``FAIRPRUNE_RESULTS``, default ``<data_dir>/results.sqlite``)."""
    env = os.environ.get("FAIRPRUNE_RESULTS")
    return Path(env) if env else data_dir() / "results.sqlite"


def allowed_roots() -> list[Path]:
    """Folders the dashboard may read datasets and models from, resolved.

    ``FAIRPRUNE_ALLOWED_ROOTS`` lists them, separated by ``os.pathsep`` (``:`` on Linux); by
    default the data folder and the model store. The dashboard serves whoever opens it, so a
    visitor can only point it at folders its operator allowed; the CLI reads where it is told.
    """
    env = os.environ.get("FAIRPRUNE_ALLOWED_ROOTS", "")
    chosen = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    roots = chosen or [data_dir(), models_dir()]
    return [Path(os.path.realpath(r)) for r in roots]


def is_allowed(path: str | Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside one of ``allowed_roots()``."""
    try:
        real = os.path.realpath(Path(path).expanduser())
    except (OSError, ValueError):
        return False
    return any(real == str(r) or real.startswith(str(r).rstrip(os.sep) + os.sep)
               for r in allowed_roots())  # fmt: skip
