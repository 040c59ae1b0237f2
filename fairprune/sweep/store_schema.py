"""The results store's file: its schema and migrations, and the connection each operation opens.

``StoreFile`` is the base of ``ResultsStore``: it refuses files that are not a store (or a newer
one), creates or upgrades the schema in one transaction, and hands out one SQLite connection per
operation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from fairprune.errors import FairpruneError
from fairprune.metrics import METRIC_COLUMNS
from fairprune.sweep.store_decisions import DECISIONS_SCHEMA

SCHEMA_VERSION = 3  # 2: per-sample predictions of every cell; 3: review decisions (append-only)
ERR_NOT_A_STORE = (
    "{path} is not a fairprune results store ({reason}); choose another file or move it away and "
    "rerun the sweep."
)
ERR_UNWRITABLE = (
    "cannot open the results store at {path} ({reason}); choose a writable location (--results)."
)
ERR_NEWER_SCHEMA = "{path} was written by a newer fairprune (schema {found}); upgrade fairprune."
NOT_SQLITE = "not an SQLite database"
DAMAGED = "the SQLite file is damaged"
OTHER_TABLES = "it holds other tables"
"""The ``reason`` of ``ERR_NOT_A_STORE``: fixed words, not SQLite's, so the message is stable."""

GROUP_METRIC_COLUMNS = [c for c in METRIC_COLUMNS if c != "group"]
"""The metric columns of the ``group_rows`` table (its group column is ``grp``)."""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    cell_key TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL,
    model TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    model_path TEXT,
    dataset TEXT,
    arch TEXT,
    criterion TEXT NOT NULL,
    loss TEXT NOT NULL,
    seed INTEGER,
    target_reduction REAL NOT NULL,
    flops_reduction REAL NOT NULL,
    macs INTEGER,
    params INTEGER,
    file_size INTEGER,
    latency_ms REAL,
    weight_sparsity REAL,
    accuracy REAL,
    gap REAL,
    std_delta REAL,
    max_psi REAL,
    split TEXT NOT NULL,
    config_json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_by_sweep ON cells (sweep_id);
CREATE TABLE IF NOT EXISTS group_rows (
    cell_key TEXT NOT NULL REFERENCES cells (cell_key) ON DELETE CASCADE,
    split TEXT NOT NULL,
    grp TEXT NOT NULL,
    n INTEGER,
    accuracy REAL,
    accuracy_low REAL,
    accuracy_high REAL,
    balanced_accuracy REAL,
    auroc REAL,
    tpr REAL,
    fpr REAL,
    selection_rate REAL,
    PRIMARY KEY (cell_key, split, grp)
);
CREATE TABLE IF NOT EXISTS predictions (
    cell_key TEXT PRIMARY KEY REFERENCES cells (cell_key) ON DELETE CASCADE,
    split TEXT NOT NULL,
    n INTEGER NOT NULL,
    num_classes INTEGER NOT NULL,
    split_key TEXT NOT NULL,
    group_names TEXT NOT NULL,
    class_names TEXT NOT NULL,
    y_true BLOB NOT NULL,
    y_pred BLOB NOT NULL,
    groups BLOB NOT NULL,
    probs BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_by_model ON cells (model_hash);"""
    + DECISIONS_SCHEMA
)
_TABLES = {"sweeps", "cells", "group_rows", "predictions", "decisions"}  # of SCHEMA_VERSION


def _format_problem(exc: sqlite3.DatabaseError) -> str | None:
    """``NOT_SQLITE``/``DAMAGED`` when ``exc`` says the file itself is wrong, else None."""
    text = str(exc)
    if "not a database" in text or "file is encrypted" in text:
        return NOT_SQLITE
    if "malformed" in text or "corrupt" in text:
        return DAMAGED
    return None


class StoreFile:
    """The SQLite file under a results store: opened, checked and migrated on construction.

    Parameters
    ----------
    path : str or Path
        The database file; created with its schema when missing.

    Raises
    ------
    FairpruneError
        ``ERR_NOT_A_STORE`` (not SQLite, damaged, or another program's database),
        ``ERR_NEWER_SCHEMA`` or ``ERR_UNWRITABLE``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FairpruneError(
                ERR_UNWRITABLE.format(path=self.path, reason=exc.strerror)
            ) from None
        self._init()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, closed on exit (``with store.connect() as conn,
        conn:`` makes the operation one transaction).

        Raises
        ------
        FairpruneError
            ``ERR_UNWRITABLE`` when the file cannot be opened, ``ERR_NOT_A_STORE`` when SQLite
            finds it is not a database or damaged.
        """
        try:
            conn = sqlite3.connect(self.path, timeout=60.0)
        except sqlite3.Error as exc:
            raise FairpruneError(ERR_UNWRITABLE.format(path=self.path, reason=exc)) from None
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.DatabaseError as exc:
            reason = _format_problem(exc)
            if reason is None:
                raise  # locked past the busy timeout, disk full…: not the file's format
            raise FairpruneError(ERR_NOT_A_STORE.format(path=self.path, reason=reason)) from None
        finally:
            conn.close()

    def read_frame(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """The rows of one query as a DataFrame."""
        with self.connect() as conn:
            return pd.read_sql_query(sql, conn, params=params)

    def _init(self) -> None:
        with self.connect() as conn:
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise  # another writer held it past the busy timeout: not a format problem
                reason = _format_problem(exc) or NOT_SQLITE
                raise FairpruneError(
                    ERR_NOT_A_STORE.format(path=self.path, reason=reason)
                ) from None
            except sqlite3.DatabaseError as exc:
                reason = _format_problem(exc) or NOT_SQLITE
                raise FairpruneError(
                    ERR_NOT_A_STORE.format(path=self.path, reason=reason)
                ) from None
            if str(mode).lower() != "wal":
                # switching needs an exclusive lock, so only the creator (or an old file) does it
                conn.execute("PRAGMA journal_mode = WAL")
            if version > SCHEMA_VERSION:
                raise FairpruneError(ERR_NEWER_SCHEMA.format(path=self.path, found=version))
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and not {"sweeps", "cells", "group_rows"} <= tables:
                raise FairpruneError(ERR_NOT_A_STORE.format(path=self.path, reason=OTHER_TABLES))
            if version == SCHEMA_VERSION and _TABLES <= tables:
                return  # opening must not write: the dashboard's caches key on the file's state
            with conn:
                # one transaction: a second process opening the new file sees all tables or none;
                # an older store gains the new tables (IF NOT EXISTS) and keeps every row
                conn.executescript(
                    f"BEGIN;\n{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
                )
