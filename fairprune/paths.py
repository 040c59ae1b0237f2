"""Where fairprune keeps its files: the model store, the results database, generated data.

Every location can be moved with an environment variable, so tests and the dashboard's browser
test run against a temporary folder and never touch a user's store.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fairprune.errors import FairpruneError

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


ERR_FILE_TOO_BIG = (
    "{path} is {size:.0f} MB, over the {cap:.0f} MB a {what} may have; check that it is the "
    "right file."
)


def regular_file_size(path: str | Path, *, cap: int, what: str, not_a_file: str) -> int:
    """The size of a regular file (symlinks followed) of at most ``cap`` bytes, checked before any
    read: a FIFO would block a reader forever and ``/dev/zero`` never ends, so neither is ever
    opened, hashed or listed.

    Raises
    ------
    FairpruneError
        ``not_a_file`` (formatted with ``path``) for a FIFO, device, folder or missing file;
        ``ERR_FILE_TOO_BIG`` for one over ``cap``.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        raise FairpruneError(not_a_file.format(path=path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise FairpruneError(not_a_file.format(path=path))
    if st.st_size > cap:
        raise FairpruneError(
            ERR_FILE_TOO_BIG.format(path=path, size=st.st_size / 2**20, cap=cap / 2**20, what=what)
        )
    return st.st_size
