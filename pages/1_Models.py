"""Models: every checkpoint and ONNX classifier in the store, adding one, and deployment latency."""

import streamlit as st

from fairprune.app import identity, loaders, ui

# The model table is drawn before anything imports Torch (the listing and its rows are
# torch-free): on a just-started server it is the page's first content. Adding, removing and
# measuring models import the backend (``fairprune.app.api``) when their sections run.

OPERATORS_ONLY = "Adding and removing models is for operators; your role reads the store."


def model_columns() -> dict:
    """How a model table's columns are shown (checkpoints and ONNX classifiers alike)."""
    return {
        "flops_reduction": st.column_config.NumberColumn("FLOPs reduction", format="percent"),
        "macs": st.column_config.NumberColumn("MACs", format="localized"),
        "params": st.column_config.NumberColumn("params", format="localized"),
        "size_kb": st.column_config.NumberColumn("size (KB)"),
        "sha256": "content hash",
    }


def body() -> None:
    st.title("Models")
    st.caption(f"Checkpoints in `{ui.models_dir()}`: safetensors weights + a JSON manifest each.")

    with ui.guard():
        records = loaders.model_records()
        onnx_records = loaders.onnx_records()
    if records:
        table = loaders.model_table(records)
        st.dataframe(
            table,
            hide_index=True,
            column_config=model_columns(),
            key="models_table",
        )
        ui.pause_for_first_view()
        st.caption(
            f"{len(records)} checkpoints · {sum(r.kind == 'pruned' for r in records)} pruned"
        )
    else:
        st.info(
            "No checkpoints yet: run the demo from the Overview page or `python -m fairprune demo`."
        )

    if onnx_records:
        st.subheader("ONNX classifiers — audit only")
        st.caption(
            "Run by onnxruntime on the Audit page, side by side with the others. They are **not "
            "prunable**: an ONNX graph has no PyTorch layers to prune or fine-tune; use the checkpoint "
            "it was exported from (`python -m fairprune export-onnx`). MACs count the convolutions "
            "and linear layers of the graph."
        )
        st.dataframe(
            loaders.model_table(onnx_records),
            hide_index=True,
            column_config=model_columns(),
            key="models_onnx_table",
        )

    with ui.guard():
        bundle = loaders.current_dataset()
    if identity.may("operate"):  # adding and removing refuse anyone else too (api)
        add_section(bundle)
        remove_section([*records, *onnx_records])
    else:
        st.caption(OPERATORS_ONLY)
    latency_section(records, onnx_records, bundle)


