"""Sparsity sweep: run criterion × loss × FLOPs level × seed, watch cells land, chart the result."""

import html

import streamlit as st

from fairprune.app import charts, jobs, ui, views
from fairprune.app.api import LOSSES, PW_PRESETS, FinetuneConfig, SweepConfig, criterion_names

ui.setup_page("Sparsity sweep")
st.title("Sparsity sweep")

with ui.guard():
    bundle = ui.current_dataset()
ui.synthetic_note(bundle)
name, root, csv, options = ui.current_dataset_choice()
dense_models = [r for r in ui.model_records(bundle.name) if r.kind == "dense"]
# the form's defaults can come from the URL, so a sweep setting can be shared as a link:
# ?criteria=l1&losses=ce,pw&levels=0.5,0.9&seeds=0&epochs=3
qp = st.query_params
LEVELS = [0.5, 0.75, 0.875, 0.9, 0.9375, 0.95, 0.96875, 0.97, 0.98, 0.99]


def _qp_list(key: str, default: list, cast=str) -> list:
    try:
        return [cast(v) for v in qp[key].split(",") if v] if key in qp else default
    except ValueError:
        return default


# the form is drawn only when open: on a visit to look at results, the charts come first
if st.toggle("New sweep", value=not dense_models or ui.sweeps_table().empty, key="sweep_new",
             help="Open the form to run a new sweep (or resume one)."):  # fmt: skip
    if not dense_models:
        st.info(f"No dense model for {bundle.title} yet: train one (`python -m fairprune train`) "
                "or run the demo from the Overview page.")  # fmt: skip
    else:
        dense = st.selectbox("Dense model", [r.name for r in dense_models], key="sweep_dense")
        c1, c2 = st.columns(2)
        criteria = c1.multiselect(
            "Pruning criteria", criterion_names(), key="sweep_criteria",
            default=[c for c in _qp_list("criteria", ["l1"]) if c in criterion_names()],
        )  # fmt: skip
        losses = c2.multiselect(
            "Fine-tuning losses", list(LOSSES), format_func=lambda k: LOSSES[k].label,
            default=[v for v in _qp_list("losses", ["ce", "pw"]) if v in LOSSES], key="sweep_losses",
        )  # fmt: skip
        preset = st.selectbox("PW settings (the paper's presets)", list(PW_PRESETS),
                              key="sweep_preset")  # fmt: skip
        w_default, g_default = PW_PRESETS[preset]
        c3, c4 = st.columns(2)
        w_min = c3.number_input("w_min", 0.0, 1.0, w_default, 0.05, key=f"sweep_wmin_{preset}")
        gamma = c4.number_input("γ", 0.0, 10.0, g_default, 0.5, key=f"sweep_gamma_{preset}")
        levels = st.multiselect(
            "FLOPs-reduction levels", LEVELS, format_func=lambda v: f"{v:.2%}", key="sweep_levels",
            default=[v for v in _qp_list("levels", [0.5, 0.75, 0.9, 0.97], float) if v in LEVELS],
        )  # fmt: skip
        c5, c6, c7 = st.columns(3)
        seeds = c5.text_input("Seeds (comma-separated)", qp.get("seeds", "0"), key="sweep_seeds")
        epochs = c6.number_input("Fine-tuning epochs", 1, 200, int(_qp_list("epochs", [3], int)[0]),
                                 key="sweep_epochs")  # fmt: skip
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
            try:
                seed_list = tuple(int(s) for s in seeds.replace(" ", "").split(",") if s)
            except ValueError:
                st.error("Seeds must be whole numbers separated by commas, e.g. 0,1,2.")
                st.stop()
            record = next(r for r in dense_models if r.name == dense)
            config = SweepConfig(
                dataset=name, data_root=root, csv=csv, dataset_options=dict(options),
                dense_model=record.path, criteria=tuple(criteria), losses=tuple(losses),
                reductions=tuple(sorted(levels)), seeds=seed_list, min_weight=float(w_min),
                gamma=float(gamma), paired=paired, finetune=FinetuneConfig(epochs=int(epochs)),
                name=f"{bundle.name} {'/'.join(criteria)} {'/'.join(losses)}",
            )  # fmt: skip
            with ui.guard():
                job = jobs.start_sweep(config, results_path=ui.results_path(),
                                       models_dir=ui.models_dir(), run_on=run_on,
                                       workers=int(workers), address=address,
                                       gpus_per_cell=float(gpus))  # fmt: skip
            st.session_state["sweep_job"] = job.key
            st.session_state["sweep_pick"] = job.key


