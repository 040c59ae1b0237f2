"""Audit: per-group metrics with 95% intervals for one or more models, and a paired side-by-side."""

import pandas as pd
import streamlit as st

from fairprune.app import charts, choices, loaders, review, tables, ui, views
from fairprune.app.api import METRICS, accuracy_gap

PERCENT = ("accuracy", "accuracy_low", "accuracy_high", "balanced_accuracy", "auroc", "tpr", "fpr",
           "selection_rate")  # fmt: skip
VERDICT = {"wider": "B's gap is wider.", "narrower": "B's gap is narrower.",
           "no_difference": "the data cannot tell the two gaps apart."}  # fmt: skip


def model_section(name: str, rec, table, metric: str, show_latency: bool, bundle) -> None:
    """One model: its chart, gap, per-group table (and latency)."""
    st.subheader(name)
    if rec.kind == "onnx":
        st.caption(loaders.onnx_caption(rec))
    else:
        st.caption(
            f"{rec.kind} · {rec.arch} · criterion {rec.criterion} · loss {rec.loss} · FLOPs "
            f"reduction {rec.flops_reduction:.1%} · {rec.macs:,} MACs · hash `{rec.sha256[:12]}`"
        )
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(charts.group_bars(table, metric=metric, title=f"{METRICS[metric]} per group"),
                        width="stretch", key=f"audit_chart_{name}")  # fmt: skip
    ui.pause_for_first_view()
    with right:
        st.metric("Accuracy gap (max − min group)", f"{accuracy_gap(table) * 100:.1f} pp")
        show = views.order_rows(table)
        for col in PERCENT:
            show[col] = show[col] * 100
        st.dataframe(show, hide_index=True, key=f"audit_table_{name}",
                     column_config={c: st.column_config.NumberColumn(c, format="%.1f")
                                    for c in show.columns if c not in ("group", "n")})  # fmt: skip
        if show_latency:
            lat = loaders.latency(rec, bundle.input_size)
            st.dataframe(lat, hide_index=True, key=f"audit_latency_{name}",
                         column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                        for c in lat.columns if c != "runtime"})  # fmt: skip


def side_by_side(audits: dict, by_name: dict, metric: str, bundle) -> None:
    """Two chosen models on the same test images: paired intervals, their charts, a decision."""
    st.header("Side by side")
    a, b = st.columns(2)
    first = a.selectbox("Model A", list(audits), index=0, key="audit_cmp_a")
    second = b.selectbox("Model B", list(audits), index=1, key="audit_cmp_b")
    paired, gap, word = loaders.paired(by_name[first], by_name[second], bundle)
    st.markdown("**Accuracy, paired** (both models on the same test images; 95% bootstrap "
                "intervals; \"cannot tell\" unless the interval excludes 0)")  # fmt: skip
    if gap is not None:
        st.markdown(
            f"Gap (max − min group accuracy): B − A = {gap.estimate * 100:+.1f} points "
            f"(95% CI {gap.low * 100:+.1f} to {gap.high * 100:+.1f}): " + VERDICT[word]
        )
    st.dataframe(paired, hide_index=True, key="audit_cmp_paired",
                 column_config={c: st.column_config.NumberColumn(c, format="%.1f")
                                for c in ("A accuracy (%)", "B accuracy (%)")})  # fmt: skip
    a.plotly_chart(charts.group_bars(audits[first], metric=metric, title=f"A: {first}"),
                   width="stretch", key="audit_cmp_chart_a")  # fmt: skip
    b.plotly_chart(charts.group_bars(audits[second], metric=metric, title=f"B: {second}"),
                   width="stretch", key="audit_cmp_chart_b")  # fmt: skip

    st.subheader("Decide on a model")
    st.caption("The meeting's decision on model A or B, kept in the results store (never "
               "overwritten) and carried into the report.")  # fmt: skip
    pair = {f"A: {first}": by_name[first], f"B: {second}": by_name[second]}
    review.decision_form({label: ("model", rec.sha256) for label, rec in pair.items()},
                         key="audit_cmp", title="Decision on model A or B")  # fmt: skip
    hashes = list(dict.fromkeys(rec.sha256 for rec in pair.values()))
    decided = pd.concat([review.decisions(subject=h) for h in hashes]).sort_values("id")
    names = pd.DataFrame({"model": [r.name for r in pair.values()],
                          "model_hash": [r.sha256 for r in pair.values()]})  # fmt: skip
    review.show_decisions(decided, names, None, key="audit_cmp")


