"""What the pages offer to choose from: which models, which bootstrap, said in one line when
there is nothing to choose. Plain functions of model records (no Streamlit), tested directly."""

from __future__ import annotations

NO_MODEL_FOR_DATASET = (
    "No model in the store was made for {title} ({others} made for other datasets: {names}); "
    "add one for it on the Models page, or choose their dataset on the Dataset page."
)
NO_MODELS = "No models for {title} in the store: run a sweep or add a model."
NO_DENSE_OR_PRUNED = "This page needs a dense and a pruned model for {title}: run a sweep first."
NO_PRUNED_CHILD = (
    "No pruned model in the store was made from {dense}: run a sweep from it on the Sparsity "
    "sweep page, or choose another dense model."
)
BOOT_CHOICES = (0, 50, 100, 200, 500)
"""Bootstrap resamples the Audit page offers (plus any a stored table was made with)."""
DEFAULT_N_BOOT = 200
"""The Audit page's bootstrap when no chosen model has a stored per-group table."""


def audit_records(records, *, dataset: str, num_classes: int, fits) -> tuple[list, list, str]:
    """The models the Audit page lists for a dataset.

    Parameters
    ----------
    records : list of ModelRecord
        Every checkpoint and ONNX classifier in the store.
    dataset : str
        The chosen dataset's registry key; a model made for another one is not listed (an ONNX
        file that names no dataset is).
    num_classes : int
        The dataset's classes; a model with another head is not listed.
    fits : callable
        ``fits(record) -> bool``: False for a model fixed to another input size.

    Returns
    -------
    (listed, other_size, other_datasets)
        The records to list; names of those left out for their input size; names of the
        models left out because they were made for another dataset.
    """
    same_head = [r for r in records if r.num_classes == num_classes]
    other_datasets = [r.name for r in same_head if r.dataset not in (dataset, "")]
    ours = [r for r in same_head if r.dataset in (dataset, "")]
    other_size = [r.name for r in ours if not fits(r)]
    return [r for r in ours if fits(r)], other_size, other_datasets


def no_models_message(title: str, other_datasets: list[str]) -> str:
    """One line for a dataset without models: naming the other datasets' models, if any."""
    if not other_datasets:
        return NO_MODELS.format(title=title)
    names = ", ".join(other_datasets[:3]) + (" …" if len(other_datasets) > 3 else "")
    return NO_MODEL_FOR_DATASET.format(title=title, others=len(other_datasets), names=names)


def bootstrap_choice(stored: list[list[int]]) -> tuple[list[int], int]:
    """The Audit page's bootstrap options and starting value.

    Parameters
    ----------
    stored : list of list of int
        For each chosen model, the resamples of the per-group tables its sweeps stored (newest
        first; empty: none stored).

    Returns
    -------
    (options, value)
        ``value`` is the newest count every chosen model with stored tables has (else the
        first such model's newest), so the page reads stored tables instead of running the
        bootstrap again; ``DEFAULT_N_BOOT`` when none has any. ``options`` are
        ``BOOT_CHOICES`` plus ``value``, sorted.
    """
    found = [boots for boots in stored if boots]
    shared = [b for b in (found[0] if found else []) if all(b in other for other in found[1:])]
    value = (shared or (found[0] if found else [DEFAULT_N_BOOT]))[0]
    return sorted({*BOOT_CHOICES, value}), value


def pruned_children(pruned, dense) -> list:
    """The pruned models made from ``dense`` (their manifest's parent is its content hash),
    most pruned first, then by loss."""
    children = [r for r in pruned if r.parent == dense.sha256]
    return sorted(children, key=lambda r: (-r.target_reduction, r.loss))