@st.fragment(run_every=1.0)
def live() -> None:
    key = st.session_state.get("sweep_job")
    job = jobs.get_job(key) if key else None
    if job is None:
        return
    st.subheader("Running sweep" if job.running else f"Sweep {job.state}")
    st.progress(min(job.done / max(job.total, 1), 1.0), text=f"{job.done}/{job.total} · {job.info}")
    st.caption(f"Running on {job.where}. Each cell's state, as results arrive:")
    st.dataframe(job.cell_table(), hide_index=True, key="sweep_live_states",
                 column_config={"level": st.column_config.NumberColumn("level", format="%.4f")})  # fmt: skip
    if job.resumed:
        st.caption(f"Resumed: {job.resumed} cells were already in the results store and are not "
                   "run again.")  # fmt: skip
    if job.running and st.button("Cancel", key="sweep_cancel"):
        job.cancel()
        st.warning("Cancelling after the current step; finished cells stay in the store.")
    if job.state == "failed":
        st.error(job.error)
    cells = ui.cells_table(job.key)
    if not cells.empty:
        st.dataframe(views.cells_overview(cells), hide_index=True, key="sweep_live_cells")
        st.plotly_chart(ui.sweep_chart(job.key), width="stretch",
                        key="sweep_live_chart")  # fmt: skip
    if not job.running and st.session_state.get("sweep_seen_done") != job.key:
        st.session_state["sweep_seen_done"] = job.key
        st.rerun()  # refresh the charts below with the finished sweep


live()

st.header("Results")
sweep_id = ui.pick_sweep("sweep_pick")
if sweep_id is None:
    st.info("No sweep in the results store yet.")
    st.stop()
long = ui.long_table(sweep_id)
headline = st.empty()  # filled after the first chart: it must not wait for the intervals
ui.group_legend(long["group"].unique())
crits = sorted(c for c in long["criterion"].unique() if c != "dense")
c1, c2 = st.columns(2)
criterion = c1.selectbox("Criterion", crits, key="sweep_view_criterion") if crits else None
shown = c2.multiselect("Losses", sorted(long["loss"].unique()), key="sweep_view_losses",
                       default=[x for x in sorted(long["loss"].unique()) if x != "dense"])  # fmt: skip
st.plotly_chart(ui.sweep_chart(sweep_id, criterion=criterion, losses=shown + ["dense"]),
                width="stretch", key="sweep_chart_acc")  # fmt: skip
ui.pause_for_first_view()
headline.markdown(
    f"<div class='fp-headline'>{html.escape(ui.headline_text(sweep_id))}</div>",
    unsafe_allow_html=True,
)
left, right = st.columns(2)
left.plotly_chart(charts.gap_vs_reduction(long), width="stretch", key="sweep_chart_gap")
right.plotly_chart(charts.tradeoff_chart(long), width="stretch", key="sweep_chart_tradeoff")
st.plotly_chart(charts.disparity_chart(long), width="stretch", key="sweep_chart_disparity")
st.subheader("Gaps with paired 95% intervals")
st.caption(
    "Gap = max − min group accuracy, in points, seeds averaged. Differences carry a paired "
    "bootstrap interval (the same test resample for both models, seeds resampled too); a "
    "difference is called wider or narrower only when its interval excludes 0."
)
with ui.guard():
    frame, _ = ui.sweep_findings(sweep_id)
if frame.empty:
    st.info("This sweep has no pruned cells with a dense baseline yet.")
else:
    st.dataframe(views.findings_display(frame), hide_index=True, key="sweep_findings")
st.dataframe(views.cells_overview(ui.cells_table(sweep_id)), hide_index=True, key="sweep_cells")
