"""Report: a self-contained HTML report and the CSV, for review meetings."""

from datetime import UTC, datetime

import streamlit as st

from fairprune.app import ui, views
from fairprune.app.api import FairpruneError
from fairprune.app.report import build_report

ui.setup_page("Report")
st.title("Report")
sweep_id = ui.pick_sweep("report_sweep")
if sweep_id is None:
    st.info("No results to report yet: run the demo or a sweep.")
    st.stop()
long = ui.long_table(sweep_id)
cells = ui.cells_table(sweep_id)
sweeps = ui.sweeps_table()
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
ui.decision_form(subjects, key="report", title="Record a decision")
decisions = ui.decisions(sweep_id=sweep_id)
ui.show_decisions(decisions, cells, sweeps, key="report")


@st.cache_data(show_spinner="Building the report…", max_entries=8)
def report_html(sweep_id: str, version: str, n_decisions: int, _long, _cells, _sweeps,
                _decisions) -> str:  # fmt: skip
    frame, _ = ui.sweep_findings(sweep_id)
    try:
        methods = ui.sweep_methods(sweep_id)
    except FairpruneError:  # nothing pruned to compare yet: the report goes without the table
        methods = None
    return build_report(_long, _cells, sweeps=_sweeps, synthetic=synthetic,
                        title=f"fairprune audit report — {', '.join(datasets)}",
                        headline=ui.headline_text(sweep_id), findings=frame,
                        decisions=_decisions, methods=methods)  # fmt: skip


with ui.guard():
    # decisions are append-only: their count tells whether the cached report is still current
    html = report_html(sweep_id, ui.store_version(), len(decisions), long, cells, sweeps,
                       decisions)  # fmt: skip
stamp = datetime.now(UTC).strftime("%Y%m%d")
c1, c2, c3 = st.columns(3)
c1.download_button("Download HTML report", html, file_name=f"fairprune-report-{stamp}.html",
                   mime="text/html", type="primary", key="report_html")  # fmt: skip
c2.download_button("Download CSV (one row per model × group)",
                   views.with_decisions(long, decisions).to_csv(index=False),
                   file_name=f"fairprune-results-{stamp}.csv", mime="text/csv",
                   key="report_csv")  # fmt: skip
c3.download_button("Download decisions (CSV, full history)", decisions.to_csv(index=False),
                   file_name=f"fairprune-decisions-{stamp}.csv", mime="text/csv",
                   key="report_decisions_csv")  # fmt: skip
st.caption(f"Report size: {len(html) / 1e6:.1f} MB. The results CSV carries the latest decision "
           "on each row's sweep and model; the decisions CSV every decision ever recorded.")  # fmt: skip
with st.expander("Preview"):
    st.iframe(html, height=900)
