"""The results store: an SQLite file (WAL mode; the embedded default) or a PostgreSQL database (a
``postgresql://`` URL; a team's shared store), one transaction per finished sweep cell, and the
review decisions and operator actions taken on it (append-only).

Connections are opened per operation, so a store object can be shared by Streamlit's script
threads, and several processes (sweeps, dashboards, on several machines with PostgreSQL) can
write to one store at once without mixing or losing rows.

``ResultsStore`` is assembled from one module per concern, all of which import only each other
and light modules (never this package's ``__init__``): ``store_schema`` (the tables, the schema
and its migrations, connections), ``store_dialects`` (what differs between SQLite and
PostgreSQL), ``store_predictions`` (per-sample predictions as bytes), ``store_decisions`` (the
append-only review log), ``store_actions`` (the append-only log of operator actions),
``store_writes`` and ``store_reads``. Every name other code uses is importable from here.
"""

from __future__ import annotations

from fairprune.sweep.store_actions import (
    ACTION_COLUMNS,
    ACTIONS,
    ERR_ACTIONS_APPEND_ONLY,
    ERR_BAD_ACTION,
    ERR_NO_ACTOR,
    OperatorActions,
)
from fairprune.sweep.store_decisions import (
    DECISION_COLUMNS,
    DECISION_KINDS,
    DECISIONS,
    ERR_APPEND_ONLY,
    ERR_BAD_DECISION,
    ERR_BAD_KIND,
    ERR_BAD_MODEL_HASH,
    ERR_NO_REVIEWER,
    ERR_NO_SWEEP,
    ReviewDecisions,
)
from fairprune.sweep.store_predictions import StoredPredictions
from fairprune.sweep.store_reads import LONG_COLUMNS, CellReads
from fairprune.sweep.store_schema import (
    DAMAGED,
    ERR_NEWER_SCHEMA,
    ERR_NOT_A_STORE,
    ERR_PG_UNREACHABLE,
    ERR_UNWRITABLE,
    GROUP_METRIC_COLUMNS,
    NOT_SQLITE,
    OTHER_TABLES,
    SCHEMA_VERSION,
    StoreFile,
)
from fairprune.sweep.store_writes import CellWrites

__all__ = [
    "ACTIONS",
    "ACTION_COLUMNS",
    "ERR_BAD_ACTION",
    "ERR_NO_ACTOR",
    "DAMAGED",
    "DECISIONS",
    "DECISION_COLUMNS",
    "DECISION_KINDS",
    "ERR_ACTIONS_APPEND_ONLY",
    "ERR_APPEND_ONLY",
    "ERR_BAD_DECISION",
    "ERR_BAD_KIND",
    "ERR_BAD_MODEL_HASH",
    "ERR_NEWER_SCHEMA",
    "ERR_NOT_A_STORE",
    "ERR_NO_REVIEWER",
    "ERR_NO_SWEEP",
    "ERR_PG_UNREACHABLE",
    "ERR_UNWRITABLE",
    "GROUP_METRIC_COLUMNS",
    "LONG_COLUMNS",
    "NOT_SQLITE",
    "OTHER_TABLES",
    "SCHEMA_VERSION",
    "ResultsStore",
    "StoredPredictions",
]


class ResultsStore(CellWrites, CellReads, ReviewDecisions, OperatorActions, StoreFile):
    """Sweep results in one SQLite file or one PostgreSQL database.

    An SQLite file is in WAL mode with a busy timeout, and every write is one transaction, so
    sweeps in several processes can share it; PostgreSQL serves several machines. No connection
    is kept per store object: each operation takes its own (SQLite connections must not cross
    threads, and Streamlit reruns a page in a new thread). The schema version is SQLite's
    ``PRAGMA user_version`` or PostgreSQL's ``fairprune_meta`` table; opening a store whose
    schema is current never writes to it.

    Parameters
    ----------
    location : str or Path
        The database file (created with its schema when missing), or a ``postgresql://`` URL
        (the database must exist; its schema is created when missing).

    Raises
    ------
    FairpruneError
        ``ERR_NOT_A_STORE`` (not SQLite, damaged, or another program's database),
        ``ERR_NEWER_SCHEMA``, ``ERR_UNWRITABLE`` or ``ERR_PG_UNREACHABLE``.
    """
