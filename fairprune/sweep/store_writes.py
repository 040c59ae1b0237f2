"""Writing sweeps and cells to the results store: one transaction per finished cell.

A cell's row, its per-group rows and its predictions are computed before the transaction opens
and committed together, so a reader (or a sweep resumed after ``kill -9``) sees the whole cell or
none of it. ``ResultsStore`` gets its write methods from here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, is_dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import fairprune.sweep.store_dialects as dialects
from fairprune.sweep.store_predictions import PREDICTION_COLUMNS, encode_predictions
from fairprune.sweep.store_schema import (
    GROUP_METRIC_COLUMNS,
    cells,
    group_rows,
    sweeps,
)
from fairprune.sweep.store_schema import predictions as predictions_table

_CELL_COLUMNS = [c.name for c in cells.columns]
_GROUP_COLUMNS = ["cell_key", "split", "grp", *GROUP_METRIC_COLUMNS]


def _num(value):
    """A number as the database takes it: NaN and None become NULL, numpy scalars plain Python."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _record_dict(model) -> dict:
    if isinstance(model, dict):
        return model
    if is_dataclass(model):
        return asdict(model)
    return dict(vars(model))


class CellWrites:
    """Registering sweeps and writing cells: a part of ``ResultsStore``, which provides
    ``transaction()`` (one write transaction) and ``kind`` (the database)."""

    transaction: Callable[[], AbstractContextManager[Connection]]
    kind: str

    def register_sweep(self, sweep_id: str, config: dict, name: str = "") -> None:
        """Record a sweep's config (idempotent: the first registration is kept).

        Parameters
        ----------
        sweep_id : str
            Key of the sweep; cells refer to it.
        config : dict
            ``asdict`` of the ``SweepConfig``, stored as JSON.
        name : str, default ""
            Label shown in the dashboard.
        """
        row = {
            "sweep_id": sweep_id,
            "name": name,
            "config_json": json.dumps(config, default=str, sort_keys=True),
            "created": time.time(),
        }
        with self.transaction() as conn:
            conn.execute(dialects.insert_ignoring_duplicates(sweeps, self.kind), row)

    def write_cell(
        self,
        *,
        cell_key: str,
        sweep_id: str,
        model,
        config: dict,
        overall: dict,
        groups: pd.DataFrame,
        split: str = "test",
        predictions=None,
        group_names=None,
        class_names=None,
    ) -> None:
        """Write one finished cell, its per-group rows and predictions in a single transaction.

        Parameters
        ----------
        cell_key : str
            Unique key; writing it again replaces the earlier rows atomically.
        sweep_id : str
        model : ModelRecord or dict
            The checkpoint's manifest (name, sha256, path, dataset, arch, criterion, loss, …).
        config : dict
            Everything that made the cell (``asdict`` of its configs).
        overall : dict
            accuracy, gap, std_delta, max_psi, latency_ms, weight_sparsity (missing keys → NULL).
        groups : pandas.DataFrame
            ``fairprune.metrics.group_metrics`` output (NaN is stored as NULL, read back as NaN).
        split : str, default "test"
            The split the groups were measured on.
        predictions : Predictions, optional
            The model's per-sample predictions on that split (``y_true``, ``y_pred``, ``groups``,
            ``probs``, ``split_key``), kept so that paired intervals never re-run a model.
        group_names, class_names : list of str, optional
            Names of the group and class codes in ``predictions`` (needed with it).

        Notes
        -----
        The seed is ``config["cell"]["seed"]``, else ``config["finetune"]["seed"]``. Everything
        is computed before the transaction opens; if anything fails inside it, the database rolls
        the whole cell back, so a reader sees the old cell or the new one, never a mix.
        """
        rec = _record_dict(model)
        overall = overall or {}
        cell = (config or {}).get("cell", {})
        seed = cell.get("seed", (config or {}).get("finetune", {}).get("seed"))
        values = (  # in _CELL_COLUMNS order
            cell_key,
            sweep_id,
            rec.get("name", ""),
            rec.get("sha256", ""),
            str(rec.get("path", "") or ""),
            rec.get("dataset"),
            rec.get("arch"),
            rec.get("criterion", "dense"),
            rec.get("loss", "dense"),
            _num(seed),
            _num(float(rec.get("target_reduction", 0.0) or 0.0)),
            _num(float(rec.get("flops_reduction", 0.0) or 0.0)),
            _num(rec.get("macs")),
            _num(rec.get("params")),
            _num(rec.get("file_size")),
            _num(overall.get("latency_ms")),
            _num(overall.get("weight_sparsity")),
            _num(overall.get("accuracy")),
            _num(overall.get("gap")),
            _num(overall.get("std_delta")),
            _num(overall.get("max_psi")),
            split,
            json.dumps(config, default=str, sort_keys=True),
            time.time(),
        )
        row = dict(zip(_CELL_COLUMNS, values, strict=True))
        rows = [
            dict(zip(_GROUP_COLUMNS, (cell_key, split, str(r["group"]),
                                      *(_num(r.get(c)) for c in GROUP_METRIC_COLUMNS)), strict=True))
            for r in groups.to_dict(orient="records")
        ]  # fmt: skip
        pred_row = None
        if predictions is not None:
            encoded = encode_predictions(cell_key, split, predictions, group_names, class_names)
            pred_row = dict(zip(PREDICTION_COLUMNS, encoded, strict=True))
        with self.transaction() as conn:
            dialects.lock_cell(conn, self.kind, cell_key)
            for table in (predictions_table, group_rows, cells):
                conn.execute(sa.delete(table).where(table.c.cell_key == cell_key))
            conn.execute(sa.insert(cells), row)
            if rows:
                conn.execute(sa.insert(group_rows), rows)
            if pred_row is not None:
                conn.execute(sa.insert(predictions_table), pred_row)
