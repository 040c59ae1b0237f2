"""Report: a self-contained HTML report and the CSV, for review meetings."""

from datetime import UTC, datetime

import streamlit as st

from fairprune.app import ui
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


@st.cache_data(show_spinner="Building the report…", max_entries=8)
def report_html(sweep_id: str, version: str, _long, _cells, _sweeps) -> str:
    frame, _ = ui.sweep_findings(sweep_id)
    return build_report(_long, _cells, sweeps=_sweeps, synthetic=synthetic,
                        title=f"fairprune audit report — {', '.join(datasets)}",
                        headline=ui.headline_text(sweep_id), findings=frame)  # fmt: skip


with ui.guard():
    html = report_html(sweep_id, ui.store_version(), long, cells, sweeps)
stamp = datetime.now(UTC).strftime("%Y%m%d")
c1, c2 = st.columns(2)
c1.download_button("Download HTML report", html, file_name=f"fairprune-report-{stamp}.html",
                   mime="text/html", type="primary", key="report_html")  # fmt: skip
c2.download_button("Download CSV (one row per model × group)", long.to_csv(index=False),
                   file_name=f"fairprune-results-{stamp}.csv", mime="text/csv",
                   key="report_csv")  # fmt: skip
st.caption(f"Report size: {len(html) / 1e6:.1f} MB")
with st.expander("Preview"):
    st.iframe(html, height=900)
