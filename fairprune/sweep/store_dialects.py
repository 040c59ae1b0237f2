"""What differs between the results store's two databases, kept in one place.

SQLite (a file: WAL, a busy timeout, the schema version in ``PRAGMA user_version``, triggers) and
PostgreSQL (a server named by a URL: the version in a one-row ``fairprune_meta`` table, advisory
locks, one trigger function). Tables and statements are SQLAlchemy Core and the same on both
(``store_schema`` and the modules that use it); only what cannot be is here.

One engine per location per process (``engine_for``). SQLite's engine holds no connection
(``NullPool``): each operation opens its own and closes it, so no SQLite connection crosses
threads (Streamlit reruns a page in a new thread) and the file's WAL is checkpointed as before.
PostgreSQL's engine keeps a small pool, checked before use.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from fairprune.paths import display_location, is_store_url

SQLITE, POSTGRESQL = "sqlite", "postgresql"
APPEND_ONLY_TABLES = ("decisions", "actions")
"""Tables whose rows the database itself refuses to change or delete: ``"<table> are append-only"``."""
META_TABLE = "fairprune_meta"  # PostgreSQL: one row, the schema version
_BEGIN = "fairprune_begin"  # execution option: how SQLite's transaction begins ("" = none)
_LOCK_SPACE = 0x0FA1_9B0E  # first key of every advisory lock this store takes (PostgreSQL)
_SCHEMA_LOCK = 0  # second key of the lock around creating or migrating the schema


@dataclass(frozen=True)
class Location:
    """Where a results store lives."""

    kind: str  # SQLITE or POSTGRESQL
    path: Path | None  # the file (SQLite)
    url: URL | None  # the server database, password included, with the psycopg driver
    display: str  # fit to show or log: a URL's password masked

    @property
    def key(self) -> str:
        """The engine cache's key."""
        if self.url is not None:
            return self.url.render_as_string(hide_password=False)
        return str(self.path)


def parse_location(value: str | Path) -> Location:
    """A store location (an SQLite file path, or a ``postgresql://`` URL) as a ``Location``."""
    if is_store_url(value):
        url = make_url(str(value).strip())
        if url.drivername == POSTGRESQL:  # SQLAlchemy's default driver is psycopg2: use psycopg 3
            url = url.set(drivername="postgresql+psycopg")
        return Location(POSTGRESQL, None, url, display_location(str(value)))
    path = Path(value)
    return Location(SQLITE, path, None, str(path))


def libpq_url(loc: Location) -> str:
    """The PostgreSQL URL as libpq (``psycopg.connect``) takes it, password included."""
    return loc.url.set(drivername="postgresql").render_as_string(hide_password=False)


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(loc: Location) -> Engine:
    """The process's one engine for ``loc`` (made on first use)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(loc.key)
        if engine is None:
            engine = _sqlite_engine(loc.path) if loc.kind == SQLITE else _pg_engine(loc.url)
            _ENGINES[loc.key] = engine
        return engine


def forget_engine(loc: Location) -> None:
    """Close and drop the cached engine of ``loc`` (e.g. before its database is dropped)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(loc.key, None)
    if engine is not None:
        engine.dispose()


def _after_fork() -> None:
    # a forked child must not share the parent's pooled PostgreSQL sockets: it opens its own
    for engine in list(_ENGINES.values()):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork)


def _sqlite_engine(path: Path) -> Engine:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60.0)
        # SQLAlchemy (the "begin" hook below), not the driver, says when a transaction begins:
        # the driver's own rule would leave DDL and reads outside any transaction
        conn.isolation_level = None
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    engine = sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        statement = conn.get_execution_options().get(_BEGIN, "BEGIN")
        if statement:
            conn.exec_driver_sql(statement)

    return engine


def _pg_engine(url: URL) -> Engine:
    return sa.create_engine(
        url,
        pool_size=2,
        max_overflow=6,
        pool_pre_ping=True,  # a server restart or an idle timeout must not fail the next read
        pool_recycle=1800,
        connect_args={"connect_timeout": 10, "application_name": "fairprune"},
    )


def write_options(kind: str) -> dict:
    """Execution options of a write transaction: on SQLite it takes the write lock at BEGIN, so
    a writer never fails to upgrade a read lock another writer got first (no busy timeout helps
    there); PostgreSQL locks rows as it goes."""
    return {_BEGIN: "BEGIN IMMEDIATE"} if kind == SQLITE else {}


def no_transaction_options(kind: str) -> dict:
    """Execution options of a connection that must not begin a transaction (SQLite's
    ``PRAGMA journal_mode``)."""
    return {_BEGIN: ""} if kind == SQLITE else {}


