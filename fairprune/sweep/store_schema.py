"""The results store's database: its tables, schema version and migrations, and the connection
each operation opens, on SQLite (a file) or PostgreSQL (a server URL).

``StoreFile`` is the base of ``ResultsStore``: it refuses a database that is not a store (or a
newer one), creates or upgrades the schema in one transaction, and hands out one connection per
operation. The tables are SQLAlchemy Core ``Table``s, one set for both databases; what differs
between them is in ``store_dialects``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import fairprune.sweep.store_dialects as dialects
from fairprune.errors import FairpruneError
from fairprune.metrics import METRIC_COLUMNS
from fairprune.sweep.store_dialects import POSTGRESQL, SQLITE

SCHEMA_VERSION = 4
"""2: per-sample predictions of every cell; 3: review decisions (append-only); 4: the reviewer's
email on decisions, operator actions (append-only)."""
ERR_NOT_A_STORE = (
    "{path} is not a fairprune results store ({reason}); choose another file or move it away and "
    "rerun the sweep."
)
ERR_UNWRITABLE = (
    "cannot open the results store at {path} ({reason}); choose a writable location (--results)."
)
ERR_NEWER_SCHEMA = "{path} was written by a newer fairprune (schema {found}); upgrade fairprune."
ERR_PG_UNREACHABLE = (
    "cannot reach the PostgreSQL results store at {location} ({reason}); check the URL, the "
    "server and the credentials."
)
NOT_SQLITE = "not an SQLite database"
DAMAGED = "the SQLite file is damaged"
OTHER_TABLES = "it holds other tables"
"""The ``reason`` of ``ERR_NOT_A_STORE``: fixed words, not SQLite's, so the message is stable."""
_PROBLEMS = {"not sqlite": NOT_SQLITE, "damaged": DAMAGED}

GROUP_METRIC_COLUMNS = [c for c in METRIC_COLUMNS if c != "group"]
"""The metric columns of the ``group_rows`` table (its group column is ``grp``)."""

_TEXT = dialects.text_type()
_REAL = sa.Double()  # float8 on both: every stored number reads back exactly
_INT = sa.BigInteger()  # MACs and parameter counts pass 2**31

