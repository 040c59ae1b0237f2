"""The Sparsity sweep page's form, as plain functions: the form's defaults (from the URL) and
the ``SweepConfig`` its fields make. No Streamlit here, so both are tested directly."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.errors import FairpruneError

ERR_SEEDS = "Seeds must be whole numbers separated by commas, e.g. 0,1,2."
LEVELS = (0.5, 0.75, 0.875, 0.9, 0.9375, 0.95, 0.96875, 0.97, 0.98, 0.99)
"""The FLOPs-reduction levels the form offers."""
DEFAULT_LEVELS = (0.5, 0.75, 0.9, 0.97)
DEFAULT_CRITERIA = ("l1",)
DEFAULT_LOSSES = ("ce", "pw")
DEFAULT_EPOCHS = 3


def query_list(
    params: Mapping[str, str], key: str, default: Sequence, cast: Callable = str
) -> list:
    """A comma-separated URL parameter as a list (``?levels=0.5,0.9``); ``default`` when it is
    absent or a value does not parse, so a shared link can set the form and a bad one cannot
    break the page."""
    if key not in params:
        return list(default)
    try:
        return [cast(v) for v in str(params[key]).split(",") if v]
    except ValueError:
        return list(default)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0, 1,2"`` → ``(0, 1, 2)``; ``ERR_SEEDS`` when a value is not a whole number."""
    try:
        return tuple(int(s) for s in text.replace(" ", "").split(",") if s)
    except ValueError:
        raise FairpruneError(ERR_SEEDS) from None


def build_sweep_config(
    *,
    dataset_choice: tuple[str, str | None, str | None, dict],
    dense_path: str,
    criteria: Sequence[str],
    losses: Sequence[str],
    levels: Sequence[float],
    seeds: str,
    min_weight: float,
    gamma: float,
    paired: bool,
    epochs: int,
) -> SweepConfig:
    """The sweep the form describes.

    Parameters
    ----------
    dataset_choice : (name, root, csv, options)
        The dataset chosen on the Dataset page.
    dense_path : str
        The dense checkpoint the sweep starts from.
    criteria, losses, levels
        The grid; levels are sorted.
    seeds : str
        Comma-separated whole numbers, as typed.
    min_weight, gamma : float
        The PW loss's settings.
    paired : bool
        PW criteria with PW losses only.
    epochs : int
        Fine-tuning epochs per cell.

    Returns
    -------
    SweepConfig
        Named "<dataset> <criteria> <losses>".

    Raises
    ------
    FairpruneError
        ``ERR_SEEDS``; a bad grid (nothing chosen, a bad level) is refused by
        ``jobs.start_sweep``, before anything runs.
    """
    name, root, csv, options = dataset_choice
    seed_list = parse_seeds(seeds)
    return SweepConfig(
        dataset=name, data_root=root, csv=csv, dataset_options=dict(options or {}),
        dense_model=str(dense_path), criteria=tuple(criteria), losses=tuple(losses),
        reductions=tuple(sorted(levels)), seeds=seed_list, min_weight=float(min_weight),
        gamma=float(gamma), paired=bool(paired), finetune=FinetuneConfig(epochs=int(epochs)),
        name=f"{name} {'/'.join(criteria)} {'/'.join(losses)}",
    )  # fmt: skip