def schema_state(conn: Connection, kind: str) -> tuple[int, set[str], set[str]]:
    """(schema version, the names of the database's tables, the columns of ``decisions``)."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    columns = (
        {c["name"] for c in inspector.get_columns("decisions")} if "decisions" in tables else set()
    )
    if kind == SQLITE:
        version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    elif META_TABLE in tables:
        version = conn.execute(sa.text(f"SELECT MAX(version) FROM {META_TABLE}")).scalar() or 0
    else:
        version = 0
    tables.discard(META_TABLE)
    return int(version), tables, columns


def journal_mode(conn: Connection, kind: str) -> str | None:
    """SQLite's journal mode (None on PostgreSQL)."""
    if kind != SQLITE:
        return None
    return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()).lower()


def use_wal(conn: Connection, wait: float = 60.0) -> None:
    """Switch an SQLite file to WAL (outside any transaction: it needs an exclusive lock).

    SQLite can answer "database is locked" at once, without its busy timeout, while another
    process creates the same new file: wait and retry (the other process may switch it first).
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            return
        except sa.exc.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
        if journal_mode(conn, SQLITE) == "wal":
            return


def lock_schema(conn: Connection, kind: str) -> None:
    """Inside the schema's transaction: make a second process creating or migrating the same
    store wait for this one (SQLite's ``BEGIN IMMEDIATE`` already does)."""
    if kind == POSTGRESQL:
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _LOCK_SPACE, "b": _SCHEMA_LOCK}
        )


def lock_cell(conn: Connection, kind: str, cell_key: str) -> None:
    """Inside a cell's write: two writers of one cell take turns, so the second replaces the
    first rather than failing on its key (SQLite's ``BEGIN IMMEDIATE`` already serialises)."""
    if kind == POSTGRESQL:
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": _LOCK_SPACE, "b": lock_key("cell", cell_key)},
        )


def lock_key(what: str, name: str) -> int:
    """A signed 32-bit advisory lock key for ``name`` (a sweep id, a cell key), never 0."""
    digest = hashlib.sha256(f"{what}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True) or 1


def sweep_lock_keys(sweep_id: str) -> tuple[int, int]:
    """The two keys of a sweep's session-level advisory lock (``fairprune.sweep.sweep_lock``)."""
    return _LOCK_SPACE, lock_key("sweep", sweep_id)


def create_append_only(conn: Connection, kind: str) -> None:
    """Make the database refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) on the
    append-only tables, with the message ``"<table> are append-only"``."""
    if kind == SQLITE:
        for table in APPEND_ONLY_TABLES:
            for name, event in (("never_change", "UPDATE"), ("never_go", "DELETE")):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_{name} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
                )
        return
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION fairprune_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' are append-only'; END $$"
    )
    for table in APPEND_ONLY_TABLES:
        for name, event, each in (
            ("never_change", "UPDATE OR DELETE", "ROW"),
            ("never_truncate", "TRUNCATE", "STATEMENT"),
        ):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_{name} BEFORE {event} ON {table} "
                f"FOR EACH {each} EXECUTE FUNCTION fairprune_append_only()"
            )


def set_version(conn: Connection, kind: str, version: int) -> None:
    """Record the schema version (inside the schema's transaction)."""
    if kind == SQLITE:
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        return
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (version INTEGER NOT NULL)")
    conn.exec_driver_sql(f"DELETE FROM {META_TABLE}")
    conn.execute(sa.text(f"INSERT INTO {META_TABLE} (version) VALUES (:v)"), {"v": int(version)})


def insert_ignoring_duplicates(table: sa.Table, kind: str):
    """``INSERT ... ON CONFLICT DO NOTHING`` on ``table`` in the store's dialect."""
    insert = sqlite.insert if kind == SQLITE else postgresql.insert
    return insert(table).on_conflict_do_nothing()


def text_type() -> sa.types.TypeEngine:
    """Text that compares and sorts byte by byte on both databases (SQLite's BINARY collation;
    ``COLLATE "C"`` on PostgreSQL, whose default follows the server's locale), so both stores
    sort and export the same rows in the same order."""
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), POSTGRESQL)


def sqlite_problem(exc: BaseException) -> str | None:
    """``"not sqlite"``/``"damaged"`` when SQLite says the file itself is wrong, else None."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    text = str(exc)
    if "not a database" in text or "file is encrypted" in text:
        return "not sqlite"
    if "malformed" in text or "corrupt" in text:
        return "damaged"
    return None


def server_reason(exc: BaseException, loc: Location) -> str:
    """The driver's reason a server could not be reached, one line, no password in it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    password = loc.url.password if loc.url is not None else None
    if password:
        reason = reason.replace(str(password), "***")
    return reason.rstrip(".")
