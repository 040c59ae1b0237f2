"""Review decisions on the pages: the form that records one and the table that lists them.

Decisions are append-only in the results store (``ResultsStore.record_decision``). Only a
reviewer records one (``record_decision`` refuses anyone else, whatever the page drew); with
sign-in on, the decision is signed by the signed-in identity (name and email from the ID token)
and the form has no "Reviewer" box.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairprune import auth
from fairprune.app import identity
from fairprune.app.tables import results_store
from fairprune.errors import FairpruneError

ERR_PICK_DECISION = "Choose a decision: accept, needs work or reject."
READ_ONLY = "Review decisions are recorded by reviewers; your role ({roles}) reads them."


def decisions(sweep_id: str | None = None, subject: str | None = None) -> pd.DataFrame:
    """Review decisions from the store, oldest first (read fresh: the table is small)."""
    return results_store().decisions(sweep_id=sweep_id, subject=subject)


def operator_actions() -> pd.DataFrame:
    """Operator actions from the store (``ResultsStore.actions``: sweeps started and cancelled,
    models added and removed), oldest first (read fresh: the table is small)."""
    return results_store().actions()


def show_actions(table: pd.DataFrame, key: str) -> None:
    """The operator actions as a table, newest first (or a caption when there are none)."""
    from fairprune.app.views import actions_display

    if table.empty:
        st.caption("No operator action recorded yet.")
        return
    st.dataframe(actions_display(table), hide_index=True, key=f"{key}_actions")


def record_decision(
    *, subject: str, kind: str, decision: str, reviewer: str = "", comment: str = ""
) -> dict:
    """Record one review decision as this session's identity (append-only).

    Parameters
    ----------
    subject, kind, decision, comment
        As for ``ResultsStore.record_decision``.
    reviewer : str, default ""
        The name typed on the form; used only without sign-in (the local user types a name).
        With sign-in the reviewer is the identity's name (else email) and its email.

    Returns
    -------
    dict
        The stored row.

    Raises
    ------
    FairpruneError
        ``auth.ERR_FORBIDDEN`` for anyone but a reviewer; the store's own checks.
    """
    me = identity.current()
    auth.require(me, "decide", what="record a review decision")
    email = ""
    if not me.local:
        reviewer, email = identity.actor(me)
    return results_store().record_decision(
        subject=subject, kind=kind, decision=decision, reviewer=reviewer, reviewer_email=email,
        comment=comment,
    )  # fmt: skip


def decision_form(subjects: dict[str, tuple[str, str]], key: str, title: str) -> None:
    """A form to record one review decision, for a review meeting.

    Parameters
    ----------
    subjects : dict
        Label → (kind, subject): what can be decided on here ("sweep", its id) or ("model",
        its SHA-256). One entry shows no chooser.
    key : str
        The page's widget-key prefix.
    title : str
        The form's heading.
    """
    from fairprune.sweep.results import DECISIONS

    me = identity.current()
    if not me.may("decide"):  # recording refuses it too (record_decision)
        roles = ", ".join(r for r in auth.ROLES if r in me.roles) or "none"
        st.caption(READ_ONLY.format(roles=roles))
        return
    with st.form(f"{key}_decision_form", clear_on_submit=False):
        st.markdown(f"**{title}**")
        labels = list(subjects)
        label = (
            st.selectbox("About", labels, key=f"{key}_decision_about")
            if len(labels) > 1
            else labels[0]
        )
        c1, c2 = st.columns([1, 2])
        if me.local:  # without sign-in the reviewer types a name; with it, the identity signs
            reviewer = c1.text_input(
                "Reviewer", value=st.session_state.get("fp_reviewer", ""), key=f"{key}_reviewer"
            )
        else:
            reviewer = identity.actor(me)[0]
            c1.markdown(f"**Reviewer**  \n{identity.plain(reviewer)}  \n{identity.plain(me.email)}")
        decision = c2.radio(
            "Decision", DECISIONS, horizontal=True, index=None, key=f"{key}_decision"
        )
        comment = st.text_area("Comment", key=f"{key}_comment", height=80)
        submitted = st.form_submit_button("Record decision", key=f"{key}_decision_submit")
    if not submitted:
        return
    kind, subject = subjects[label]
    if decision is None:
        st.error(ERR_PICK_DECISION)
        return
    try:
        row = record_decision(subject=subject, kind=kind, decision=decision or "",
                              reviewer=reviewer, comment=comment)  # fmt: skip
    except FairpruneError as exc:
        st.error(str(exc))
        return
    if me.local:
        st.session_state["fp_reviewer"] = row["reviewer"]  # this session's name, on every page
    st.success(f"Recorded: {row['decision']} on {label} by {row['reviewer']} at "
               f"{row['created']}. Decisions are never overwritten.")  # fmt: skip


def show_decisions(table: pd.DataFrame, cells: pd.DataFrame, sweeps: pd.DataFrame, key: str):
    """The decisions as a table, newest first (or a caption when there are none)."""
    from fairprune.app.views import decisions_display

    if table.empty:
        st.caption("No review decisions yet.")
        return
    shown = decisions_display(table, cells, sweeps).iloc[::-1].reset_index(drop=True)
    st.dataframe(shown, hide_index=True, key=f"{key}_decisions")
