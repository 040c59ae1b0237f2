"""Overview: what fairprune does, the headline from the results store, the main chart."""

import html

import streamlit as st

from fairprune.app import ui, views

ui.setup_page("Overview")
st.title("fairprune — who does pruning hurt?")
st.markdown(
    "Pruning can keep a model's overall accuracy while quietly wrecking it for a minority "
    "subgroup. fairprune prunes networks, fine-tunes them with cross-entropy or the "
    "**performance-weighted (PW) loss** of Meyer & Wong (2022), and audits every subgroup, so you "
    "can see who pays for the smaller model — and whether the PW loss helps."
)

long = ui.long_table()
if long.empty:
    st.info(
        "The results store is empty. Run the built-in demo: it generates SynthDerm (a synthetic "
        "dermatology-like dataset), trains a small CNN, and sweeps L1 pruning at 50–97% FLOPs "
        "reduction with cross-entropy vs PW fine-tuning — a few minutes on 2 CPU cores. "
        "Or run `python -m fairprune demo` in a terminal."
    )
    if st.button("Run the demo", key="overview_run_demo", type="primary"):
        from fairprune.app import jobs
        from fairprune.app.api import demo_sweep_config, ensure_demo_model, run_sweep

        bar = st.progress(0.0, text="Training the dense model…")
        with ui.guard():
            record = ensure_demo_model(
                ui.models_dir(),
                progress=lambda d, t, i: bar.progress(
                    min(d / max(t, 1), 1.0), text=f"Dense model: {i}"
                ),
            )
            config = demo_sweep_config(record.path)
            # the first seed now, so the page has something to show; the others in the background
            run_sweep(
                config,
                store=ui.results_store(),
                models_dir=ui.models_dir(),
                only=lambda cell: cell.seed == config.seeds[0],
                progress=lambda d, t, i: bar.progress(min(d / max(t, 1), 1.0), text=f"Sweep: {i}"),
            )
            jobs.start_sweep(config, results_path=ui.results_path(), models_dir=ui.models_dir())
        st.rerun()
    st.stop()

sweep_id = ui.pick_sweep("overview_sweep")
long = ui.long_table(sweep_id)
cells = ui.cells_table(sweep_id)
headline = st.empty()  # filled after the chart: the chart must not wait for the intervals
done, total = views.sweep_progress(ui.sweeps_table(), sweep_id)
if done < total:
    st.info(
        f"{done} of {total} models of this sweep are in the store; the rest are still running "
        "(the demo fills in seeds 1 and 2 in the background) and appear here as they land."
    )
    seen = ui.store_version()

    @st.fragment(run_every=5.0)
    def _watch_store() -> None:
        if ui.store_version() != seen:
            st.rerun()  # a cell landed: redraw the whole page with it

    _watch_store()
ui.group_legend(long["group"].unique())

dense = cells[cells["criterion"] == "dense"]
left, right = st.columns([3, 1])
with left:
    st.plotly_chart(ui.sweep_chart(sweep_id), width="stretch", key="overview_main")
ui.pause_for_first_view()
with right:
    st.subheader("Dense model")
    if not dense.empty:
        d = dense.iloc[0]
        st.metric("Overall accuracy", f"{d['accuracy'] * 100:.1f}%")
        st.metric("Gap (max − min group accuracy)", f"{d['gap'] * 100:.1f} pp")
        st.caption(f"`{d['model']}` · {int(d['macs']):,} MACs · {int(d['params']):,} params")
        st.caption(f"Dataset: **{d['dataset']}** · hash `{d['model_hash'][:12]}`")
    if (long["dataset"] == "synthderm").any():
        st.caption("⚠️ SynthDerm is synthetic: no real patients.")
headline.markdown(
    f"<div class='fp-headline'>{html.escape(ui.headline_text(sweep_id))}</div>",
    unsafe_allow_html=True,
)

st.subheader("Explore")
cols = st.columns(6)
for col, (page, label) in zip(
    cols,
    [
        ("pages/1_Models.py", "Models"),
        ("pages/2_Dataset.py", "Dataset"),
        ("pages/3_Audit.py", "Audit"),
        ("pages/4_Sparsity_sweep.py", "Sparsity sweep"),
        ("pages/5_What_pruning_forgot.py", "What pruning forgot"),
        ("pages/6_Report.py", "Report"),
    ],
    strict=True,
):
    col.page_link(page, label=label)

st.subheader("Review")
st.caption("Record the meeting's decision on this sweep. Decisions are kept in the results "
           "store, never overwritten, and go into the report and the CSV.")  # fmt: skip
sweeps = ui.sweeps_table()
label = views.sweep_label(sweeps, sweep_id)
ui.decision_form({label: ("sweep", sweep_id)}, key="overview", title=f"Decision on {label}")
ui.show_decisions(ui.decisions(subject=sweep_id), cells, sweeps, key="overview")
