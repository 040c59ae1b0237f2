"""Review decisions on a results store's sweeps and models: an append-only table.

The database itself refuses to change or delete a decision (SQLite triggers, a PostgreSQL trigger
function: ``store_dialects``), so the log holds even for other programs that open the store.
``ResultsStore`` gets its decision methods from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fairprune.errors import FairpruneError
from fairprune.sweep.store_actions import utc_stamp
from fairprune.sweep.store_schema import cells, decisions, sweeps

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
ERR_APPEND_ONLY = "decisions are append-only"  # raised by the database itself on UPDATE/DELETE
_SHA256 = re.compile(r"[0-9a-f]{64}")
DECISION_COLUMNS = [
    "id", "created", "kind", "subject", "decision", "reviewer", "reviewer_email", "comment",
]  # fmt: skip


class ReviewDecisions:
    """The results store's review decisions: a part of ``ResultsStore``, which provides
    ``transaction()`` (one write transaction) and ``read_frame(statement)``."""

    transaction: Callable[[], AbstractContextManager[Connection]]
    read_frame: Callable[..., pd.DataFrame]

    def record_decision(
        self,
        *,
        subject: str,
        kind: str,
        decision: str,
        reviewer: str,
        reviewer_email: str = "",
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
        reviewer_email : str, default ""
            Their email (the signed-in identity's, when sign-in is on).
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
        row = {
            "created": utc_stamp(when),
            "kind": kind,
            "subject": subject,
            "decision": decision,
            "reviewer": reviewer,
            "reviewer_email": (reviewer_email or "").strip(),
            "comment": (comment or "").strip(),
        }
        with self.transaction() as conn:
            if (
                kind == "sweep"
                and conn.execute(
                    sa.select(sweeps.c.sweep_id).where(sweeps.c.sweep_id == subject)
                ).first()
                is None
            ):
                raise FairpruneError(ERR_NO_SWEEP.format(subject=subject))
            row["id"] = conn.execute(sa.insert(decisions), row).inserted_primary_key[0]
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
            id, created (ISO 8601 UTC), kind, subject, decision, reviewer, reviewer_email,
            comment.
        """
        d = decisions.c
        query = sa.select(*(d[c] for c in DECISION_COLUMNS))
        if sweep_id is not None:
            its_models = sa.select(cells.c.model_hash).where(cells.c.sweep_id == sweep_id)
            query = query.where(sa.or_(
                sa.and_(d.kind == "sweep", d.subject == sweep_id),
                sa.and_(d.kind == "model", d.subject.in_(its_models)),
            ))  # fmt: skip
        if subject is not None:
            query = query.where(d.subject == subject)
        return self.read_frame(query.order_by(d.id))
