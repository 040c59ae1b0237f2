"""Dataset: choose the dataset, see its counts per split × group × label and sample images."""

import numpy as np
import streamlit as st

from fairprune.app import charts, loaders, ui
from fairprune.app.api import DATASETS, summarize


def body() -> None:
    st.title("Dataset")

    name, root, csv, options = loaders.current_dataset_choice()
    names = list(DATASETS)
    choice = st.selectbox("Dataset", names, index=names.index(name), key="dataset_name",
                          format_func=lambda n: f"{n} — {DATASETS[n].help}")  # fmt: skip
    new_root, new_csv, new_options = None, None, {}
    if DATASETS[choice].needs_root:
        st.caption(
            "Folders this dashboard may read: "
            + ", ".join(f"`{r}`" for r in ui.allowed_roots())
            + " (set by whoever runs it, `FAIRPRUNE_ALLOWED_ROOTS`)."
        )
        new_root = st.text_input("Folder holding the dataset", value=root or "", key="dataset_root")
        if choice == "csv":
            new_csv = st.text_input("CSV file (path,label,group[,split])", value=csv or "",
                                    key="dataset_csv")  # fmt: skip
        if choice == "cifar10":
            new_options["variant"] = st.selectbox("Variant", ["standard", "imbalanced", "shortcut"],
                                                  key="dataset_variant")  # fmt: skip
    if st.button("Use this dataset", key="dataset_apply"):
        if DATASETS[choice].needs_root and not new_root:
            st.error(f"The {choice} dataset is read from a folder: enter its path above.")
            st.stop()
        with ui.guard():  # only folders the operator allowed, checked before anything is read
            for path in (new_root, new_csv):
                if path:
                    ui.check_allowed(path)
        st.session_state["fp_dataset_choice"] = (
            choice,
            new_root or None,
            new_csv or None,
            new_options,
        )
        name, root, csv, options = st.session_state["fp_dataset_choice"]

    with ui.guard():
        bundle = loaders.dataset(name, root, csv, options)
        summary = summarize(bundle)
    st.subheader(bundle.title)
    ui.synthetic_note(bundle)
    st.write(bundle.description)
    if bundle.skipped:
        st.caption(
            "Skipped while loading: " + ", ".join(f"{k}: {v}" for k, v in bundle.skipped.items())
        )

    with ui.guard():
        st.plotly_chart(charts.counts_chart(summary), width="stretch", key="dataset_counts")
        ui.pause_for_first_view()
        st.dataframe(
            summary.pivot_table(
                index=["split", "group"], columns="label", values="n", fill_value=0
            ),
            key="dataset_table",
        )

    st.subheader(f"Samples per {bundle.group_attribute}")
    split_name = "test" if "test" in bundle.splits else next(iter(bundle.splits))
    split = bundle.splits[split_name]
    per_group = st.slider("Images per group", 4, 12, 8, key="dataset_per_group")
    rng = np.random.default_rng(0)
    for gi, g in enumerate(bundle.group_names):
        idx = np.flatnonzero(split.groups == gi)
        if len(idx) == 0:
            continue
        pick = rng.choice(idx, size=min(per_group, len(idx)), replace=False)
        st.markdown(f"**{g}**")
        cols = st.columns(len(pick))
        with ui.guard():
            for col, i in zip(cols, pick, strict=True):
                col.image(split.image(int(i)), caption=bundle.class_names[split.labels[i]],
                          width="stretch")  # fmt: skip


ui.run_page("Dataset", body)