def methods_ab() -> None:
    """A baseline method against a method (criterion + loss), every seed of a sweep together:
    the same comparison, numbers and intervals as the Overview's headline and the report."""
    st.header("Methods A/B, every seed")
    st.caption(
        "Two methods of a sweep, each a pruning criterion with a fine-tuning loss, compared on the "
        "same test images at every level: gaps (mean over seeds of max − min group accuracy), "
        "the paired difference with its 95% interval and the smallest difference the run could "
        "have detected (mde)."
    )
    sweep_id = tables.pick_sweep("audit_ab_sweep")
    if sweep_id is None:
        st.info("No sweep in the results store yet: run the demo or a sweep.")
        return
    pair = tables.pick_pair(sweep_id, "audit_ab")
    frame, _ = tables.sweep_findings(sweep_id, *pair)
    if frame.empty:
        st.info("This sweep has no pruned cells with a dense baseline yet.")
        return
    st.dataframe(views.findings_display(frame), hide_index=True, key="audit_ab_findings")
    st.caption(tables.SEED_NOTE)


def body() -> None:
    st.title("Audit")
    bundle = loaders.current_dataset()
    ui.synthetic_note(bundle)
    records, other_size, other_datasets = choices.audit_records(
        [*loaders.model_records(), *loaders.onnx_records()], dataset=bundle.name,
        num_classes=bundle.num_classes, fits=lambda r: loaders.fits_input(r, bundle.input_size),
    )  # fmt: skip
    if other_size:
        st.caption(f"Not listed: {', '.join(other_size)} (fixed to another image size than "
                   f"{bundle.input_size} px).")  # fmt: skip
    if not records:
        st.info(choices.no_models_message(bundle.title, other_datasets))
        st.stop()

    by_name = {r.name: r for r in records}
    dense_first = sorted(
        by_name, key=lambda n: (by_name[n].kind != "dense", by_name[n].target_reduction, n)
    )
    chosen = st.multiselect("Models", dense_first, default=dense_first[:2], key="audit_models")
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    metric = c1.selectbox("Metric", list(METRICS), format_func=METRICS.get, key="audit_metric")
    intersectional = c2.toggle(f"{bundle.group_attribute} × label", key="audit_intersectional")
    # start from resamples every chosen model has a stored table for (no bootstrap to redo)
    options, start = choices.bootstrap_choice(
        [loaders.stored_n_boots(by_name[n], bundle) for n in chosen]
    )
    n_boot = c3.select_slider("Bootstrap resamples", options, value=start, key="audit_nboot")
    show_latency = c4.toggle("Latency: torch and onnxruntime", key="audit_latency",
                             help="CPU milliseconds per image of each model on each runtime "
                             "(the PyTorch model is exported to ONNX and verified first)")  # fmt: skip
    if not chosen:
        st.info("Pick at least one model.")
        st.stop()

    audits = {}
    for name in chosen:
        rec = by_name[name]
        audits[name] = loaders.audit_cached(rec.sha256, bundle.fingerprint, intersectional, n_boot, rec,
                                   bundle)  # fmt: skip
    ui.group_legend(next(iter(audits.values()))["group"])
    for name, table in audits.items():
        model_section(name, by_name[name], table, metric, show_latency, bundle)
    if len(audits) >= 2:
        side_by_side(audits, by_name, metric, bundle)
    methods_ab()


ui.run_page("Audit", body)
