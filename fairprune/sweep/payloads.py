"""A sweep's work and results as plain data, for Ray: nothing pickled, no path on the driver's disk.

The driver sends the dense checkpoint as bytes (its manifest JSON and its safetensors weights, with
the driver's audit of it) and each ``PruneUnit`` as a dict; a worker sends each finished cell back
as a payload: the weights as safetensors bytes, the layer shapes needed to rebuild them, the
manifest and store fields, the per-group table and the per-sample predictions. Each ``*_payload``
has its inverse ``*_from_payload``; rebuilding checks hashes and shapes and executes nothing.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save as safetensors_bytes

from fairprune.errors import FairpruneError
from fairprune.evaluate import Predictions
from fairprune.nets.checkpoint import read_safetensors
from fairprune.nets.manifest import ModelRecord, parse_manifest
from fairprune.nets.shapes import layer_shapes, load_state, rebuild_model
from fairprune.sweep.cell_runner import CellResult
from fairprune.sweep.context import SweepContext
from fairprune.sweep.grid import Cell, PruneUnit
from fairprune.utils import environment, sha256_bytes

ERR_DENSE_BYTES = (
    "the dense checkpoint sent to a Ray worker does not match its hash; rerun the sweep."
)


def dense_payload(record: ModelRecord, table: pd.DataFrame | None = None) -> dict:
    """The dense checkpoint as bytes for the workers: its manifest JSON and its weights.

    Parameters
    ----------
    record : ModelRecord
        A loaded dense model's record (``path`` set).
    table : DataFrame, optional
        The driver's per-group audit of the dense model (sent so workers need not redo it).

    Returns
    -------
    dict
        ``{"manifest": str, "weights": bytes}``, plus ``"table"`` (``table_payload``) if given.
    """
    path = Path(record.path)
    payload = {
        "manifest": path.with_suffix(".json").read_text(),
        "weights": path.with_suffix(".safetensors").read_bytes(),
    }
    if table is not None:
        payload["table"] = table_payload(table)
    return payload


def dense_from_payload(payload: dict) -> tuple[torch.nn.Module, ModelRecord]:
    """Rebuild the dense model from ``dense_payload`` (hash checked, nothing executed)."""
    record = parse_manifest(payload["manifest"], "the driver's dense manifest")
    if sha256_bytes(payload["weights"]) != record.sha256:
        raise FairpruneError(ERR_DENSE_BYTES)
    model = rebuild_model(record, "the driver's dense manifest")
    state = read_safetensors(payload["weights"], "the driver's dense weights")
    load_state(model, state, "the driver's dense weights", record.arch)
    return model.eval(), record


def unit_to_dict(unit: PruneUnit) -> dict:
    """A ``PruneUnit`` as plain data (what a worker receives)."""
    return asdict(unit)


def unit_from_dict(data: dict) -> PruneUnit:
    """Inverse of ``unit_to_dict``."""
    cells = tuple(Cell(**c) for c in data["cells"])
    return PruneUnit(data["criterion"], float(data["target_reduction"]), int(data["seed"]), cells)


def unit_label(unit: PruneUnit) -> str:
    """ "l1 75.0% seed 0": how a unit is named in progress text and errors."""
    return f"{unit.criterion} {unit.target_reduction:.1%} seed {unit.seed}"


def cell_payload(ctx: SweepContext, result: CellResult) -> dict:
    """A finished cell as plain data: weights as safetensors bytes, never a pickled module."""
    record = ctx.record
    model = result.model
    state = {n: t.detach().cpu().clone().contiguous() for n, t in model.state_dict().items()}
    preds = result.preds
    return {
        "key": result.key,
        "cell": asdict(result.cell),
        "weights": safetensors_bytes(state),
        "layer_shapes": layer_shapes(model, record.arch, record.num_outputs, record.input_size),
        "prune_info": dict(result.prune_info),
        "config": result.config,
        "overall": dict(result.overall),
        "table": result.table,
        "preds": {
            "logits": np.asarray(preds.logits),
            "probs": np.asarray(preds.probs),
            "y_pred": np.asarray(preds.y_pred),
            "y_true": np.asarray(preds.y_true),
            "groups": np.asarray(preds.groups),
            "model_hash": preds.model_hash,
            "split_key": preds.split_key,
        },
        "environment": environment(),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def cell_from_payload(ctx: SweepContext, payload: dict) -> CellResult:
    """Rebuild a worker's cell on the driver: the model from its bytes and recorded shapes."""
    source = f"the Ray worker's cell {payload['key']}"
    spec = replace(ctx.record, layer_shapes=payload["layer_shapes"])
    model = rebuild_model(spec, source)
    load_state(model, read_safetensors(payload["weights"], source), source, spec.arch)
    p = payload["preds"]
    preds = Predictions(
        logits=np.asarray(p["logits"]),
        probs=np.asarray(p["probs"]),
        y_pred=np.asarray(p["y_pred"]),
        y_true=np.asarray(p["y_true"]),
        groups=np.asarray(p["groups"]),
        model_hash=p["model_hash"],
        split_key=p["split_key"],
    )
    return CellResult(
        cell=Cell(**payload["cell"]),
        key=payload["key"],
        model=model.eval(),
        prune_info=payload["prune_info"],
        config=payload["config"],
        overall=payload["overall"],
        table=payload["table"],
        preds=preds,
        environment=payload.get("environment"),
    )


def table_payload(table: pd.DataFrame) -> dict:
    """A per-group table as plain data (``to_dict(orient="tight")``: values, index, dtypes kept)."""
    return {"tight": table.to_dict(orient="tight"), "dtypes": table.dtypes.astype(str).to_dict()}


def table_from_payload(payload: dict) -> pd.DataFrame:
    """Inverse of ``table_payload``."""
    return pd.DataFrame.from_dict(payload["tight"], orient="tight").astype(payload["dtypes"])
