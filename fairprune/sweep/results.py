"""The results store: one SQLite file (WAL mode), one transaction per finished sweep cell, and the
review decisions taken on its sweeps and models (append-only).

Connections are opened per operation, so a store object can be shared by Streamlit's script
threads and two processes can write to one file at once without mixing or losing rows.

``ResultsStore`` is assembled from one module per concern, all of which import only each other
and light modules (never this package's ``__init__``): ``store_schema`` (the file, its schema and
migrations, connections), ``store_predictions`` (per-sample predictions as bytes),
``store_decisions`` (the append-only review log), ``store_writes`` and ``store_reads``. Every name
other code uses is importable from here.
"""

from __future__ import annotations

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
    ERR_UNWRITABLE,
    GROUP_METRIC_COLUMNS,
    NOT_SQLITE,
    OTHER_TABLES,
    SCHEMA_VERSION,
    StoreFile,
)
from fairprune.sweep.store_writes import CellWrites

__all__ = [
    "DAMAGED",
    "DECISIONS",
    "DECISION_COLUMNS",
    "DECISION_KINDS",
    "ERR_APPEND_ONLY",
    "ERR_BAD_DECISION",
    "ERR_BAD_KIND",
    "ERR_BAD_MODEL_HASH",
    "ERR_NEWER_SCHEMA",
    "ERR_NOT_A_STORE",
    "ERR_NO_REVIEWER",
    "ERR_NO_SWEEP",
    "ERR_UNWRITABLE",
    "GROUP_METRIC_COLUMNS",
    "LONG_COLUMNS",
    "NOT_SQLITE",
    "OTHER_TABLES",
    "SCHEMA_VERSION",
    "ResultsStore",
    "StoredPredictions",
]


class ResultsStore(CellWrites, CellReads, ReviewDecisions, StoreFile):
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
