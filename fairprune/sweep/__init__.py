"""Sweeps: the criterion × loss × level × seed grid (``grid``), running it (``runner``) and the
SQLite results store every cell is written to (``results``).

Names are resolved on first use (PEP 562): a page that reads the store
(``fairprune.sweep.results``) does not import the runner, Torch and Torch-Pruning through this
``__init__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairprune.utils import lazy_exports

if TYPE_CHECKING:
    from fairprune.sweep.grid import (
        UNSTRUCTURED,
        Cell,
        cell_key_for,
        criterion_names,
        iter_cells,
        sweep_id_for,
        validate_sweep,
    )
    from fairprune.sweep.results import ResultsStore
    from fairprune.sweep.runner import run_sweep, summary_table

_EXPORTS: dict[str, str] = {
    "UNSTRUCTURED": "fairprune.sweep.grid",
    "Cell": "fairprune.sweep.grid",
    "ResultsStore": "fairprune.sweep.results",
    "cell_key_for": "fairprune.sweep.grid",
    "criterion_names": "fairprune.sweep.grid",
    "iter_cells": "fairprune.sweep.grid",
    "run_sweep": "fairprune.sweep.runner",
    "summary_table": "fairprune.sweep.runner",
    "sweep_id_for": "fairprune.sweep.grid",
    "validate_sweep": "fairprune.sweep.grid",
}

__all__ = [
    "UNSTRUCTURED",
    "Cell",
    "ResultsStore",
    "cell_key_for",
    "criterion_names",
    "iter_cells",
    "run_sweep",
    "summary_table",
    "sweep_id_for",
    "validate_sweep",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
