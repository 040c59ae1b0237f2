"""Review decisions on the pages: the form that records one and the table that lists them.

Decisions are append-only in the results store (``ResultsStore.record_decision``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairprune.app.tables import results_store
from fairprune.errors import FairpruneError

ERR_PICK_DECISION = "Choose a decision: accept, needs work or reject."


def decisions(sweep_id: str | None = None, subject: str | None = None) -> pd.DataFrame:
    """Review decisions from the store, oldest first (read fresh: the table is small)."""
    return results_store().decisions(sweep_id=sweep_id, subject=subject)


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

    with st.form(f"{key}_decision_form", clear_on_submit=False):
        st.markdown(f"**{title}**")
        labels = list(subjects)
        label = (
            st.selectbox("About", labels, key=f"{key}_decision_about")
            if len(labels) > 1
            else labels[0]
        )
        c1, c2 = st.columns([1, 2])
        reviewer = c1.text_input(
            "Reviewer", value=st.session_state.get("fp_reviewer", ""), key=f"{key}_reviewer"
        )
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
        row = results_store().record_decision(
            subject=subject, kind=kind, decision=decision or "", reviewer=reviewer,
            comment=comment,
        )  # fmt: skip
    except FairpruneError as exc:
        st.error(str(exc))
        return
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
