"""Reading the results store: sweeps, cells, their per-group rows and stored predictions, the
long export, and the version the dashboard's caches key on. ``ResultsStore`` gets its read
methods from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from sqlite3 import Connection

import pandas as pd

from fairprune.metrics import METRIC_COLUMNS
from fairprune.sweep.store_predictions import (
    PREDICTION_COLUMNS,
    StoredPredictions,
    decode_predictions,
)
from fairprune.sweep.store_schema import GROUP_METRIC_COLUMNS

LONG_COLUMNS = [
    "sweep_id",
    "cell_key",
    "model",
    "model_hash",
    "dataset",
    "arch",
    "criterion",
    "loss",
    "seed",
    "target_reduction",
    "flops_reduction",
    "macs",
    "params",
    *METRIC_COLUMNS,  # group, n, accuracy, its interval, …
]


def _where(sweep_id: str | None, column: str) -> tuple[str, tuple]:
    """``WHERE column = ?`` and its parameter for one sweep; nothing for all sweeps."""
    return (f"WHERE {column} = ?", (sweep_id,)) if sweep_id is not None else ("", ())


class CellReads:
    """Reading sweeps and cells: a part of ``ResultsStore``, which provides ``connect()`` (one
    connection per operation) and ``read_frame(sql, params)``."""

    connect: Callable[[], AbstractContextManager[Connection]]
    read_frame: Callable[..., pd.DataFrame]

    def version(self, sweep_id: str | None = None) -> str:
        """Changes whenever a sweep or a cell is written or deleted (decisions do not count): the
        dashboard's caches of tables and intervals key on it, so a review decision does not
        recompute them. With ``sweep_id``, only that sweep's own writes count: what is cached for
        one sweep stays while another sweep's cells land."""
        with self.connect() as conn:
            if sweep_id is None:
                row = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM sweeps), (SELECT COUNT(*) FROM cells), "
                    "(SELECT COALESCE(MAX(created), 0) FROM cells)"
                ).fetchone()
                return f"{row[0]}:{row[1]}:{row[2]!r}"
            row = conn.execute(
                "SELECT (SELECT COUNT(*) FROM sweeps WHERE sweep_id = ?), COUNT(*), "
                "COALESCE(MAX(created), 0) FROM cells WHERE sweep_id = ?",
                (sweep_id, sweep_id),
            ).fetchone()
        return f"{sweep_id}:{row[0]}:{row[1]}:{row[2]!r}"

    def has_cell(self, cell_key: str) -> bool:
        """True once the cell has been written."""
        with self.connect() as conn:
            row = conn.execute("SELECT 1 FROM cells WHERE cell_key = ?", (cell_key,)).fetchone()
        return row is not None

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep: sweep_id, name, config_json, created, cells (how many written).

        Returns
        -------
        pandas.DataFrame
            Oldest sweep first.
        """
        return self.read_frame(
            "SELECT s.sweep_id, s.name, s.config_json, s.created, COUNT(c.cell_key) AS cells "
            "FROM sweeps s LEFT JOIN cells c ON c.sweep_id = s.sweep_id "
            "GROUP BY s.sweep_id ORDER BY s.created, s.sweep_id"
        )

    def cells(self, sweep_id: str | None = None) -> pd.DataFrame:
        """One row per cell (all columns of the ``cells`` table), in the order they were written.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's cells; None for all.

        Returns
        -------
        pandas.DataFrame
            cell_key, sweep_id, model, model_hash, model_path, dataset, arch, criterion, loss,
            seed, target_reduction, flops_reduction, macs, params, file_size, latency_ms,
            weight_sparsity, accuracy, gap, std_delta, max_psi, split, config_json, created
            (Unix seconds).
        """
        where, params = _where(sweep_id, "sweep_id")
        return self.read_frame(f"SELECT * FROM cells {where} ORDER BY created, cell_key", params)

    def group_rows(self, sweep_id: str | None = None) -> pd.DataFrame:
        """One row per (cell, group): cell_key, split, then ``group_metrics``' columns.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's rows; None for all.

        Returns
        -------
        pandas.DataFrame
            Ordered by cell write time, then cell_key, then group name.
        """
        where, params = _where(sweep_id, "c.sweep_id")
        df = self.read_frame(
            "SELECT g.* FROM group_rows g JOIN cells c ON c.cell_key = g.cell_key "
            f"{where} ORDER BY c.created, g.cell_key, g.grp",
            params,
        )
        return df.rename(columns={"grp": "group"})

    def export_long(self, sweep_id: str | None = None) -> pd.DataFrame:
        """Long format, one row per (model, group): the columns of ``LONG_COLUMNS``.

        The dense baseline has ``target_reduction`` 0 and criterion = loss = "dense"; the row
        ``group == "overall"`` holds the whole split.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's rows; None for all.

        Returns
        -------
        pandas.DataFrame
            Sorted by sweep_id, criterion, loss, target_reduction, seed, cell_key, then group
            name with ``overall`` last, so equal stores export equal tables.
        """
        where, params = _where(sweep_id, "c.sweep_id")
        df = self.read_frame(
            "SELECT c.sweep_id, c.cell_key, c.model, c.model_hash, c.dataset, c.arch, "
            "c.criterion, c.loss, c.seed, c.target_reduction, c.flops_reduction, c.macs, "
            'c.params, g.grp AS "group", g.n, g.accuracy, g.accuracy_low, g.accuracy_high, '
            "g.balanced_accuracy, g.auroc, g.tpr, g.fpr, g.selection_rate "
            f"FROM cells c JOIN group_rows g ON g.cell_key = c.cell_key {where} "
            "ORDER BY c.sweep_id, c.criterion, c.loss, c.target_reduction, c.seed, c.cell_key, "
            "g.grp = 'overall', g.grp",
            params,
        )
        return df[LONG_COLUMNS]

    def cell_config(self, cell_key: str) -> dict:
        """The config stored with a cell."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT config_json FROM cells WHERE cell_key=?", (cell_key,)
            ).fetchone()
        return json.loads(row[0]) if row else {}

    def cells_of_model(self, model_hash: str, split_key: str | None = None) -> list[str]:
        """Every cell whose model has this content hash (and, when given, whose stored
        predictions are on ``split_key``), newest first: one model can be a cell of several
        sweeps (a dense baseline is one of every sweep that starts from it)."""
        sql = (
            "SELECT c.cell_key FROM cells c JOIN predictions p ON p.cell_key = c.cell_key "
            "WHERE c.model_hash = ?"
        )
        params: tuple = (model_hash,)
        if split_key is not None:
            sql += " AND p.split_key = ?"
            params += (split_key,)
        with self.connect() as conn:
            rows = conn.execute(sql + " ORDER BY c.created DESC, c.cell_key", params).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))

    def cell_groups(self, cell_key: str) -> pd.DataFrame:
        """One cell's per-group rows as stored (``group_metrics``' columns), "overall" last."""
        df = self.read_frame(
            "SELECT * FROM group_rows WHERE cell_key = ? ORDER BY grp = 'overall', grp",
            (cell_key,),
        ).rename(columns={"grp": "group"})
        return df[["group", *GROUP_METRIC_COLUMNS]]

    def predictions(self, cell_keys) -> dict[str, StoredPredictions]:
        """Stored per-sample predictions of the given cells (cells stored without any are absent).

        Parameters
        ----------
        cell_keys : iterable of str

        Returns
        -------
        dict
            ``{cell_key: StoredPredictions}``.
        """
        keys = list(dict.fromkeys(cell_keys))
        out: dict[str, StoredPredictions] = {}
        with self.connect() as conn:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[start : start + 500]
                rows = conn.execute(
                    f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions WHERE cell_key IN "
                    f"({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for row in rows:
                    out[row[0]] = decode_predictions(row)
        return out
