"""Operator actions on a results store: who started or cancelled a sweep, added or removed a
model, changed the store, and when: an append-only table, like the review decisions.

The database itself refuses to change or delete an action, so the log holds even for other
programs that open the store. ``ResultsStore`` gets its action methods from here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fairprune.errors import FairpruneError
from fairprune.sweep.store_schema import actions as actions_table

ACTIONS = ("sweep started", "sweep cancelled", "model added", "model removed", "store changed")
"""What an operator can do that the store records."""
ACTION_COLUMNS = ["id", "created", "actor", "actor_email", "action", "subject", "detail"]
ERR_BAD_ACTION = (
    "unknown action {value!r}; choose one of: sweep started, sweep cancelled, model added, "
    "model removed, store changed."
)
ERR_NO_ACTOR = "an operator action records who took it: give the actor's name."
ERR_ACTIONS_APPEND_ONLY = "actions are append-only"  # raised by the database on UPDATE/DELETE


def utc_stamp(when: datetime | None) -> str:
    """``when`` (default: now) as ISO 8601 UTC to the second, ``Z``-suffixed."""
    stamp = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


class OperatorActions:
    """The results store's operator actions: a part of ``ResultsStore``, which provides
    ``transaction()`` (one write transaction) and ``read_frame(statement)``."""

    transaction: Callable[[], AbstractContextManager[Connection]]
    read_frame: Callable[..., pd.DataFrame]

    def record_action(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        actor_email: str = "",
        detail: str = "",
        when: datetime | None = None,
    ) -> dict:
        """Append one operator action (actions are never changed or deleted).

        Parameters
        ----------
        actor : str
            Who acted (required): the signed-in name, or ``"<user> (command line)"``.
        action : str
            One of ``ACTIONS``.
        subject : str
            What it was done to: a sweep id or job key, a model name, a store location.
        actor_email : str, default ""
        detail : str, default ""
        when : datetime, optional
            The time of the action (default: now); stored as ISO 8601 UTC.

        Returns
        -------
        dict
            The stored row (``ACTION_COLUMNS``).

        Raises
        ------
        FairpruneError
            ``ERR_NO_ACTOR`` or ``ERR_BAD_ACTION``.
        """
        actor = (actor or "").strip()
        if not actor:
            raise FairpruneError(ERR_NO_ACTOR)
        if action not in ACTIONS:
            raise FairpruneError(ERR_BAD_ACTION.format(value=action))
        row = {
            "created": utc_stamp(when),
            "actor": actor,
            "actor_email": (actor_email or "").strip(),
            "action": action,
            "subject": (subject or "").strip(),
            "detail": (detail or "").strip(),
        }
        with self.transaction() as conn:
            row["id"] = conn.execute(sa.insert(actions_table), row).inserted_primary_key[0]
        return {c: row[c] for c in ACTION_COLUMNS}

    def actions(self, limit: int | None = None) -> pd.DataFrame:
        """Operator actions, oldest first (``ACTION_COLUMNS``).

        Parameters
        ----------
        limit : int, optional
            Only the newest ``limit`` actions (still oldest first).

        Returns
        -------
        pandas.DataFrame
            id, created (ISO 8601 UTC), actor, actor_email, action, subject, detail.
        """
        a = actions_table.c
        query = sa.select(*(a[c] for c in ACTION_COLUMNS)).order_by(a.id.desc())
        if limit is not None:
            query = query.limit(int(limit))
        newest = query.subquery()
        return self.read_frame(sa.select(newest).order_by(newest.c.id))
