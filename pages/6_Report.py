"""Report: a self-contained HTML report and the CSV, for review meetings."""

from datetime import UTC, datetime

import streamlit as st

from fairprune.app import review, tables, ui, views


def body() -> None:
    st.title("Report")
    sweep_id = tables.pick_sweep("report_sweep")
    if sweep_id is None:
        st.info("No results to report yet: run the demo or a sweep.")
        st.stop()
    pair = tables.pick_pair(sweep_id, "report")
    long = tables.long_table(sweep_id)
    cells = tables.cells_table(sweep_id)
    sweeps = tables.sweeps_table()
    sweeps = sweeps[sweeps["sweep_id"] == sweep_id]
    datasets = sorted(long["dataset"].dropna().unique())
    synthetic = "synthderm" in datasets
    st.write(
        f"{len(cells)} models, {long['group'].nunique() - 1} groups, dataset: {', '.join(datasets)}. "
        "The report embeds the charts (no internet needed to open it), the per-group tables with "
        "95% intervals, every model's content hash and the sweep's full configuration."
    )

    st.subheader("Review decisions")
    st.caption("Decide on the sweep or on one of its models. Every decision is kept (append-only) "
               "and goes into the HTML report and the CSV below.")  # fmt: skip
    subjects = {views.sweep_label(sweeps, sweep_id): ("sweep", sweep_id)}
    for row in cells.sort_values(["criterion", "loss", "target_reduction", "seed"]).itertuples():
        subjects[f"model {row.model}"] = ("model", row.model_hash)
    review.decision_form(subjects, key="report", title="Record a decision")
    decisions = review.decisions(sweep_id=sweep_id)
    review.show_decisions(decisions, cells, sweeps, key="report")

    actions = review.operator_actions()
    body_of = tables.report_builder(sweep_id, long, cells, sweeps, decisions, synthetic=synthetic,
                                    title=f"fairprune audit report — {', '.join(datasets)}",
                                    pair=pair)  # fmt: skip

    def report() -> str:  # the cached body, and the action log as it is now
        from fairprune.app.report import with_actions

        return with_actions(body_of(), actions)

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download HTML report", report, file_name=f"fairprune-report-{stamp}.html",
                       mime="text/html", type="primary", key="report_html")  # fmt: skip
    c2.download_button("Download CSV (one row per model × group)",
                       views.with_decisions(long, decisions).to_csv(index=False),
                       file_name=f"fairprune-results-{stamp}.csv", mime="text/csv",
                       key="report_csv")  # fmt: skip
    c3.download_button("Download decisions (CSV, full history)", decisions.to_csv(index=False),
                       file_name=f"fairprune-decisions-{stamp}.csv", mime="text/csv",
                       key="report_decisions_csv")  # fmt: skip
    st.caption("The HTML report is built when it is downloaded (seconds after a sweep, then at once). "
               "The results CSV carries the latest decision on each row's sweep and model; the "
               "decisions CSV every decision ever recorded.")  # fmt: skip
    st.subheader("Operator actions")
    st.caption("Sweeps started and cancelled, models added and removed: who and when, newest "
               "first. The log is append-only and goes into the HTML report.")  # fmt: skip
    review.show_actions(actions, key="report")
    # the report carries plotly.js and every chart (megabytes): the browser loads it only when asked
    if st.toggle("Preview the report here", key="report_preview"):
        with ui.guard(), st.spinner("Building the report…"):
            html = report()
        st.caption(f"Report size: {len(html) / 1e6:.1f} MB.")
        st.iframe(html, height=900)


ui.run_page("Report", body)
