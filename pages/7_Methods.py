"""Methods: every (pruning criterion, fine-tuning loss) of a sweep side by side, with intervals."""

import html

import streamlit as st

from fairprune.app import tables, ui
from fairprune.app.api import REFERENCE_CRITERION


def body() -> None:
    st.title("Methods side by side")
    st.caption(
        "One protocol for a fair comparison: every method of a sweep starts from the same dense "
        "model and uses the same calibration data, fine-tuning epochs and seeds, and each criterion "
        "is fine-tuned with every loss at the same sparsity — so the pruning criterion (vs the "
        "reference criterion, same loss) and the fine-tuning objective (vs cross-entropy, same "
        "pruned models) are compared separately. Every number carries a 95% paired-bootstrap "
        "interval over test resamples and seeds; a difference is called wider or narrower only when "
        "its interval excludes zero."
    )
    RUN_LINK = (
        "Sparsity_sweep?criteria=unstructured,fairgrape,fairprune&losses=ce,pw,constrained"
        "&levels=0.5,0.9&seeds=0,1,2"
    )

    sweeps = tables.sweeps_table()
    sweeps = sweeps[sweeps["cells"] > 0].iloc[::-1]  # newest first
    cells = tables.cells_table()
    pruned = cells[cells["criterion"] != "dense"]
    n_methods = pruned.groupby("sweep_id")[["criterion", "loss"]].apply(
        lambda d: len(d.drop_duplicates())
    )
    if sweeps.empty or pruned.empty:
        st.info("No pruned models in the results store yet. Run the demo from the Overview, or "
                f"[compare FairGRAPE, FairPrune and magnitude pruning with CE, PW and constrained "
                f"fine-tuning]({RUN_LINK}) on the Sparsity sweep page.")  # fmt: skip
        st.stop()
    ids = list(sweeps["sweep_id"])
    # the newest sweep that compares several methods, else the newest
    default = next((i for i, s in enumerate(ids) if n_methods.get(s, 0) > 1), 0)
    labels = {
        row.sweep_id: f"{row.name or row.sweep_id} · {n_methods.get(row.sweep_id, 0)} methods · "
        f"{row.sweep_id}"
        for row in sweeps.itertuples()
    }
    c1, c2 = st.columns([3, 1])
    sweep_id = c1.selectbox(
        "Sweep", ids, index=default, format_func=labels.get, key="methods_sweep"
    )
    # the sweep's criteria in its configured order (the first is the default reference unless
    # the sweep has the unstructured magnitude baseline)
    criteria = list(dict.fromkeys(k.split(":", 1)[0] for k in tables.method_keys(sweep_id)))
    ref_default = criteria.index(REFERENCE_CRITERION) if REFERENCE_CRITERION in criteria else 0
    reference = c2.selectbox("Reference criterion", criteria, index=ref_default,
                             key=f"methods_reference_{sweep_id}",
                             help="other criteria are compared with it at equal loss")  # fmt: skip

    with ui.guard():
        views = tables.methods_views(sweep_id, reference)  # shared by every session
    table, frame = views["table"], views["frame"]
    if frame.empty:
        st.info(
            f"Sweep {sweep_id} has no pruned models yet. [Run a methods comparison]({RUN_LINK})."
        )
        st.stop()

    dense = table["dense"]
    st.markdown(
        f"**{frame['method'].nunique()} methods** at {frame['level'].nunique()} levels, seeds "
        f"{', '.join(map(str, table['seeds']))}; dense model: accuracy {dense['accuracy']['estimate']:.1f}%, "
        f"gap (max − min group accuracy) {dense['gap']['estimate']:.1f} points. A method's gap is "
        "the mean over its seeds of each model's max − min group accuracy."
    )
    if (frame["level_kind"] == "weight sparsity").any():
        st.caption(
            "Unstructured methods (magnitude, FairGRAPE, FairPrune): the level is weight sparsity, "
            "the pruned checkpoint is a dense safetensors file with zeros in place, and FLOPs and "
            "latency do not fall on dense kernels — they need sparse kernels or hardware to pay off."
        )
    figures = views["figures"]
    st.plotly_chart(figures["pareto"], key="methods_pareto")
    ui.pause_for_first_view()

    st.subheader("Side by side")
    st.caption(
        f"Each cell: estimate [95% interval], in % or points. Δgap vs CE = this loss − cross-entropy "
        f"on the same pruned models; Δgap vs {html.escape(reference)} = this criterion − "
        f"{html.escape(reference)} with the same loss. ★ = on the Pareto front at its level "
        "(no other method has both higher accuracy and a smaller gap). Max ψ = the largest excess "
        "accuracy drop of a group over the overall drop (Hashemizadeh et al. 2024)."
    )
    st.dataframe(views["display"], hide_index=True, width="stretch")
    st.download_button("Download the methods table (CSV)", views["csv"],
                       file_name=f"fairprune-methods-{sweep_id}.csv", mime="text/csv",
                       key="methods_csv")  # fmt: skip

    c3, c4 = st.columns(2)
    c3.plotly_chart(figures["gap"], key="methods_gap")
    c4.plotly_chart(figures["psi"], key="methods_psi")
    st.caption("Colours and line styles mark methods (criterion: colour; loss: dash and marker), "
               "one panel per group.")  # fmt: skip
    st.plotly_chart(figures["groups"], key="methods_groups")
    st.plotly_chart(figures["accuracy"], key="methods_acc")
    st.markdown(f"[Run another methods comparison]({RUN_LINK}) (FairGRAPE, FairPrune and magnitude "
                "pruning × CE, PW and constrained fine-tuning at 50% and 90%, three seeds).")  # fmt: skip


ui.run_page("Methods", body)
