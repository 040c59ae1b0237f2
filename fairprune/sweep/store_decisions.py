"""Review decisions on a results store's sweeps and models: an append-only table.

SQLite itself refuses to change or delete a decision (two triggers), so the log holds even for
other programs that open the file. ``ResultsStore`` gets its decision methods from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from sqlite3 import Connection

import pandas as pd

from fairprune.errors import FairpruneError

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

DECISIONS_SCHEMA = f"""
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
BEGIN SELECT RAISE(ABORT, '{ERR_APPEND_ONLY}'); END;
CREATE TRIGGER IF NOT EXISTS decisions_never_go BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, '{ERR_APPEND_ONLY}'); END;
"""
"""The ``decisions`` table (schema 3), created with the store's other tables."""


class ReviewDecisions:
    """The results store's review decisions: a part of ``ResultsStore``, which provides
    ``connect()`` (one connection per operation) and ``read_frame(sql, params)``."""

    connect: Callable[[], AbstractContextManager[Connection]]
    read_frame: Callable[..., pd.DataFrame]

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
        with self.connect() as conn, conn:
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
        return self.read_frame(sql + " ORDER BY id", tuple(params))
