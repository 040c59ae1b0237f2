"""Overview: what fairprune does, the headline from the results store, the main chart."""

import html

import streamlit as st

# light modules only: on an empty store the page draws its button before the backend loads
from fairprune.app import demo_job, identity, review, tables, ui

INTRO = (
    "Pruning can keep a model's overall accuracy while quietly wrecking it for a minority "
    "subgroup. fairprune prunes networks, fine-tunes them with cross-entropy or the "
    "**performance-weighted (PW) loss** of Meyer & Wong (2022), and audits every subgroup, so you "
    "can see who pays for the smaller model — and whether the PW loss helps."
)
EMPTY = (
    "The results store is empty. Run the built-in demo: it generates SynthDerm (a synthetic "
    "dermatology-like dataset with dark skin rare in training), trains a small CNN on it, and "
    "runs the paper's comparison — Taylor pruning + cross-entropy against PW-Taylor pruning + "
    "PW fine-tuning — at five FLOPs-reduction levels from 50 to 97%, with five seeds; the first "
    "chart appears when the top level's first models land. Or run `python -m fairprune demo` "
    "in a terminal."
)
RUNNING = (
    "The demo is running in the background (SynthDerm: synthetic data, no real patients). The "
    "chart appears here as soon as the first pruned models are in the store; you can leave this "
    "page and come back."
)
OPERATORS_RUN = "Running the demo or a sweep is for operators; ask one to fill the store."
PAGES = [
    ("pages/1_Models.py", "Models"),
    ("pages/2_Dataset.py", "Dataset"),
    ("pages/3_Audit.py", "Audit"),
    ("pages/4_Sparsity_sweep.py", "Sparsity sweep"),
    ("pages/5_What_pruning_forgot.py", "What pruning forgot"),
    ("pages/6_Report.py", "Report"),
]


@st.fragment(run_every=1.0)
def demo_panel() -> None:
    """The demo's progress, redrawn every second; the whole page reruns when models land."""
    with ui.guard():
        job = demo_job.demo_job()
        if job is None:
            return
        fraction, text = demo_job.demo_progress(job)
        st.progress(fraction, text=text)
        if not demo_job.waiting_for_demo(job):
            st.rerun()  # the first pruned models landed (or the demo ended): the chart


def empty_store() -> None:
    """The demo's button on an empty store, or its progress while it runs; the page ends here."""
    job = demo_job.demo_job()
    if demo_job.waiting_for_demo(job):
        st.info(RUNNING)
        demo_panel()
        st.stop()
    st.info(EMPTY)
    if job is not None and job.state == "failed":
        st.error(demo_job.demo_progress(job)[1])
    if not identity.may("operate"):  # start_demo refuses anyone else too
        st.caption(OPERATORS_RUN)
        st.stop()
    if st.button("Run the demo", key="overview_run_demo", type="primary"):
        demo_job.start_demo(results_path=ui.results_path(), models_dir=ui.models_dir())
        st.rerun()
    st.stop()


def results() -> None:
    """The chosen sweep: main chart, dense model, headline, links, review."""
    from fairprune.app import views

    sweep_id = tables.pick_sweep("overview_sweep")
    pair = tables.pick_pair(sweep_id, "overview")
    long = tables.long_table(sweep_id)
    cells = tables.cells_table(sweep_id)
    headline = st.empty()  # filled after the chart: the chart must not wait for the intervals
    done, total = views.sweep_progress(tables.sweeps_table(), sweep_id)
    if done < total:
        st.info(
            f"{done} of {total} models of this sweep are in the store; the rest are still "
            "running (the demo fills in seeds 1 and 2 in the background) and appear here as "
            "they land."
        )
        seen = tables.store_version()

        @st.fragment(run_every=5.0)
        def _watch_store() -> None:
            if tables.store_version() != seen:
                st.rerun()  # a cell landed: redraw the whole page with it

        _watch_store()
    ui.group_legend(long["group"].unique())

    dense = cells[cells["criterion"] == "dense"]
    left, right = st.columns([3, 1])
    with left:
        if tables.is_methods_sweep(sweep_id):
            # unstructured methods side by side (weight sparsity): their gaps, not a FLOPs chart
            st.plotly_chart(tables.methods_gap_chart(sweep_id), width="stretch",
                            key="overview_main")  # fmt: skip
        else:
            st.plotly_chart(tables.sweep_chart(sweep_id, pair=pair), width="stretch",
                            key="overview_main")  # fmt: skip
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
        f"<div class='fp-headline'>{html.escape(tables.headline_text(sweep_id, *pair))}</div>",
        unsafe_allow_html=True,
    )

    st.caption(tables.SEED_NOTE)

    st.subheader("Explore")
    for col, (page, label) in zip(st.columns(len(PAGES)), PAGES, strict=True):
        col.page_link(page, label=label)

    st.subheader("Review")
    st.caption("Record the meeting's decision on this sweep. Decisions are kept in the results "
               "store, never overwritten, and go into the report and the CSV.")  # fmt: skip
    sweeps = tables.sweeps_table()
    label = views.sweep_label(sweeps, sweep_id)
    review.decision_form({label: ("sweep", sweep_id)}, key="overview", title=f"Decision on {label}")
    review.show_decisions(review.decisions(subject=sweep_id), cells, sweeps, key="overview")


def body() -> None:
    st.title("fairprune — who does pruning hurt?")
    st.markdown(INTRO)
    if tables.store_is_empty() or demo_job.waiting_for_demo(demo_job.demo_job()):
        empty_store()
    results()


ui.run_page("Overview", body)
