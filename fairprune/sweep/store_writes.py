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
from sqlite3 import Connection

import numpy as np
import pandas as pd

from fairprune.sweep.store_predictions import INSERT_PREDICTIONS, encode_predictions
from fairprune.sweep.store_schema import GROUP_METRIC_COLUMNS

_CELL_COLUMNS = [
    "cell_key", "sweep_id", "model", "model_hash", "model_path", "dataset", "arch", "criterion",
    "loss", "seed", "target_reduction", "flops_reduction", "macs", "params", "file_size",
    "latency_ms", "weight_sparsity", "accuracy", "gap", "std_delta", "max_psi", "split",
    "config_json", "created",
]  # fmt: skip
_INSERT_CELL = (
    f"INSERT INTO cells ({', '.join(_CELL_COLUMNS)}) VALUES ({', '.join('?' * len(_CELL_COLUMNS))})"
)
_GROUP_COLUMNS = ["cell_key", "split", "grp", *GROUP_METRIC_COLUMNS]
_INSERT_GROUP = (
    f"INSERT INTO group_rows ({', '.join(_GROUP_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_GROUP_COLUMNS))})"
)


def _num(value):
    """SQLite-friendly number: NaN and None become NULL, numpy scalars plain Python."""
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
    """Registering sweeps, writing and deleting cells: a part of ``ResultsStore``, which
    provides ``connect()`` (one connection per operation)."""

    connect: Callable[[], AbstractContextManager[Connection]]

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
        with self.connect() as conn, conn:
            conn.execute(
                "INSERT OR IGNORE INTO sweeps (sweep_id, name, config_json, created) "
                "VALUES (?, ?, ?, ?)",
                (sweep_id, name, json.dumps(config, default=str, sort_keys=True), time.time()),
            )

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
        is computed before the transaction opens; if anything fails inside it, SQLite rolls the
        whole cell back, so a reader sees the old cell or the new one, never a mix.
        """
        rec = _record_dict(model)
        overall = overall or {}
        cell = (config or {}).get("cell", {})
        seed = cell.get("seed", (config or {}).get("finetune", {}).get("seed"))
        row = (  # in _CELL_COLUMNS order
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
        group_rows = [
            (cell_key, split, str(r["group"]), *(_num(r.get(c)) for c in GROUP_METRIC_COLUMNS))
            for r in groups.to_dict(orient="records")
        ]
        pred_row = None
        if predictions is not None:
            pred_row = encode_predictions(cell_key, split, predictions, group_names, class_names)
        with self.connect() as conn, conn:
            conn.execute("DELETE FROM predictions WHERE cell_key = ?", (cell_key,))
            conn.execute("DELETE FROM group_rows WHERE cell_key = ?", (cell_key,))
            conn.execute("DELETE FROM cells WHERE cell_key = ?", (cell_key,))
            conn.execute(_INSERT_CELL, row)
            conn.executemany(_INSERT_GROUP, group_rows)
            if pred_row is not None:
                conn.execute(INSERT_PREDICTIONS, pred_row)