metadata = sa.MetaData()
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("sweep_id", _TEXT, primary_key=True),
    sa.Column("name", _TEXT, nullable=False, server_default=""),
    sa.Column("config_json", _TEXT, nullable=False),
    sa.Column("created", _REAL, nullable=False),  # Unix seconds
)
cells = sa.Table(
    "cells",
    metadata,
    sa.Column("cell_key", _TEXT, primary_key=True),
    sa.Column("sweep_id", _TEXT, nullable=False),
    sa.Column("model", _TEXT, nullable=False),
    sa.Column("model_hash", _TEXT, nullable=False),
    sa.Column("model_path", _TEXT),
    sa.Column("dataset", _TEXT),
    sa.Column("arch", _TEXT),
    sa.Column("criterion", _TEXT, nullable=False),
    sa.Column("loss", _TEXT, nullable=False),
    sa.Column("seed", _INT),
    sa.Column("target_reduction", _REAL, nullable=False),
    sa.Column("flops_reduction", _REAL, nullable=False),
    sa.Column("macs", _INT),
    sa.Column("params", _INT),
    sa.Column("file_size", _INT),
    sa.Column("latency_ms", _REAL),
    sa.Column("weight_sparsity", _REAL),
    sa.Column("accuracy", _REAL),
    sa.Column("gap", _REAL),
    sa.Column("std_delta", _REAL),
    sa.Column("max_psi", _REAL),
    sa.Column("split", _TEXT, nullable=False),
    sa.Column("config_json", _TEXT, nullable=False),
    sa.Column("created", _REAL, nullable=False),  # Unix seconds
    sa.Index("cells_by_sweep", "sweep_id"),
    sa.Index("cells_by_model", "model_hash"),
)
_CELL_FK = sa.ForeignKey("cells.cell_key", ondelete="CASCADE")
group_rows = sa.Table(
    "group_rows",
    metadata,
    sa.Column("cell_key", _TEXT, _CELL_FK, primary_key=True),
    sa.Column("split", _TEXT, primary_key=True),
    sa.Column("grp", _TEXT, primary_key=True),
    *(sa.Column(c, _INT if c == "n" else _REAL) for c in GROUP_METRIC_COLUMNS),
)
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column(
        "cell_key", _TEXT, sa.ForeignKey("cells.cell_key", ondelete="CASCADE"), primary_key=True
    ),  # fmt: skip
    sa.Column("split", _TEXT, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("num_classes", sa.Integer, nullable=False),
    sa.Column("split_key", _TEXT, nullable=False),
    sa.Column("group_names", _TEXT, nullable=False),  # JSON list
    sa.Column("class_names", _TEXT, nullable=False),  # JSON list
    *(
        sa.Column(c, sa.LargeBinary, nullable=False)
        for c in ("y_true", "y_pred", "groups", "probs")
    ),
)
decisions = sa.Table(  # append-only: the database refuses UPDATE and DELETE
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", _TEXT, nullable=False),  # ISO 8601 UTC
    sa.Column("kind", _TEXT, sa.CheckConstraint("kind IN ('sweep', 'model')"), nullable=False),
    sa.Column("subject", _TEXT, nullable=False),
    sa.Column(
        "decision",
        _TEXT,
        sa.CheckConstraint("decision IN ('accept', 'needs work', 'reject')"),
        nullable=False,
    ),  # fmt: skip
    sa.Column(
        "reviewer", _TEXT, sa.CheckConstraint("length(trim(reviewer)) > 0"), nullable=False
    ),  # fmt: skip
    sa.Column("comment", _TEXT, nullable=False, server_default=""),
    sa.Column("reviewer_email", _TEXT, nullable=False, server_default=""),  # schema 4
    sa.Index("decisions_by_subject", "subject"),
    sqlite_autoincrement=True,  # an id is never reused
)
actions = sa.Table(  # append-only, like decisions (schema 4)
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", _TEXT, nullable=False),  # ISO 8601 UTC
    sa.Column("actor", _TEXT, sa.CheckConstraint("length(trim(actor)) > 0"), nullable=False),
    sa.Column("actor_email", _TEXT, nullable=False, server_default=""),
    sa.Column("action", _TEXT, nullable=False),
    sa.Column("subject", _TEXT, nullable=False, server_default=""),
    sa.Column("detail", _TEXT, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)
_TABLES = set(metadata.tables)  # of SCHEMA_VERSION
# in every schema: a database without these is not a store
_REQUIRED = {"sweeps", "cells", "group_rows"}


class StoreFile:
    """The database under a results store: opened, checked and migrated on construction.

    Parameters
    ----------
    location : str or Path
        An SQLite file (created with its schema when missing) or a ``postgresql://`` URL (its
        database must exist; the schema is created in it when missing).

    Attributes
    ----------
    kind : str
        ``"sqlite"`` or ``"postgresql"``.
    path : Path or None
        The SQLite file; None on PostgreSQL.
    location : str
        Where the store is, fit to show (a URL's password masked).

    Raises
    ------
    FairpruneError
        ``ERR_NOT_A_STORE`` (not SQLite, damaged, or another program's database),
        ``ERR_NEWER_SCHEMA``, ``ERR_UNWRITABLE`` (SQLite) or ``ERR_PG_UNREACHABLE``.
    """

    def __init__(self, location: str | Path):
        self._loc = dialects.parse_location(location)
        self.kind = self._loc.kind
        self.path = self._loc.path
        self.location = self._loc.display
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FairpruneError(
                    ERR_UNWRITABLE.format(path=self.path, reason=exc.strerror)
                ) from None
        self.engine = dialects.engine_for(self._loc)
        self._open()

    @property
    def url(self) -> str | None:
        """The PostgreSQL URL, password included: for connecting, never for showing (None on
        SQLite)."""
        return dialects.libpq_url(self._loc) if self.kind == POSTGRESQL else None

    def _fail(self, exc: sa.exc.DBAPIError, *, connecting: bool) -> Exception:
        """The one-line error for a database error, or ``exc`` itself when it is not about the
        store's file or server (a lock held past the busy timeout, a disk full, a bug)."""
        if self.kind == POSTGRESQL:
            if connecting or exc.connection_invalidated:
                reason = dialects.server_reason(exc.orig, self._loc)
                return FairpruneError(
                    ERR_PG_UNREACHABLE.format(location=self.location, reason=reason)
                )
            return exc
        problem = dialects.sqlite_problem(exc.orig)
        if problem is not None:
            return FairpruneError(ERR_NOT_A_STORE.format(path=self.path, reason=_PROBLEMS[problem]))
        if connecting:
            return FairpruneError(ERR_UNWRITABLE.format(path=self.path, reason=exc.orig))
        return exc

    @contextmanager
    def connect(self, **options) -> Iterator[Connection]:
        """A connection for one operation, closed (its reads rolled back) on exit.

        Parameters
        ----------
        **options
            Execution options for the connection.

        Raises
        ------
        FairpruneError
            ``ERR_UNWRITABLE`` when the SQLite file cannot be opened, ``ERR_NOT_A_STORE`` when
            SQLite finds it is not a database or damaged, ``ERR_PG_UNREACHABLE`` when the server
            cannot be reached (or drops the connection).
        """
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise self._fail(exc, connecting=True) from None
        try:
            if options:
                conn.execution_options(**options)
            yield conn
        except sa.exc.DBAPIError as exc:
            failure = self._fail(exc, connecting=False)
            if failure is exc:
                raise
            raise failure from None
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one write transaction: committed when the block ends, rolled back
        (nothing of it kept) when it raises."""
        with self.connect(**dialects.write_options(self.kind)) as conn, conn.begin():
            yield conn

    def read_frame(self, statement: sa.Select) -> pd.DataFrame:
        """The rows of one query (a Core ``select``) as a DataFrame; a numeric column is float
        or int even when every row is NULL (NaN), as it is when some are."""
        with self.connect() as conn:
            df = pd.read_sql(statement, conn)
        for column in statement.selected_columns:
            numeric = isinstance(column.type, sa.Float | sa.Integer)
            if numeric and column.name in df and df[column.name].dtype == object:
                df[column.name] = df[column.name].astype("float64")
        return df

    def _state(self, conn: Connection) -> tuple[int, set[str], set[str]]:
        try:
            return dialects.schema_state(conn, self.kind)
        except sa.exc.DBAPIError as exc:
            if self.kind == POSTGRESQL or "locked" in str(exc) or "busy" in str(exc):
                raise  # another writer held it past the busy timeout: not a format problem
            problem = dialects.sqlite_problem(exc.orig) or "not sqlite"
            raise FairpruneError(
                ERR_NOT_A_STORE.format(path=self.path, reason=_PROBLEMS[problem])
            ) from None

    def _check(self, version: int, tables: set[str]) -> None:
        if version > SCHEMA_VERSION:
            raise FairpruneError(ERR_NEWER_SCHEMA.format(path=self.location, found=version))
        if tables and not _REQUIRED <= tables:
            raise FairpruneError(ERR_NOT_A_STORE.format(path=self.location, reason=OTHER_TABLES))

    def _open(self) -> None:
        with self.connect(**dialects.no_transaction_options(self.kind)) as conn:
            version, tables, _ = self._state(conn)
            self._check(version, tables)
            if self.kind == SQLITE and dialects.journal_mode(conn, SQLITE) != "wal":
                # switching needs an exclusive lock, so only the creator (or an old file) does it
                dialects.use_wal(conn)
            if version == SCHEMA_VERSION and _TABLES <= tables:
                return  # opening must not write: the dashboard's caches key on the store's state
        # one transaction: a second process opening the new store sees all tables or none; an
        # older store gains the new tables and columns and keeps every row
        with self.transaction() as conn:
            dialects.lock_schema(conn, self.kind)  # the second process waits here, then sees it
            version, tables, columns = self._state(conn)
            self._check(version, tables)
            if version == SCHEMA_VERSION and _TABLES <= tables:
                return
            metadata.create_all(conn)  # the missing tables, with their indexes
            for table in metadata.sorted_tables:
                for index in table.indexes:  # an older store's tables may lack one
                    index.create(conn, checkfirst=True)
            if "decisions" in tables and "reviewer_email" not in columns:  # schema 3
                conn.execute(sa.text(
                    "ALTER TABLE decisions ADD COLUMN reviewer_email TEXT NOT NULL DEFAULT ''"
                ))  # fmt: skip
            dialects.create_append_only(conn, self.kind)
            dialects.set_version(conn, self.kind, SCHEMA_VERSION)
