"""The results store: one SQLite file (WAL mode), one transaction per finished sweep cell, and the
review decisions taken on its sweeps and models (append-only).

Connections are opened per operation, so a store object can be shared by Streamlit's script
threads and two processes can write to one file at once without mixing or losing rows.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fairprune.errors import FairpruneError
from fairprune.evaluate import Outcomes
from fairprune.metrics import METRIC_COLUMNS

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

DECISIONS = ("accept", "needs work", "reject")
"""What a review can decide about a sweep or a model."""
DECISION_KINDS = ("sweep", "model")
"""What a decision is about: a sweep (its id) or a model (the SHA-256 of its weights)."""
ERR_NO_REVIEWER = "enter the reviewer's name: every decision records who took it."
ERR_BAD_DECISION = "unknown decision {value!r}; choose one of: accept, needs work, reject."
ERR_BAD_KIND = "a decision is about a 'sweep' or a 'model', not {value!r}."
ERR_NO_SWEEP = "no sweep {subject!r} in the results store; choose one of its sweep ids."
ERR_BAD_MODEL_HASH = (
    "{subject!r} is not a model's content hash; give the 64-hex SHA-256 of its weights "
    "(`python -m fairprune models`)."
)
ERR_APPEND_ONLY = "decisions are append-only"  # raised by SQLite itself on UPDATE/DELETE
_SHA256 = re.compile(r"[0-9a-f]{64}")
DECISION_COLUMNS = ["id", "created", "kind", "subject", "decision", "reviewer", "comment"]

LONG_COLUMNS = [
    "sweep_id",
    "cell_key",
    "model",
    "model_hash",
    "dataset",
    "arch",
    "criterion",
    "loss",
    "seed",
    "target_reduction",
    "flops_reduction",
    "macs",
    "params",
    *METRIC_COLUMNS,  # group, n, accuracy, its interval, …
]
GROUP_METRIC_COLUMNS = [c for c in METRIC_COLUMNS if c != "group"]

_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS cells_by_model ON cells (model_hash);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('sweep', 'model')),
    subject TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'needs work', 'reject')),
    reviewer TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
    comment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_by_subject ON decisions (subject);
CREATE TRIGGER IF NOT EXISTS decisions_never_change BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_never_go BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
"""
_TABLES = {"sweeps", "cells", "group_rows", "predictions", "decisions"}  # of SCHEMA_VERSION
# per-sample arrays are stored as raw little-endian bytes of a fixed dtype: compact, no pickle
_CODE_DTYPE = np.dtype("<i2")  # labels, predictions and group codes (< 32768 classes/groups)
_PROB_DTYPE = np.dtype("<f2")  # class probabilities, 3 significant digits: enough for AUROC
_CELL_COLUMNS = [
    "cell_key", "sweep_id", "model", "model_hash", "model_path", "dataset", "arch", "criterion",
    "loss", "seed", "target_reduction", "flops_reduction", "macs", "params", "file_size",
    "latency_ms", "weight_sparsity", "accuracy", "gap", "std_delta", "max_psi", "split",
    "config_json", "created",
]  # fmt: skip
_INSERT_CELL = (
    f"INSERT INTO cells ({', '.join(_CELL_COLUMNS)}) VALUES ({', '.join('?' * len(_CELL_COLUMNS))})"
)
_GROUP_COLUMNS = ["cell_key", "split", "grp", *GROUP_METRIC_COLUMNS]
_INSERT_GROUP = (
    f"INSERT INTO group_rows ({', '.join(_GROUP_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_GROUP_COLUMNS))})"
)


def _num(value):
    """SQLite-friendly number: NaN and None become NULL, numpy scalars plain Python."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _format_problem(exc: sqlite3.DatabaseError) -> str | None:
    """``NOT_SQLITE``/``DAMAGED`` when ``exc`` says the file itself is wrong, else None."""
    text = str(exc)
    if "not a database" in text or "file is encrypted" in text:
        return NOT_SQLITE
    if "malformed" in text or "corrupt" in text:
        return DAMAGED
    return None


@dataclass(frozen=True)
class StoredPredictions(Outcomes):
    """A cell's per-sample predictions, as kept in the store (row-aligned with the split)."""

    cell_key: str
    split: str  # the split they were made on
    split_key: str  # dataset fingerprint + split: equal keys mean the same rows in the same order
    y_true: np.ndarray  # (N,) int true class
    y_pred: np.ndarray  # (N,) int predicted class
    groups: np.ndarray  # (N,) int group code, an index into group_names
    probs: np.ndarray  # (N, C) float32 class probabilities (stored as float16)
    group_names: list[str]
    class_names: list[str]


