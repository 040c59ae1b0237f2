"""Reading the results store: sweeps, cells, their per-group rows and stored predictions, the
long export, and the version the dashboard's caches key on. ``ResultsStore`` gets its read
methods from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fairprune.metrics import METRIC_COLUMNS
from fairprune.sweep.store_predictions import (
    PREDICTION_COLUMNS,
    StoredPredictions,
    decode_predictions,
)
from fairprune.sweep.store_schema import GROUP_METRIC_COLUMNS, cells, group_rows, sweeps
from fairprune.sweep.store_schema import predictions as predictions_table

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


def _count(table: sa.Table, *where) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()


def _newest(*where) -> sa.ScalarSelect:
    return (
        sa.select(sa.func.coalesce(sa.func.max(cells.c.created), 0)).where(*where).scalar_subquery()
    )


def _in_sweep(column, sweep_id: str | None) -> tuple:
    """The WHERE clause of one sweep's rows; none for all sweeps."""
    return (column == sweep_id,) if sweep_id is not None else ()


class CellReads:
    """Reading sweeps and cells: a part of ``ResultsStore``, which provides ``connect()`` (one
    connection per operation) and ``read_frame(statement)``."""

    connect: Callable[[], AbstractContextManager[Connection]]
    read_frame: Callable[..., pd.DataFrame]

    def version(self, sweep_id: str | None = None) -> str:
        """Changes whenever a sweep or a cell is written or deleted (decisions do not count): the
        dashboard's caches of tables and intervals key on it, so a review decision does not
        recompute them. With ``sweep_id``, only that sweep's own writes count: what is cached for
        one sweep stays while another sweep's cells land."""
        if sweep_id is None:
            query = sa.select(_count(sweeps), _count(cells), _newest())
        else:
            mine = (cells.c.sweep_id == sweep_id,)
            query = sa.select(_count(sweeps, sweeps.c.sweep_id == sweep_id), _count(cells, *mine),
                              _newest(*mine))  # fmt: skip
        with self.connect() as conn:
            row = conn.execute(query).one()
        head = "" if sweep_id is None else f"{sweep_id}:"
        return f"{head}{row[0]}:{row[1]}:{float(row[2])!r}"

    def has_cell(self, cell_key: str) -> bool:
        """True once the cell has been written."""
        with self.connect() as conn:
            row = conn.execute(sa.select(cells.c.cell_key).where(cells.c.cell_key == cell_key))
            return row.first() is not None

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep: sweep_id, name, config_json, created, cells (how many written).

        Returns
        -------
        pandas.DataFrame
            Oldest sweep first.
        """
        s, c = sweeps.c, cells.c
        return self.read_frame(
            sa.select(s.sweep_id, s.name, s.config_json, s.created,
                      sa.func.count(c.cell_key).label("cells"))
            .select_from(sweeps.outerjoin(cells, c.sweep_id == s.sweep_id))
            .group_by(s.sweep_id, s.name, s.config_json, s.created)
            .order_by(s.created, s.sweep_id)
        )  # fmt: skip

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
        return self.read_frame(
            sa.select(cells)
            .where(*_in_sweep(cells.c.sweep_id, sweep_id))
            .order_by(cells.c.created, cells.c.cell_key)
        )

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
        g = group_rows.c
        df = self.read_frame(
            sa.select(group_rows)
            .join(cells, cells.c.cell_key == g.cell_key)
            .where(*_in_sweep(cells.c.sweep_id, sweep_id))
            .order_by(cells.c.created, g.cell_key, g.grp)
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
        c, g = cells.c, group_rows.c
        df = self.read_frame(
            sa.select(
                *(c[name] for name in LONG_COLUMNS[: LONG_COLUMNS.index("group")]),
                g.grp.label("group"),
                *(g[name] for name in GROUP_METRIC_COLUMNS),
            )
            .join(group_rows, g.cell_key == c.cell_key)
            .where(*_in_sweep(c.sweep_id, sweep_id))
            .order_by(c.sweep_id, c.criterion, c.loss, c.target_reduction, c.seed, c.cell_key,
                      g.grp == "overall", g.grp)
        )  # fmt: skip
        return df[LONG_COLUMNS]

    def cell_config(self, cell_key: str) -> dict:
        """The config stored with a cell."""
        with self.connect() as conn:
            text = conn.execute(
                sa.select(cells.c.config_json).where(cells.c.cell_key == cell_key)
            ).scalar()
        return json.loads(text) if text else {}

    def cells_of_model(self, model_hash: str, split_key: str | None = None) -> list[str]:
        """Every cell whose model has this content hash (and, when given, whose stored
        predictions are on ``split_key``), newest first: one model can be a cell of several
        sweeps (a dense baseline is one of every sweep that starts from it)."""
        c, p = cells.c, predictions_table.c
        query = sa.select(c.cell_key).join(predictions_table, p.cell_key == c.cell_key)
        query = query.where(c.model_hash == model_hash)
        if split_key is not None:
            query = query.where(p.split_key == split_key)
        with self.connect() as conn:
            rows = conn.execute(query.order_by(c.created.desc(), c.cell_key)).all()
        return list(dict.fromkeys(r[0] for r in rows))

    def cell_groups(self, cell_key: str) -> pd.DataFrame:
        """One cell's per-group rows as stored (``group_metrics``' columns), "overall" last."""
        g = group_rows.c
        df = self.read_frame(
            sa.select(group_rows).where(g.cell_key == cell_key).order_by(g.grp == "overall", g.grp)
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
                columns = [predictions_table.c[name] for name in PREDICTION_COLUMNS]
                rows = conn.execute(
                    sa.select(*columns).where(predictions_table.c.cell_key.in_(chunk))
                ).all()
                for row in rows:
                    out[row[0]] = decode_predictions(row)
        return out
