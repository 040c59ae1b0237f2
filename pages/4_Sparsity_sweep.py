"""Sparsity sweep: run criterion × loss × FLOPs level × seed, watch cells land, chart the result."""

import html

import streamlit as st

from fairprune.app import identity, jobs, loaders, sweep_form, tables, ui, views
from fairprune.app.api import LOSSES, PW_PRESETS, criterion_names


def sweep_form_section(bundle, dense_models) -> None:
    """The form for a new sweep (drawn only when open); its button starts the job."""
    if not dense_models:
        st.info(f"No dense model for {bundle.title} yet: train one (`python -m fairprune train`) "
                "or run the demo from the Overview page.")  # fmt: skip
        return
    # the form's defaults can come from the URL, so a sweep setting can be shared as a link:
    # ?criteria=l1&losses=ce,pw&levels=0.5,0.9&seeds=0&epochs=3
    qp = st.query_params
    dense = st.selectbox("Dense model", [r.name for r in dense_models], key="sweep_dense")
    c1, c2 = st.columns(2)
    criteria = c1.multiselect(
        "Pruning criteria", criterion_names(), key="sweep_criteria",
        default=[c for c in sweep_form.query_list(qp, "criteria", sweep_form.DEFAULT_CRITERIA)
                 if c in criterion_names()],
    )  # fmt: skip
    losses = c2.multiselect(
        "Fine-tuning losses", list(LOSSES), format_func=lambda k: LOSSES[k].label,
        default=[v for v in sweep_form.query_list(qp, "losses", sweep_form.DEFAULT_LOSSES)
                 if v in LOSSES], key="sweep_losses",
    )  # fmt: skip
    preset = st.selectbox("PW settings (the paper's presets)", list(PW_PRESETS),
                          key="sweep_preset")  # fmt: skip
    w_default, g_default = PW_PRESETS[preset]
    c3, c4 = st.columns(2)
    w_min = c3.number_input("w_min", 0.0, 1.0, w_default, 0.05, key=f"sweep_wmin_{preset}")
    gamma = c4.number_input("γ", 0.0, 10.0, g_default, 0.5, key=f"sweep_gamma_{preset}")
    levels = st.multiselect(
        "FLOPs-reduction levels", list(sweep_form.LEVELS), format_func=lambda v: f"{v:.2%}",
        key="sweep_levels",
        default=[v for v in sweep_form.query_list(qp, "levels", sweep_form.DEFAULT_LEVELS, float)
                 if v in sweep_form.LEVELS],
    )  # fmt: skip
    c5, c6, c7 = st.columns(3)
    seeds = c5.text_input("Seeds (comma-separated)", qp.get("seeds", "0"), key="sweep_seeds")
    epochs = c6.number_input(
        "Fine-tuning epochs", 1, 200,
        int(sweep_form.query_list(qp, "epochs", [sweep_form.DEFAULT_EPOCHS], int)[0]),
        key="sweep_epochs",
    )  # fmt: skip
    paired = c7.toggle("Pair PW criteria with PW losses only", key="sweep_paired")
    c8, c9, c10, c11 = st.columns([3, 3, 1, 1])
    run_on = c8.selectbox("Run on", list(jobs.RUN_ON), format_func=jobs.RUN_ON.get,
                          key="sweep_run_on")  # fmt: skip
    address = c9.text_input("Ray cluster address", placeholder="auto or ray://HOST:10001",
                            key="sweep_address", disabled=run_on != "cluster")  # fmt: skip
    workers = c10.number_input("Workers", 1, 4096, 2, key="sweep_workers",
                               disabled=run_on == "serial")  # fmt: skip
    gpus = c11.number_input("GPUs per cell", 0.0, 16.0, 0.0, 0.25, key="sweep_gpus",
                            disabled=run_on == "serial")  # fmt: skip
    if run_on != "serial":
        st.caption("Ray workers run the cells; this app's process writes every model and "
                   "result, so the stores stay here. A local Ray starts once (about 10 s) "
                   "and stays up for the next sweep.")  # fmt: skip
    if st.button("Run sweep", type="primary", key="sweep_run"):
        record = next(r for r in dense_models if r.name == dense)
        config = sweep_form.build_sweep_config(
            dataset_choice=loaders.current_dataset_choice(), dense_path=record.path,
            criteria=criteria, losses=losses, levels=levels, seeds=seeds, min_weight=w_min,
            gamma=gamma, paired=paired, epochs=epochs,
        )  # fmt: skip
        job = jobs.start_sweep(config, results_path=ui.results_path(),
                               models_dir=ui.models_dir(), run_on=run_on,
                               workers=int(workers), address=address,
                               gpus_per_cell=float(gpus))  # fmt: skip
        st.session_state["sweep_job"] = job.key
        st.session_state["sweep_pick"] = job.key


