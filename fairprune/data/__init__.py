"""Datasets: the name → loader table (``DATASETS``) and ``load_dataset``.

A loader validates everything before it returns (files, columns, labels, images, empty groups) and
raises one clear ``FairpruneError`` naming the first offending rows: nothing is half-loaded.

The table imports no Torch: ``DatasetBundle``, ``SplitData``, ``subset``, ``summarize`` (``base``)
and ``load_csv_dataset`` are resolved on first use (PEP 562), and loaders when they load.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fairprune.data.files import clip
from fairprune.data.options import check_options, check_seed
from fairprune.errors import FairpruneError
from fairprune.utils import lazy_exports

if TYPE_CHECKING:
    from fairprune.data.base import DatasetBundle, SplitData, subset, summarize
    from fairprune.data.csv_table import load_csv_dataset

# public names resolved on first use: name → module
_LAZY = {
    "DatasetBundle": "fairprune.data.base",
    "SplitData": "fairprune.data.base",
    "subset": "fairprune.data.base",
    "summarize": "fairprune.data.base",
    "load_csv_dataset": "fairprune.data.csv_table",
}

ERR_UNKNOWN_DATASET = "unknown dataset {name!r}; choose one of: {choices}."


ERR_UNKNOWN_OPTION = "the {name} dataset has no option {option!r}; its options are: {choices}."


ERR_NEEDS_ROOT = "the {name} dataset is read from a folder: pass its root (--root DIR)."


ERR_ROOT_MISSING = "dataset folder not found: {root}; pass the folder that holds {expects}."


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset loader."""

    factory: Callable[..., DatasetBundle]  # (root, *, csv, seed, image_size, **options)
    needs_root: bool  # reads a folder the user names
    help: str  # what it expects, for the UI and --help


def _synthderm(root=None, *, csv=None, seed=0, image_size=None, **options):
    from fairprune.data.synthderm import load_synthderm

    if image_size is not None:
        options["image_size"] = image_size
    return load_synthderm(seed=seed, **options)


# loaders of real datasets, imported on first use: module → function
_REAL_LOADERS = {
    "celeba": ("fairprune.data.celeba", "load_celeba"),
    "fitzpatrick17k": ("fairprune.data.fitzpatrick", "load_fitzpatrick17k"),
    "cifar10": ("fairprune.data.cifar", "load_cifar10"),
}


def _real_loader(name: str):
    module, function = _REAL_LOADERS[name]
    return getattr(importlib.import_module(module), function)


def _real(name):
    def factory(root=None, *, csv=None, seed=0, image_size=None, **options):
        fn = _real_loader(name)
        if image_size is not None:
            options["image_size"] = image_size
        return fn(root, seed=seed, **options)

    return factory


def _csv_factory(root=None, *, csv=None, seed=0, image_size=None, **options):
    from fairprune.data.csv_table import load_csv_dataset

    if image_size is not None:
        options["image_size"] = image_size
    return load_csv_dataset(root, csv, seed=seed, **options)


DATASETS: dict[str, DatasetSpec] = {
    "synthderm": DatasetSpec(_synthderm, False, "built-in synthetic dermatology demo (no files)"),
    "celeba": DatasetSpec(
        _real("celeba"),
        True,
        "img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt",
    ),
    "fitzpatrick17k": DatasetSpec(
        _real("fitzpatrick17k"), True, "fitzpatrick17k.csv and images/<md5hash>.jpg"
    ),
    "cifar10": DatasetSpec(_real("cifar10"), True, "cifar-10-batches-py/ (python batches)"),
    "csv": DatasetSpec(_csv_factory, True, "a CSV with path,label,group[,split] + image root"),
}


def load_dataset(
    name: str, root=None, *, csv=None, seed: int = 0, image_size=None, **options
) -> DatasetBundle:
    """Load a dataset by registry name.

    Parameters
    ----------
    name : str
        Key of ``DATASETS``.
    root : path, optional
        The folder holding a real dataset (not needed for ``synthderm``).
    csv : path, optional
        The CSV file for ``csv``.
    seed : int, default 0
        Seeds generated data and random splits.
    image_size : int, optional
        Square side images are resized to.
    **options
        Loader options (``variant``, ``alpha``, ``beta``, ``limit``…).

    Returns
    -------
    DatasetBundle
    """
    if name not in DATASETS:
        raise FairpruneError(ERR_UNKNOWN_DATASET.format(name=name, choices=", ".join(DATASETS)))
    spec = DATASETS[name]
    allowed = dataset_options(name)
    for key in options:
        if allowed is not None and key not in allowed:
            raise FairpruneError(
                ERR_UNKNOWN_OPTION.format(name=name, option=key, choices=", ".join(allowed))
            )
    seed = check_seed(seed)
    # types from the loader's signature, bounds from options.RANGES: before anything is read
    sized = {**options, "image_size": image_size} if image_size is not None else options
    options = check_options(name, _loader(name), sized)
    image_size = options.pop("image_size") if image_size is not None else None
    if spec.needs_root and not root:
        raise FairpruneError(ERR_NEEDS_ROOT.format(name=name))
    if spec.needs_root and not os.path.isdir(root):  # never raises, whatever the string
        raise FairpruneError(ERR_ROOT_MISSING.format(root=clip(root), expects=spec.help))
    from fairprune.utils import stable_hash

    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}  # hashable
    key = stable_hash({"options": options, "seed": seed, "size": image_size})
    return _cached_load(name, str(root) if root else None, str(csv) if csv else None, key, seed,
                        image_size, tuple(sorted(options.items(), key=lambda kv: kv[0])))  # fmt: skip


def _loader(name: str) -> Callable[..., DatasetBundle] | None:
    """The function that does the loading behind a built-in registry entry (None for others)."""
    if name == "synthderm":
        from fairprune.data.synthderm import load_synthderm

        return load_synthderm
    if name == "csv":
        from fairprune.data.csv_table import load_csv_dataset

        return load_csv_dataset
    return _real_loader(name) if name in _REAL_LOADERS else None


def dataset_options(name: str) -> list[str] | None:
    """Keyword options ``load_dataset(name, **options)`` accepts; None when not known."""
    loader = _loader(name)
    if loader is None:
        return None
    params = inspect.signature(loader).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("csv",)]


@functools.lru_cache(maxsize=8)
def _cached_load(name, root, csv, _key, seed, image_size, options):
    return DATASETS[name].factory(root, csv=csv, seed=seed, image_size=image_size, **dict(options))


__all__ = [
    "DATASETS",
    "DatasetBundle",
    "DatasetSpec",
    "SplitData",
    "dataset_options",
    "load_csv_dataset",
    "load_dataset",
    "subset",
    "summarize",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
