"""Models: every checkpoint in the model store, and adding one by upload or by path."""

import pandas as pd
import streamlit as st

from fairprune.app import ui
from fairprune.app.api import (
    ARCHITECTURES,
    MAX_UPLOAD_BYTES,
    add_by_path,
    import_upload,
    record_to_row,
)

ui.setup_page("Models")
st.title("Models")
st.caption(f"Checkpoints in `{ui.models_dir()}`: safetensors weights + a JSON manifest each.")

with ui.guard():
    records = ui.model_records()
if records:
    table = pd.DataFrame([record_to_row(r) for r in records])
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "flops_reduction": st.column_config.NumberColumn("FLOPs reduction", format="percent"),
            "macs": st.column_config.NumberColumn("MACs", format="localized"),
            "params": st.column_config.NumberColumn("params", format="localized"),
            "size_kb": st.column_config.NumberColumn("size (KB)"),
            "sha256": "content hash",
        },
        key="models_table",
    )
    st.caption(f"{len(records)} checkpoints · {sum(r.kind == 'pruned' for r in records)} pruned")
else:
    st.info(
        "No checkpoints yet: run the demo from the Overview page or `python -m fairprune demo`."
    )

st.header("Add a model")
bundle_name, *_ = ui.current_dataset_choice()
with ui.guard():
    bundle = ui.current_dataset()
st.caption(
    f"Models are added for the current dataset, **{bundle.title}** ({bundle.num_classes} classes, "
    f"{bundle.input_size} px). Change it on the Dataset page. Only plain state dicts and "
    "safetensors are read: a pickled module is refused and nothing in it runs."
)
arch = st.selectbox(
    "Architecture",
    sorted(ARCHITECTURES),
    key="models_arch",
    format_func=lambda a: f"{a} — {ARCHITECTURES[a].description}",
)
upload_tab, path_tab = st.tabs(["Upload a file", "From the models folder"])
with upload_tab:
    up = st.file_uploader(
        f"A .pt/.pth state dict or .safetensors (at most {MAX_UPLOAD_BYTES // 2**20} MB)",
        type=["pt", "pth", "safetensors"],
        key="models_upload",
    )
    manifest = st.file_uploader(
        "Its fairprune manifest (.json) — needed for a pruned .safetensors model",
        type=["json"],
        key="models_upload_manifest",
    )
    if up is not None and st.button("Add uploaded model", key="models_add_upload"):
        with ui.guard():
            rec = import_upload(
                up.getvalue(), up.name, ui.models_dir(), arch=None if manifest else arch,
                num_classes=bundle.num_classes, input_size=bundle.input_size,
                dataset=bundle.name, dataset_fingerprint=bundle.fingerprint,
                manifest=manifest.getvalue() if manifest is not None else None,
            )  # fmt: skip
            st.success(f"Added `{rec.name}` ({rec.params:,} params, hash `{rec.sha256[:12]}`).")
with path_tab:
    rel = st.text_input("File name inside the models folder", key="models_path",
                        placeholder="my_model.pth")  # fmt: skip
    if rel and st.button("Add from path", key="models_add_path"):
        with ui.guard():  # the file must stay inside the store (checked, symlinks resolved)
            rec, already = add_by_path(
                ui.models_dir(), rel, arch=arch,
                num_classes=bundle.num_classes, input_size=bundle.input_size,
                dataset=bundle.name, dataset_fingerprint=bundle.fingerprint,
            )  # fmt: skip
            if already:
                st.success(f"`{rec.name}` is a valid fairprune checkpoint already in the store.")
            else:
                st.success(f"Added `{rec.name}` ({rec.params:,} params).")