def add_section(bundle) -> None:
    """Upload a model, or add one already in the models folder (operators)."""
    from fairprune.app.api import (
        ARCHITECTURES,
        MAX_UPLOAD_BYTES,
        MAX_UPLOAD_ONNX_BYTES,
        add_by_path,
        import_onnx,
        import_upload,
        load_for_audit,
        store_file,
    )

    st.header("Add a model")
    st.caption(
        f"Models are added for the current dataset, **{bundle.title}** ({bundle.num_classes} classes, "
        f"{bundle.input_size} px). Change it on the Dataset page. Only plain state dicts, "
        "safetensors and ONNX are read: a pickled module is refused and nothing in it runs. A state "
        "dict pruned by another tool (Torch-Pruning, `torch.nn.utils.prune`, DataParallel) loads too: "
        "resized layers are rebuilt from the shapes of its tensors. An `.onnx` classifier "
        "(N×3×S×S → N×K) is kept as is and is audit-only."
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
            f"A .pt/.pth state dict or .safetensors (at most {MAX_UPLOAD_BYTES // 2**20} MB), or an "
            f".onnx classifier (at most {MAX_UPLOAD_ONNX_BYTES // 2**20} MB, audit only)",
            type=["pt", "pth", "safetensors", "onnx"],
            key="models_upload",
        )
        manifest = st.file_uploader(
            "Its fairprune manifest (.json) — needed for a pruned .safetensors model",
            type=["json"],
            key="models_upload_manifest",
        )
        if up is not None and st.button("Add uploaded model", key="models_add_upload"):
            with ui.guard():
                if up.name.lower().endswith(".onnx"):
                    rec = import_onnx(
                        up.getvalue(), up.name, ui.models_dir(), num_classes=bundle.num_classes,
                        input_size=bundle.input_size, results=ui.results_path(),
                    )  # fmt: skip
                    st.success(f"Added `{rec.name}`: an ONNX classifier run by onnxruntime, audit only "
                               f"(not prunable); {rec.macs:,} MACs, hash `{rec.sha256[:12]}`.")  # fmt: skip
                else:
                    rec = import_upload(
                        up.getvalue(), up.name, ui.models_dir(), arch=None if manifest else arch,
                        num_classes=bundle.num_classes, input_size=bundle.input_size,
                        dataset=bundle.name, dataset_fingerprint=bundle.fingerprint,
                        manifest=manifest.getvalue() if manifest is not None else None,
                        results=ui.results_path(),
                    )  # fmt: skip
                    st.success(
                        f"Added `{rec.name}` ({rec.params:,} params, hash `{rec.sha256[:12]}`)."
                    )
    with path_tab:
        rel = st.text_input("File name inside the models folder", key="models_path",
                            placeholder="my_model.pth")  # fmt: skip
        if rel and st.button("Add from path", key="models_add_path"):
            with ui.guard():  # the file must stay inside the store (checked, symlinks resolved)
                if rel.lower().endswith(".onnx"):
                    _model, rec = load_for_audit(store_file(ui.models_dir(), rel),
                                                 num_classes=bundle.num_classes,
                                                 input_size=bundle.input_size)  # fmt: skip
                    st.success(f"`{rec.name}` is a valid ONNX classifier, listed above: audit only, "
                               "not prunable.")  # fmt: skip
                else:
                    rec, already = add_by_path(
                        ui.models_dir(), rel, arch=arch,
                        num_classes=bundle.num_classes, input_size=bundle.input_size,
                        dataset=bundle.name, dataset_fingerprint=bundle.fingerprint,
                        results=ui.results_path(),
                    )  # fmt: skip
                    if already:
                        st.success(
                            f"`{rec.name}` is a valid fairprune checkpoint already in the store."
                        )
                    else:
                        st.success(f"Added `{rec.name}` ({rec.params:,} params).")


def remove_section(listed) -> None:
    """Delete a model's files from the store, after a confirmation (operators)."""
    from fairprune.app.api import removable_files, remove_model

    st.header("Remove a model")
    done = st.session_state.pop("models_removed", None)
    if done:
        st.success(done)
    if not listed:
        st.caption("The store holds no model to remove.")
        return
    names = [r.name for r in listed]
    pick = st.selectbox("Model to remove", names, index=None, key="models_remove_pick",
                        placeholder="Choose a model")  # fmt: skip
    if pick is None:
        return
    with ui.guard():
        files = removable_files(ui.models_dir(), pick)
    st.caption(
        f"Deletes {', '.join(f'`{f.name}`' for f in files)} from the models folder. Results, "
        "decisions and the action log in the results store stay; a sweep that needs this model "
        "cannot be resumed."
    )
    sure = st.checkbox(f"Yes, delete `{pick}`", key="models_remove_confirm")
    if st.button("Remove model", key="models_remove", disabled=not sure):
        with ui.guard():
            removed = remove_model(ui.models_dir(), pick, results=ui.results_path())
        st.session_state["models_removed"] = f"Removed `{pick}` ({', '.join(removed)})."
        for key in ("models_remove_pick", "models_remove_confirm"):
            st.session_state.pop(key, None)
        st.rerun()


def latency_section(records, onnx_records, bundle) -> None:
    """Milliseconds per image of a model of the store, on each runtime."""
    st.header("Deployment latency")
    everything = {r.name: r for r in [*records, *onnx_records]}
    if not everything:
        st.info("Add a model to measure how fast it runs.")
        st.stop()
    pick = st.selectbox("Model", list(everything), key="models_latency_model")
    st.caption(
        "Milliseconds per image on this machine's CPU, measured side by side (interleaved, median of "
        "5 rounds), at the same thread count: the PyTorch model as trained; with batch norm folded "
        "into the convolutions and channels-last layout; and its verified ONNX export in "
        "onnxruntime (all graph optimisations). An ONNX classifier runs in onnxruntime only."
    )
    if st.toggle("Measure latency", key="models_latency"):
        with ui.guard():
            lat = loaders.latency(everything[pick], bundle.input_size)
        st.dataframe(
            lat,
            hide_index=True,
            key="models_latency_table",
            column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                           for c in lat.columns if c != "runtime"},
        )  # fmt: skip


ui.run_page("Models", body)
