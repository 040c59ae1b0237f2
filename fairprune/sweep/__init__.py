"""Sweeps: the criterion × loss × level × seed grid (``grid``), running it (``runner``) and the
SQLite results store every cell is written to (``results``).
"""

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