@st.fragment(run_every=1.0)
def live() -> None:
    with ui.guard():  # a fragment's own reruns run outside the page's boundary
        key = st.session_state.get("sweep_job")
        job = jobs.get_job(key) if key else None
        if job is None:
            return
        st.subheader("Running sweep" if job.running else f"Sweep {job.state}")
        st.progress(min(job.done / max(job.total, 1), 1.0),
                    text=f"{job.done}/{job.total} · {job.info}")  # fmt: skip
        st.caption(f"Running on {job.where}. Each cell's state, as results arrive:")
        st.dataframe(job.cell_table(), hide_index=True, key="sweep_live_states",
                     column_config={"level": st.column_config.NumberColumn("level",
                                                                           format="%.4f")})  # fmt: skip
        if job.resumed:
            st.caption(f"Resumed: {job.resumed} cells were already in the results store and are "
                       "not run again.")  # fmt: skip
        if job.running and identity.may("operate") and st.button("Cancel", key="sweep_cancel"):
            job.cancel()
            st.warning("Cancelling after the current step; finished cells stay in the store.")
        if job.state == "failed":
            st.error(job.error)
        cells = tables.cells_table(job.key)
        if not cells.empty:
            st.dataframe(views.cells_overview(cells), hide_index=True, key="sweep_live_cells")
            st.plotly_chart(tables.sweep_chart(job.key), width="stretch",
                            key="sweep_live_chart")  # fmt: skip
        if not job.running and st.session_state.get("sweep_seen_done") != job.key:
            st.session_state["sweep_seen_done"] = job.key
            st.rerun()  # refresh the charts below with the finished sweep


def results() -> None:
    """The chosen sweep's charts and tables."""
    st.header("Results")
    sweep_id = tables.pick_sweep("sweep_pick")
    if sweep_id is None:
        st.info("No sweep in the results store yet.")
        st.stop()
    pair = tables.pick_pair(sweep_id, "sweep_view")
    long = tables.long_table(sweep_id)
    headline = st.empty()  # filled after the first chart: it must not wait for the intervals
    ui.group_legend(long["group"].unique())
    st.plotly_chart(tables.sweep_chart(sweep_id, pair=pair), width="stretch",
                    key="sweep_chart_acc")  # fmt: skip
    ui.pause_for_first_view()
    headline.markdown(
        f"<div class='fp-headline'>{html.escape(tables.headline_text(sweep_id, *pair))}</div>",
        unsafe_allow_html=True,
    )
    figures = tables.sweep_figures(sweep_id)  # built once per version, shared by every session
    left, right = st.columns(2)
    left.plotly_chart(figures["gap"], width="stretch", key="sweep_chart_gap")
    right.plotly_chart(figures["tradeoff"], width="stretch", key="sweep_chart_tradeoff")
    st.plotly_chart(figures["disparity"], width="stretch", key="sweep_chart_disparity")
    st.subheader("Gaps with paired 95% intervals")
    st.caption(
        "Gap = the mean over seeds of each model's max − min group accuracy, in points. "
        "Differences carry a paired basic-bootstrap interval (the same test resample for both "
        "methods) and the smallest difference the run could have detected (mde, 80% power); a "
        "difference is called wider or narrower only when its interval excludes 0. "
        + tables.SEED_NOTE
    )
    frame, _ = tables.sweep_findings(sweep_id, *pair)
    if frame.empty:
        st.info("This sweep has no pruned cells with a dense baseline yet.")
    else:
        st.dataframe(views.findings_display(frame), hide_index=True, key="sweep_findings")
    st.dataframe(views.cells_overview(tables.cells_table(sweep_id)), hide_index=True,
                 key="sweep_cells")  # fmt: skip


def body() -> None:
    st.title("Sparsity sweep")
    bundle = loaders.current_dataset()
    ui.synthetic_note(bundle)
    dense_models = [r for r in loaders.model_records(bundle.name) if r.kind == "dense"]
    # the form is drawn only when open: on a visit to look at results, the charts come first.
    # Only operators get it (jobs.start_sweep refuses anyone else too).
    if identity.may("operate") and st.toggle(
        "New sweep", value=not dense_models or tables.sweeps_table().empty, key="sweep_new",
        help="Open the form to run a new sweep (or resume one).",
    ):  # fmt: skip
        sweep_form_section(bundle, dense_models)
    live()
    results()


ui.run_page("Sparsity sweep", body)
