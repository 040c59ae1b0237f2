"""What pruning forgot: samples the dense model gets right and a pruned model gets wrong."""

import streamlit as st

from fairprune.app import charts, choices, loaders, ui, views


def body() -> None:
    st.title("What pruning forgot")

    bundle = loaders.current_dataset()
    ui.synthetic_note(bundle)
    records = [r for r in loaders.model_records(bundle.name) if r.num_classes == bundle.num_classes]
    dense = [r for r in records if r.kind == "dense"]
    pruned = [r for r in records if r.kind == "pruned"]
    if not dense or not pruned:
        st.info(choices.NO_DENSE_OR_PRUNED.format(title=bundle.title))
        st.stop()
    c1, c2 = st.columns(2)
    d_name = c1.selectbox("Dense model", [r.name for r in dense], key="forgot_dense")
    d_rec = next(r for r in dense if r.name == d_name)
    children = choices.pruned_children(pruned, d_rec)
    if not children:
        st.info(choices.NO_PRUNED_CHILD.format(dense=d_name))
        st.stop()
    labels = {r.name: f"{r.name} · {r.criterion} · {r.loss} · {r.flops_reduction:.1%} FLOPs red."
              for r in children}  # fmt: skip
    p_name = c2.selectbox("Pruned model", list(labels), key="forgot_pruned", format_func=labels.get)
    p_rec = next(r for r in children if r.name == p_name)

    dp, pp = loaders.predictions(d_rec), loaders.predictions(p_rec)
    samples, rates = views.forgotten(dp, pp, bundle.group_names)

    groups = list(rates["group"])
    ui.group_legend(groups)
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.forgotten_chart(rates), width="stretch", key="forgot_chart")
    ui.pause_for_first_view()
    show = rates.assign(rate=rates["rate"] * 100, of_dense_correct=rates["of_dense_correct"] * 100)
    right.dataframe(show, hide_index=True, key="forgot_rates",
                    column_config={"rate": st.column_config.NumberColumn("% of group", format="%.1f"),
                                   "of_dense_correct": st.column_config.NumberColumn(
                                       "% of dense-correct", format="%.1f")})  # fmt: skip
    right.caption(f"{len(samples)} samples in all; the dense model was right on each of them.")

    st.subheader("The forgotten samples, by group")
    per_group = st.slider("Images per group", 4, 16, 8, key="forgot_per_group")
    split = bundle.splits["test"]
    for g in groups:
        s = samples[samples["group"] == g].head(per_group)
        st.markdown(f"**{g}** — {len(samples[samples['group'] == g])} forgotten")
        if s.empty:
            st.caption("Nothing forgotten in this group.")
            continue
        cols = st.columns(per_group)
        for col, row in zip(cols, s.itertuples(), strict=False):
            col.image(split.image(int(row.index)), width="stretch",
                      caption=f"{bundle.class_names[row.label]} · dense {row.dense_confidence:.0%} → "
                              f"pruned {row.pruned_confidence:.0%}")  # fmt: skip


ui.run_page("What pruning forgot", body)