def _codes(values, what: str) -> bytes:
    arr = np.asarray(values)
    if len(arr) and (arr.min() < 0 or arr.max() > np.iinfo(_CODE_DTYPE).max):
        raise ValueError(f"{what} codes must be in 0..32767")
    return arr.astype(_CODE_DTYPE).tobytes()


def _where(sweep_id: str | None, column: str) -> tuple[str, tuple]:
    """``WHERE column = ?`` and its parameter for one sweep; nothing for all sweeps."""
    return (f"WHERE {column} = ?", (sweep_id,)) if sweep_id is not None else ("", ())


def _record_dict(model) -> dict:
    if isinstance(model, dict):
        return model
    if is_dataclass(model):
        return asdict(model)
    return dict(vars(model))


class ResultsStore:
    """Sweep results in one SQLite file.

    The file is in WAL mode with a busy timeout, and every write is one transaction, so sweeps in
    several processes can share it. No connection is kept: each operation opens its own, because
    SQLite connections must not cross threads (Streamlit reruns a page in a new thread). The
    schema version is ``PRAGMA user_version``; opening an existing store never writes to it.

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
    def _connect(self) -> Iterator[sqlite3.Connection]:
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

    def _init(self) -> None:
        with self._connect() as conn:
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

    # ---------------------------------------------------------------- writing

    def register_sweep(self, sweep_id: str, config: dict, name: str = "") -> None:
        """Record a sweep's config (idempotent: the first registration is kept).

        Parameters
        ----------
        sweep_id : str
            Key of the sweep; cells refer to it.
        config : dict
            ``asdict`` of the ``SweepConfig``, stored as JSON.
        name : str, default ""
            Label shown in the dashboard.
        """
        with self._connect() as conn, conn:
            conn.execute(
                "INSERT OR IGNORE INTO sweeps (sweep_id, name, config_json, created) "
                "VALUES (?, ?, ?, ?)",
                (sweep_id, name, json.dumps(config, default=str, sort_keys=True), time.time()),
            )

    def write_cell(
        self,
        *,
        cell_key: str,
        sweep_id: str,
        model,
        config: dict,
        overall: dict,
        groups: pd.DataFrame,
        split: str = "test",
        predictions=None,
        group_names=None,
        class_names=None,
    ) -> None:
        """Write one finished cell, its per-group rows and predictions in a single transaction.

        Parameters
        ----------
        cell_key : str
            Unique key; writing it again replaces the earlier rows atomically.
        sweep_id : str
        model : ModelRecord or dict
            The checkpoint's manifest (name, sha256, path, dataset, arch, criterion, loss, …).
        config : dict
            Everything that made the cell (``asdict`` of its configs).
        overall : dict
            accuracy, gap, std_delta, max_psi, latency_ms, weight_sparsity (missing keys → NULL).
        groups : pandas.DataFrame
            ``fairprune.metrics.group_metrics`` output (NaN is stored as NULL, read back as NaN).
        split : str, default "test"
            The split the groups were measured on.
        predictions : Predictions, optional
            The model's per-sample predictions on that split (``y_true``, ``y_pred``, ``groups``,
            ``probs``, ``split_key``), kept so that paired intervals never re-run a model.
        group_names, class_names : list of str, optional
            Names of the group and class codes in ``predictions`` (needed with it).

        Notes
        -----
        The seed is ``config["cell"]["seed"]``, else ``config["finetune"]["seed"]``. Everything
        is computed before the transaction opens; if anything fails inside it, SQLite rolls the
        whole cell back, so a reader sees the old cell or the new one, never a mix.
        """
        rec = _record_dict(model)
        overall = overall or {}
        cell = (config or {}).get("cell", {})
        seed = cell.get("seed", (config or {}).get("finetune", {}).get("seed"))
        row = (  # in _CELL_COLUMNS order
            cell_key,
            sweep_id,
            rec.get("name", ""),
            rec.get("sha256", ""),
            str(rec.get("path", "") or ""),
            rec.get("dataset"),
            rec.get("arch"),
            rec.get("criterion", "dense"),
            rec.get("loss", "dense"),
            _num(seed),
            _num(float(rec.get("target_reduction", 0.0) or 0.0)),
            _num(float(rec.get("flops_reduction", 0.0) or 0.0)),
            _num(rec.get("macs")),
            _num(rec.get("params")),
            _num(rec.get("file_size")),
            _num(overall.get("latency_ms")),
            _num(overall.get("weight_sparsity")),
            _num(overall.get("accuracy")),
            _num(overall.get("gap")),
            _num(overall.get("std_delta")),
            _num(overall.get("max_psi")),
            split,
            json.dumps(config, default=str, sort_keys=True),
            time.time(),
        )
        group_rows = [
            (cell_key, split, str(r["group"]), *(_num(r.get(c)) for c in GROUP_METRIC_COLUMNS))
            for r in groups.to_dict(orient="records")
        ]
        pred_row = None
        if predictions is not None:
            probs = np.asarray(predictions.probs, dtype=np.float32)
            pred_row = (
                cell_key,
                split,
                len(predictions.y_true),
                probs.shape[1],
                str(getattr(predictions, "split_key", "") or ""),
                json.dumps([str(g) for g in group_names]),
                json.dumps([str(c) for c in class_names]),
                _codes(predictions.y_true, "label"),
                _codes(predictions.y_pred, "prediction"),
                _codes(predictions.groups, "group"),
                probs.astype(_PROB_DTYPE).tobytes(),
            )
        with self._connect() as conn, conn:
            conn.execute("DELETE FROM predictions WHERE cell_key = ?", (cell_key,))
            conn.execute("DELETE FROM group_rows WHERE cell_key = ?", (cell_key,))
            conn.execute("DELETE FROM cells WHERE cell_key = ?", (cell_key,))
            conn.execute(_INSERT_CELL, row)
            conn.executemany(_INSERT_GROUP, group_rows)
            if pred_row is not None:
                conn.execute(
                    "INSERT INTO predictions (cell_key, split, n, num_classes, split_key, "
                    "group_names, class_names, y_true, y_pred, groups, probs) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    pred_row,
                )

    def record_decision(
        self,
        *,
        subject: str,
        kind: str,
        decision: str,
        reviewer: str,
        comment: str = "",
        when: datetime | None = None,
    ) -> dict:
        """Append one review decision (decisions are never changed or deleted).

        Parameters
        ----------
        subject : str
            A sweep id (``kind="sweep"``) or a model's SHA-256 (``kind="model"``).
        kind : {"sweep", "model"}
        decision : {"accept", "needs work", "reject"}
        reviewer : str
            Who decided (required).
        comment : str, default ""
        when : datetime, optional
            The time of the decision (default: now); stored as ISO 8601 UTC.

        Returns
        -------
        dict
            The stored row (``DECISION_COLUMNS``).

        Raises
        ------
        FairpruneError
            ``ERR_NO_REVIEWER``, ``ERR_BAD_DECISION``, ``ERR_BAD_KIND``, ``ERR_NO_SWEEP`` (an
            unknown sweep id) or ``ERR_BAD_MODEL_HASH``.
        """
        reviewer = (reviewer or "").strip()
        subject = (subject or "").strip()
        if not reviewer:
            raise FairpruneError(ERR_NO_REVIEWER)
        if decision not in DECISIONS:
            raise FairpruneError(ERR_BAD_DECISION.format(value=decision))
        if kind not in DECISION_KINDS:
            raise FairpruneError(ERR_BAD_KIND.format(value=kind))
        if kind == "model" and not _SHA256.fullmatch(subject):
            raise FairpruneError(ERR_BAD_MODEL_HASH.format(subject=subject))
        stamp = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        row = {
            "created": stamp.replace("+00:00", "Z"),
            "kind": kind,
            "subject": subject,
            "decision": decision,
            "reviewer": reviewer,
            "comment": (comment or "").strip(),
        }
        with self._connect() as conn, conn:
            if (
                kind == "sweep"
                and not conn.execute(
                    "SELECT 1 FROM sweeps WHERE sweep_id = ?", (subject,)
                ).fetchone()
            ):
                raise FairpruneError(ERR_NO_SWEEP.format(subject=subject))
            cur = conn.execute(
                "INSERT INTO decisions (created, kind, subject, decision, reviewer, comment) "
                "VALUES (:created, :kind, :subject, :decision, :reviewer, :comment)",
                row,
            )
            row["id"] = cur.lastrowid
        return {c: row[c] for c in DECISION_COLUMNS}

    def decisions(self, sweep_id: str | None = None, subject: str | None = None) -> pd.DataFrame:
        """Review decisions, oldest first (``DECISION_COLUMNS``).

        Parameters
        ----------
        sweep_id : str, optional
            Only decisions on this sweep and on the models of its cells.
        subject : str, optional
            Only decisions on this sweep id or model hash.

        Returns
        -------
        pandas.DataFrame
            id, created (ISO 8601 UTC), kind, subject, decision, reviewer, comment.
        """
        where, params = [], []
        if sweep_id is not None:
            where.append(
                "((kind = 'sweep' AND subject = ?) OR (kind = 'model' AND subject IN "
                "(SELECT model_hash FROM cells WHERE sweep_id = ?)))"
            )
            params += [sweep_id, sweep_id]
        if subject is not None:
            where.append("subject = ?")
            params.append(subject)
        sql = f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._frame(sql + " ORDER BY id", tuple(params))

    def delete_sweep(self, sweep_id: str) -> None:
        """Remove a sweep, its cells and their group rows in one transaction."""
        with self._connect() as conn, conn:
            # one statement, inside the transaction: a cell written meanwhile cannot leave orphans
            for table in ("group_rows", "predictions"):
                conn.execute(
                    f"DELETE FROM {table} WHERE cell_key IN "
                    "(SELECT cell_key FROM cells WHERE sweep_id = ?)",
                    (sweep_id,),
                )
            conn.execute("DELETE FROM cells WHERE sweep_id = ?", (sweep_id,))
            conn.execute("DELETE FROM sweeps WHERE sweep_id = ?", (sweep_id,))

    # ---------------------------------------------------------------- reading

    def version(self, sweep_id: str | None = None) -> str:
        """Changes whenever a sweep or a cell is written or deleted (decisions do not count): the
        dashboard's caches of tables and intervals key on it, so a review decision does not
        recompute them. With ``sweep_id``, only that sweep's own writes count: what is cached for
        one sweep stays while another sweep's cells land."""
        with self._connect() as conn:
            if sweep_id is None:
                row = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM sweeps), (SELECT COUNT(*) FROM cells), "
                    "(SELECT COALESCE(MAX(created), 0) FROM cells)"
                ).fetchone()
                return f"{row[0]}:{row[1]}:{row[2]!r}"
            row = conn.execute(
                "SELECT (SELECT COUNT(*) FROM sweeps WHERE sweep_id = ?), COUNT(*), "
                "COALESCE(MAX(created), 0) FROM cells WHERE sweep_id = ?",
                (sweep_id, sweep_id),
            ).fetchone()
        return f"{sweep_id}:{row[0]}:{row[1]}:{row[2]!r}"

    def has_cell(self, cell_key: str) -> bool:
        """True once the cell has been written."""
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM cells WHERE cell_key = ?", (cell_key,)).fetchone()
        return row is not None

    def _frame(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        with self._connect() as conn:
            return pd.read_sql_query(sql, conn, params=params)

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep: sweep_id, name, config_json, created, cells (how many written).

        Returns
        -------
        pandas.DataFrame
            Oldest sweep first.
        """
        return self._frame(
            "SELECT s.sweep_id, s.name, s.config_json, s.created, COUNT(c.cell_key) AS cells "
            "FROM sweeps s LEFT JOIN cells c ON c.sweep_id = s.sweep_id "
            "GROUP BY s.sweep_id ORDER BY s.created, s.sweep_id"
        )

    def cells(self, sweep_id: str | None = None) -> pd.DataFrame:
        """One row per cell (all columns of the ``cells`` table), in the order they were written.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's cells; None for all.

        Returns
        -------
        pandas.DataFrame
            cell_key, sweep_id, model, model_hash, model_path, dataset, arch, criterion, loss,
            seed, target_reduction, flops_reduction, macs, params, file_size, latency_ms,
            weight_sparsity, accuracy, gap, std_delta, max_psi, split, config_json, created
            (Unix seconds).
        """
        where, params = _where(sweep_id, "sweep_id")
        return self._frame(f"SELECT * FROM cells {where} ORDER BY created, cell_key", params)

    def group_rows(self, sweep_id: str | None = None) -> pd.DataFrame:
        """One row per (cell, group): cell_key, split, then ``group_metrics``' columns.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's rows; None for all.

        Returns
        -------
        pandas.DataFrame
            Ordered by cell write time, then cell_key, then group name.
        """
        where, params = _where(sweep_id, "c.sweep_id")
        df = self._frame(
            "SELECT g.* FROM group_rows g JOIN cells c ON c.cell_key = g.cell_key "
            f"{where} ORDER BY c.created, g.cell_key, g.grp",
            params,
        )
        return df.rename(columns={"grp": "group"})

    def export_long(self, sweep_id: str | None = None) -> pd.DataFrame:
        """Long format, one row per (model, group): the columns of ``LONG_COLUMNS``.

        The dense baseline has ``target_reduction`` 0 and criterion = loss = "dense"; the row
        ``group == "overall"`` holds the whole split.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's rows; None for all.

        Returns
        -------
        pandas.DataFrame
            Sorted by sweep_id, criterion, loss, target_reduction, seed, cell_key, then group
            name with ``overall`` last, so equal stores export equal tables.
        """
        where, params = _where(sweep_id, "c.sweep_id")
        df = self._frame(
            "SELECT c.sweep_id, c.cell_key, c.model, c.model_hash, c.dataset, c.arch, "
            "c.criterion, c.loss, c.seed, c.target_reduction, c.flops_reduction, c.macs, "
            'c.params, g.grp AS "group", g.n, g.accuracy, g.accuracy_low, g.accuracy_high, '
            "g.balanced_accuracy, g.auroc, g.tpr, g.fpr, g.selection_rate "
            f"FROM cells c JOIN group_rows g ON g.cell_key = c.cell_key {where} "
            "ORDER BY c.sweep_id, c.criterion, c.loss, c.target_reduction, c.seed, c.cell_key, "
            "g.grp = 'overall', g.grp",
            params,
        )
        return df[LONG_COLUMNS]

    def export_csv(self, path: str | Path, sweep_id: str | None = None) -> int:
        """Write ``export_long`` to a CSV file (no index column).

        Parameters
        ----------
        path : str or Path
            The CSV file to write.
        sweep_id : str, optional
            Only this sweep; None for all.

        Returns
        -------
        int
            Rows written.
        """
        df = self.export_long(sweep_id)
        df.to_csv(path, index=False)
        return len(df)

    def cell_config(self, cell_key: str) -> dict:
        """The config stored with a cell."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT config_json FROM cells WHERE cell_key=?", (cell_key,)
            ).fetchone()
        return json.loads(row[0]) if row else {}

    def cell_of_model(self, model_hash: str, split_key: str | None = None) -> str | None:
        """The newest cell whose model has this content hash (and, when given, whose stored
        predictions are on ``split_key``), or None: pages read it instead of re-running the model.
        """
        found = self.cells_of_model(model_hash, split_key)
        return found[0] if found else None

    def cells_of_model(self, model_hash: str, split_key: str | None = None) -> list[str]:
        """Every cell whose model has this content hash (and, when given, whose stored
        predictions are on ``split_key``), newest first: one model can be a cell of several
        sweeps (a dense baseline is one of every sweep that starts from it)."""
        sql = (
            "SELECT c.cell_key FROM cells c JOIN predictions p ON p.cell_key = c.cell_key "
            "WHERE c.model_hash = ?"
        )
        params: tuple = (model_hash,)
        if split_key is not None:
            sql += " AND p.split_key = ?"
            params += (split_key,)
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY c.created DESC, c.cell_key", params).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))

    def cell_groups(self, cell_key: str) -> pd.DataFrame:
        """One cell's per-group rows as stored (``group_metrics``' columns), "overall" last."""
        df = self._frame(
            "SELECT * FROM group_rows WHERE cell_key = ? ORDER BY grp = 'overall', grp",
            (cell_key,),
        ).rename(columns={"grp": "group"})
        return df[["group", *GROUP_METRIC_COLUMNS]]

    def predictions(self, cell_keys) -> dict[str, StoredPredictions]:
        """Stored per-sample predictions of the given cells (cells stored without any are absent).

        Parameters
        ----------
        cell_keys : iterable of str

        Returns
        -------
        dict
            ``{cell_key: StoredPredictions}``.
        """
        keys = list(dict.fromkeys(cell_keys))
        out: dict[str, StoredPredictions] = {}
        with self._connect() as conn:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[start : start + 500]
                rows = conn.execute(
                    "SELECT cell_key, split, n, num_classes, split_key, group_names, class_names, "
                    f"y_true, y_pred, groups, probs FROM predictions WHERE cell_key IN "
                    f"({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, split, n, k, split_key, gnames, cnames, yt, yp, gr, pr in rows:
                    out[key] = StoredPredictions(
                        cell_key=key,
                        split=split,
                        split_key=split_key,
                        y_true=np.frombuffer(yt, _CODE_DTYPE, count=n).astype(np.int64),
                        y_pred=np.frombuffer(yp, _CODE_DTYPE, count=n).astype(np.int64),
                        groups=np.frombuffer(gr, _CODE_DTYPE, count=n).astype(np.int64),
                        probs=np.frombuffer(pr, _PROB_DTYPE, count=n * k)
                        .astype(np.float32)
                        .reshape(n, k),
                        group_names=json.loads(gnames),
                        class_names=json.loads(cnames),
                    )
        return out
