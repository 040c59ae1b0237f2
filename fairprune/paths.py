"""Where fairprune keeps its files: the model store, the results store, generated data.

Every location can be moved with an environment variable, so tests and the dashboard's browser
test run against a temporary folder and never touch a user's store.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


# A results store is an SQLite file or a server database named by a URL (issue #24); only
# PostgreSQL is a server store, through psycopg 3 ("postgresql+psycopg://" names the driver).
_URL = re.compile(r"^postgresql(\+[a-z0-9_]+)?://", re.IGNORECASE)


def is_store_url(value: object) -> bool:
    """Whether ``value`` names a server results store (``postgresql://...``), not a file.

    A ``Path`` never is: a URL passed through ``Path()`` has lost its ``//`` and is a file name.
    """
    return isinstance(value, str) and bool(_URL.match(value.strip()))


def as_location(value: str | Path) -> str | Path:
    """A results location as given: a URL stays a str (stripped), anything else is a ``Path``."""
    return value.strip() if is_store_url(value) else Path(value)


def results_location() -> str | Path:
    """The results store (``FAIRPRUNE_RESULTS``: a PostgreSQL URL, kept as a str, or a file
    path; default ``<data_dir>/results.sqlite``)."""
    env = os.environ.get("FAIRPRUNE_RESULTS", "").strip()
    return as_location(env) if env else data_dir() / "results.sqlite"


results_path = results_location  # the name callers used before stores could be URLs


def display_location(value: str | Path) -> str:
    """A results location fit to show or log: a URL with its password (in the user part or a
    ``password=`` query parameter) replaced by ``***``; a path as is."""
    if not is_store_url(value):
        return str(value)
    parts = urlsplit(value.strip())
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else f"{k}{sep}{v}"
        for k, sep, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
