"""Audit: per-group metrics with 95% intervals for one or more models, and a side-by-side."""

import pandas as pd
import streamlit as st

from fairprune.app import charts, ui, views
from fairprune.app.api import METRICS, accuracy_gap

ui.setup_page("Audit")
st.title("Audit")

with ui.guard():
    bundle = ui.current_dataset()
ui.synthetic_note(bundle)
records = [
    r for r in [*ui.model_records(), *ui.onnx_records()] if r.num_classes == bundle.num_classes
]
records = [r for r in records if r.dataset in (bundle.name, "")] or records
other_size = [r.name for r in records if not ui.fits_input(r, bundle.input_size)]
records = [r for r in records if ui.fits_input(r, bundle.input_size)]
if other_size:
    st.caption(f"Not listed: {', '.join(other_size)} (fixed to another image size than "
               f"{bundle.input_size} px).")  # fmt: skip
if not records:
    st.info(f"No models for {bundle.title} in the store: run a sweep or add a model.")
    st.stop()

by_name = {r.name: r for r in records}
dense_first = sorted(
    by_name, key=lambda n: (by_name[n].kind != "dense", by_name[n].target_reduction, n)
)
chosen = st.multiselect("Models", dense_first, default=dense_first[:2], key="audit_models")
c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
metric = c1.selectbox("Metric", list(METRICS), format_func=METRICS.get, key="audit_metric")
intersectional = c2.toggle(f"{bundle.group_attribute} × label", key="audit_intersectional")
# start from resamples every chosen model has a stored table for (no bootstrap to redo); a dense
# model is a cell of every sweep that starts from it, each sweep with its own resamples
stored = [b for b in (ui.stored_n_boots(by_name[n], bundle) for n in chosen) if b]
shared = [b for b in (stored[0] if stored else []) if all(b in other for other in stored[1:])]
stored_boot = (shared or (stored[0] if stored else [None]))[0]
boot_options = sorted({0, 50, 100, 200, 500, stored_boot or 200})
n_boot = c3.select_slider("Bootstrap resamples", boot_options, value=stored_boot or 200,
                          key="audit_nboot")  # fmt: skip
show_latency = c4.toggle("Latency: torch and onnxruntime", key="audit_latency",
                         help="CPU milliseconds per image of each model on each runtime "
                         "(the PyTorch model is exported to ONNX and verified first)")  # fmt: skip
if not chosen:
    st.info("Pick at least one model.")
    st.stop()


@st.cache_data(show_spinner="Auditing…", max_entries=128)
def audit_table(sha256: str, fingerprint: str, intersectional: bool, n_boot: int, _record):
    return ui.audit_table(_record, bundle, intersectional=intersectional, n_boot=n_boot)


tables = {}
with ui.guard():
    for name in chosen:
        rec = by_name[name]
        tables[name] = audit_table(rec.sha256, bundle.fingerprint, intersectional, n_boot, rec)

ui.group_legend(next(iter(tables.values()))["group"])
for name, table in tables.items():
    rec = by_name[name]
    st.subheader(name)
    if rec.kind == "onnx":
        st.caption(ui.onnx_caption(rec))
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
        for col in ("accuracy", "accuracy_low", "accuracy_high", "balanced_accuracy", "auroc",
                    "tpr", "fpr", "selection_rate"):  # fmt: skip
            show[col] = show[col] * 100
        st.dataframe(show, hide_index=True, key=f"audit_table_{name}",
                     column_config={c: st.column_config.NumberColumn(c, format="%.1f")
                                    for c in show.columns if c not in ("group", "n")})  # fmt: skip
        if show_latency:
            with ui.guard():
                lat = ui.latency(rec, bundle.input_size)
            st.dataframe(lat, hide_index=True, key=f"audit_latency_{name}",
                         column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                        for c in lat.columns if c != "runtime"})  # fmt: skip

if len(tables) >= 2:
    st.header("Side by side")
    a, b = st.columns(2)
    first = a.selectbox("Model A", list(tables), index=0, key="audit_cmp_a")
    second = b.selectbox("Model B", list(tables), index=1, key="audit_cmp_b")
    ta, tb = tables[first].set_index("group"), tables[second].set_index("group")
    cmp = pd.DataFrame(
        {
            "n": ta["n"],
            f"A {metric} (%)": ta[metric] * 100,
            f"B {metric} (%)": tb[metric] * 100,
            "B − A (pp)": (tb[metric] - ta[metric]) * 100,
        }
    ).reset_index()
    st.dataframe(cmp, hide_index=True, key="audit_cmp_table",
                 column_config={c: st.column_config.NumberColumn(c, format="%.1f")
                                for c in cmp.columns if c not in ("group", "n")})  # fmt: skip
    with ui.guard():
        paired, gap, word = ui.paired(by_name[first], by_name[second], bundle)
    st.markdown("**Accuracy, paired** (both models on the same test images; 95% bootstrap "
                "intervals; \"cannot tell\" unless the interval excludes 0)")  # fmt: skip
    if gap is not None:
        st.markdown(
            f"Gap (max − min group accuracy): B − A = {gap.estimate * 100:+.1f} points "
            f"(95% CI {gap.low * 100:+.1f} to {gap.high * 100:+.1f}): "
            + {"wider": "B's gap is wider.", "narrower": "B's gap is narrower.",
               "no_difference": "the data cannot tell the two gaps apart."}[word]
        )  # fmt: skip
    st.dataframe(paired, hide_index=True, key="audit_cmp_paired",
                 column_config={c: st.column_config.NumberColumn(c, format="%.1f")
                                for c in ("A accuracy (%)", "B accuracy (%)")})  # fmt: skip
    a.plotly_chart(charts.group_bars(tables[first], metric=metric, title=f"A: {first}"),
                   width="stretch", key="audit_cmp_chart_a")  # fmt: skip
    b.plotly_chart(charts.group_bars(tables[second], metric=metric, title=f"B: {second}"),
                   width="stretch", key="audit_cmp_chart_b")  # fmt: skip

    st.subheader("Decide on a model")
    st.caption("The meeting's decision on model A or B, kept in the results store (never "
               "overwritten) and carried into the report.")  # fmt: skip
    pair = {f"A: {first}": by_name[first], f"B: {second}": by_name[second]}
    ui.decision_form({label: ("model", rec.sha256) for label, rec in pair.items()},
                     key="audit_cmp", title="Decision on model A or B")  # fmt: skip
    hashes = list(dict.fromkeys(rec.sha256 for rec in pair.values()))
    decided = pd.concat([ui.decisions(subject=h) for h in hashes]).sort_values("id")
    names = pd.DataFrame({"model": [r.name for r in pair.values()],
                          "model_hash": [r.sha256 for r in pair.values()]})  # fmt: skip
    ui.show_decisions(decided, names, None, key="audit_cmp")
