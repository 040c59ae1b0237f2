"""The sweep grid: cells, their stable ids, and validation of a sweep's settings.

Imports no Torch: pages read cells and criterion names from here. ``fairprune.loss`` and
``fairprune.utils`` (both import Torch) are imported by the functions that need them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from fairprune.config import SweepConfig
from fairprune.errors import FairpruneError
from fairprune.prune.registry import CRITERIA

UNSTRUCTURED = "unstructured"


"""Global unstructured magnitude pruning (a ``CRITERIA`` entry); the target is weight sparsity."""


ERR_UNKNOWN_CRITERION = "unknown pruning criterion {name!r}; choose one of: {choices}."


ERR_NO_DENSE_MODEL = "the sweep needs a dense model: pass its checkpoint path (dense_model)."


ERR_NO_SPLIT = "the dataset {dataset!r} has no {split!r} split; it has: {have}."


ERR_BAD_LEVEL = "FLOPs-reduction levels must be in (0, 1), got {value}; e.g. 0.5, 0.75, 0.9."


ERR_EMPTY_GRID = "the sweep grid is empty: choose at least one criterion, loss, level and seed."


def criterion_names() -> list[str]:
    """Every criterion a sweep accepts: the pruning table's keys (``unstructured`` among them)."""
    return [*CRITERIA] + ([] if UNSTRUCTURED in CRITERIA else [UNSTRUCTURED])


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    criterion: str  # pruning criterion
    loss: str  # fine-tuning loss
    target_reduction: float  # wanted FLOPs reduction (weight sparsity for unstructured criteria)
    seed: int  # seeds pruning and fine-tuning


def sweep_id_for(config: SweepConfig, dense_sha: str = "") -> str:
    """Stable id of a sweep: the same config on the same dense model gives the same id."""
    from fairprune.utils import stable_hash

    cfg = asdict(config)
    cfg.pop("name", None)
    return "sw-" + stable_hash({"config": cfg, "dense": dense_sha}, 12)


def cell_key_for(sweep_id: str, cell: Cell) -> str:
    """Stable key of one cell within a sweep."""
    from fairprune.utils import stable_hash

    return "c-" + stable_hash({"sweep": sweep_id, **asdict(cell)}, 16)


def iter_cells(config: SweepConfig) -> Iterator[Cell]:
    """The grid in run order: criterion → seed → level → loss (a pruned model serves every loss)."""
    for criterion in config.criteria:
        for seed in config.seeds:
            for level in config.reductions:
                for loss in config.losses:
                    if config.paired and criterion.startswith("pw_") != (loss != "ce"):
                        continue
                    yield Cell(criterion, loss, float(level), int(seed))


@dataclass(frozen=True)
class PruneUnit:
    """The unit of work: one pruned model (criterion, level, seed) fine-tuned with every loss."""

    criterion: str  # pruning criterion
    target_reduction: float  # wanted FLOPs reduction (weight sparsity for unstructured)
    seed: int  # seeds pruning and every fine-tuning run of the unit
    cells: tuple[Cell, ...]  # the unit's cells, one per loss, in run order


def prune_units(cells) -> list[PruneUnit]:
    """Group cells by (criterion, level, seed), keeping the grid's run order."""
    units: dict[tuple, list[Cell]] = {}
    for cell in cells:
        units.setdefault((cell.criterion, cell.target_reduction, cell.seed), []).append(cell)
    return [PruneUnit(c, r, s, tuple(v)) for (c, r, s), v in units.items()]


def validate_sweep(config: SweepConfig) -> None:
    """Raise FairpruneError on a grid that cannot run, before any work is done."""
    from fairprune.loss import get_loss

    if not config.dense_model:
        raise FairpruneError(ERR_NO_DENSE_MODEL)
    if not (config.criteria and config.losses and config.reductions and config.seeds):
        raise FairpruneError(ERR_EMPTY_GRID)
    names = criterion_names()
    for c in config.criteria:
        if c not in names:
            raise FairpruneError(ERR_UNKNOWN_CRITERION.format(name=c, choices=", ".join(names)))
    for loss in config.losses:
        get_loss(loss)
    for level in config.reductions:
        if not 0.0 < float(level) < 1.0:
            raise FairpruneError(ERR_BAD_LEVEL.format(value=level))
    if next(iter_cells(config), None) is None:  # e.g. paired with no matching loss
        raise FairpruneError(ERR_EMPTY_GRID)
