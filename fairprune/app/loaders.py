"""Models, datasets, predictions and latency for the pages, loaded once and cached.

Models come through ``st.cache_resource`` and are shared by every session, so callers must
``copy.deepcopy`` before changing one. Predictions and per-group tables are read from the
results store when a sweep stored them for the same rows, else computed once.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from fairprune import paths
from fairprune.app.tables import store_version
from fairprune.app.ui import check_allowed, models_dir, results_path


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _model(path: str, sha256: str):
    from fairprune.nets.onnx_io import load_for_audit

    return load_for_audit(path)  # ours, or an .onnx classifier (onnxruntime, audit only)


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def _dataset(name: str, root: str | None, csv: str | None, options_json: str):
    from fairprune.data import load_dataset

    return load_dataset(name, root, csv=csv, **json.loads(options_json))


def dataset(
    name: str, root: str | None = None, csv: str | None = None, options: dict | None = None
):
    """A dataset bundle, loaded once per process; its folder and CSV must be allowed."""
    for path in (root, csv):
        if path:
            check_allowed(path)
    return _dataset(name, root or None, csv or None, json.dumps(options or {}, sort_keys=True))


# The demo's dataset (``fairprune.demo``: SynthDerm, its biased preset; a test keeps the two
# equal), what a session looks at until it picks one on the Dataset page: the demo's models
# were made and audited on it, so the Audit page reads the per-group tables the demo stored
# (SynthDerm's default preset is other data: every model would be bootstrapped again, ~4 s each)
DEFAULT_DATASET = ("synthderm", None, None, {"preset": "biased"})


def current_dataset_choice() -> tuple[str, str | None, str | None, dict]:
    """The dataset chosen on the Dataset page (the demo's until then)."""
    chosen = st.session_state.get("fp_dataset_choice")
    if chosen is None:
        name, root, csv, options = DEFAULT_DATASET
        return name, root, csv, dict(options)  # a copy: callers may keep it in a config
    return chosen


def current_dataset():
    """The chosen dataset's bundle."""
    name, root, csv, options = current_dataset_choice()
    return dataset(name, root, csv, options)


@st.cache_resource(show_spinner="Running the model on the dataset…", max_entries=64)
def _predictions(path: str, sha256: str, name: str, root, csv, options_json: str, split: str):
    from fairprune.evaluate import predict

    model, _ = _model(path, sha256)
    bundle = _dataset(name, root, csv, options_json)
    return predict(
        model,
        bundle.splits[split],
        model_hash=sha256,
        split_key=f"{bundle.fingerprint}-{split}",
        cache_dir=paths.data_dir() / "predictions",
    )


@st.cache_data(show_spinner=False, max_entries=256)
def _stored_cells(path: str, version: str, sha256: str, split_key: str) -> list:
    """[(cell key, the bootstrap resamples its sweep used, or None)] of the model's stored cells
    on ``split_key``, newest first (empty when the model is no stored cell there)."""
    from fairprune.sweep.results import ResultsStore

    store = ResultsStore(path)
    found = []
    for key in store.cells_of_model(sha256, split_key):
        n_boot = store.cell_config(key).get("sweep", {}).get("n_boot")
        ok = isinstance(n_boot, int) and not isinstance(n_boot, bool)
        found.append((key, int(n_boot) if ok else None))
    return found


@st.cache_data(show_spinner=False, max_entries=256)
def _stored(path: str, version: str, sha256: str, split_key: str, n_boot: int | None):
    """(StoredPredictions, per-group table or None) of the model's stored cells, or None: the
    table of the newest cell audited with ``n_boot`` resamples, if any."""
    from fairprune.sweep.results import ResultsStore

    found = _stored_cells(path, version, sha256, split_key)
    if not found:
        return None
    same = [key for key, boot in found if n_boot is not None and boot == n_boot]
    key = same[0] if same else found[0][0]  # one model, one split: the same predictions
    store = ResultsStore(path)
    table = store.cell_groups(key) if same else None  # the sweep's own audit, intervals included
    return store.predictions([key])[key], table


def stored_n_boots(record, bundle) -> list[int]:
    """The bootstrap resamples of the per-group tables stored for this model (one per sweep it
    is a cell of, newest first; empty: no stored cell). The Audit page starts from one every
    chosen model has, so it reads those tables instead of running the bootstrap again."""
    found = _stored_cells(
        str(results_path()), store_version(), record.sha256, f"{bundle.fingerprint}-test"
    )
    return list(dict.fromkeys(boot for _, boot in found if boot))


def stored_predictions(sha256: str, split_key: str):
    """The per-sample predictions a sweep stored for this model on ``split_key``, or None."""
    found = _stored(str(results_path()), store_version(), sha256, split_key, None)
    return None if found is None else found[0]


def predictions(record, split: str = "test"):
    """Predictions of a model on the current dataset's split: read from the results store when
    the model is a stored sweep cell on these very rows, else computed once (and cached)."""
    name, root, csv, options = current_dataset_choice()
    bundle = current_dataset()
    stored = stored_predictions(record.sha256, f"{bundle.fingerprint}-{split}")
    if stored is not None:
        return stored
    return _predictions(
        record.path, record.sha256, name, root or None, csv or None,
        json.dumps(options or {}, sort_keys=True), split,
    )  # fmt: skip


def audit_table(record, bundle, *, intersectional: bool = False, n_boot: int = 200):
    """A model's per-group audit on the test split: the table its sweep stored when the model is
    a sweep cell audited with the same bootstrap, else computed from its predictions."""
    from fairprune.metrics import audit

    if not intersectional:
        split_key = f"{bundle.fingerprint}-test"
        found = _stored(str(results_path()), store_version(), record.sha256, split_key, n_boot)
        if found is not None and found[1] is not None:
            return found[1]
    return audit(predictions(record), bundle, intersectional=intersectional, n_boot=n_boot)


@st.cache_data(show_spinner="Auditing…", max_entries=128)
def audit_cached(
    sha256: str, fingerprint: str, intersectional: bool, n_boot: int, _record, _bundle
):
    """:func:`audit_table`, cached per (model, dataset, view, resamples) and shared by every
    session (the Audit page's tables; the dashboard's warm-up fills it ahead of the first
    visitor, ``fairprune.app.warmup``)."""
    return audit_table(_record, _bundle, intersectional=intersectional, n_boot=n_boot)


def model_records(dataset_name: str | None = None):
    """Checkpoints in the model store, optionally only those made for one dataset."""
    from fairprune.nets.listing import list_models  # no Torch: the Models page's first table

    records = list_models(models_dir())
    if dataset_name:
        records = [r for r in records if r.dataset == dataset_name]
    return records


def model_table(records) -> pd.DataFrame:
    """The Models page's table of ``records``, one row each (no Torch imported)."""
    from fairprune.nets.manifest import record_to_row

    return pd.DataFrame([record_to_row(r) for r in records])


def onnx_records():
    """The ``.onnx`` classifiers in the model store (audit only; ``kind == "onnx"``)."""
    folder = models_dir()
    if not folder.is_dir() or not any(folder.glob("*.onnx")):
        return []  # onnxruntime is imported only when the store holds an ONNX file
    from fairprune.nets.onnx_io import list_onnx

    return list_onnx(folder)


def fits_input(record, input_size: int) -> bool:
    """False for an ONNX model whose fixed input side differs from the dataset's."""
    onnx = record.config.get("onnx", {}) if record.kind == "onnx" else {}
    return not onnx.get("static_input") or record.input_size == input_size


def onnx_caption(record) -> str:
    """One line saying what an ONNX record is and that it is audit-only."""
    onnx = record.config.get("onnx", {})
    source = onnx.get("source_arch") or "unknown architecture"
    origin = f"exported from {onnx['source']} ({source})" if onnx.get("source") else source
    fr = f" · FLOPs reduction {record.flops_reduction:.1%}" if record.flops_reduction else ""
    return (
        f"ONNX · run by onnxruntime · **audit only, not prunable** · {origin} · opset "
        f"{onnx.get('opset', '?')}{fr} · {record.macs:,} MACs · hash `{record.sha256[:12]}`"
    )


LATENCY_BATCHES = (1, 64)  # images per call: single-image serving, and batch throughput


@st.cache_data(show_spinner="Measuring latency on this machine's CPU…", max_entries=64)
def _latency(path: str, sha256: str, input_size: int, threads: int) -> pd.DataFrame:
    from fairprune.evaluate import latency_table
    from fairprune.nets.deploy import runtimes

    model, _ = _model(path, sha256)
    runners = runtimes(model, input_size, threads=threads)
    return latency_table(runners, input_size, batch_sizes=LATENCY_BATCHES, rounds=5,
                         threads=threads)  # fmt: skip


def latency(record, input_size: int | None = None) -> pd.DataFrame:
    """Milliseconds per image on each runtime (rows) at batch 1 and 64 (columns), cached.

    Parameters
    ----------
    record : ModelRecord
    input_size : int, optional
        Image side; default the model's own.

    Returns
    -------
    pandas.DataFrame
        Columns ``runtime``, ``batch 1 (ms/image)``, ``batch 64 (ms/image)`` and
        ``speed vs torch (batch 64)`` (torch's time ÷ this runtime's; empty for an ONNX model).
    """
    import torch

    side = int(input_size or record.input_size)
    long = _latency(record.path, record.sha256, side, torch.get_num_threads())
    wide = long.pivot(index="runtime", columns="batch", values="ms_per_image")
    wide = wide.reindex([r for r in dict.fromkeys(long["runtime"])])
    out = pd.DataFrame({"runtime": wide.index})
    for b in LATENCY_BATCHES:
        out[f"batch {b} (ms/image)"] = wide[b].to_numpy()
    last = LATENCY_BATCHES[-1]
    if "torch" in wide.index:
        out[f"speed vs torch (batch {last})"] = (wide.loc["torch", last] / wide[last]).to_numpy()
    return out


@st.cache_data(show_spinner="Computing paired intervals…", max_entries=64)
def _paired(sha_a: str, sha_b: str, fingerprint: str, _preds_a, _preds_b, _group_names):
    from fairprune.app.views import paired_comparison

    return paired_comparison(_preds_a, _preds_b, _group_names)


def paired(record_a, record_b, bundle):
    """:func:`fairprune.app.views.paired_comparison` of two models on the current dataset's test
    split, cached per (model, model, dataset): a model's file is named by its content hash, so
    the same pair on the same rows always gives the same intervals."""
    return _paired(record_a.sha256, record_b.sha256, bundle.fingerprint,
                   predictions(record_a), predictions(record_b), bundle.group_names)  # fmt: skip
