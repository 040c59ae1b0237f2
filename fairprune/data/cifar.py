"""CIFAR-10 from the python batches in ``cifar-10-batches-py/`` (nothing is downloaded).

Variants ``standard``, ``imbalanced`` (80% of training cats and dogs dropped) and ``shortcut`` (a
small magenta square on 98% of training dogs; an extra split ``test_square`` puts it on EVERY test
image, so a model that learnt the shortcut shows it as non-dog classes predicted "dog").
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fairprune.data.base import DatasetBundle, SplitData, _limit, check_groups
from fairprune.data.files import _check_files
from fairprune.errors import FairpruneError
from fairprune.utils import sha256_file, stable_hash

ERR_CIFAR_VARIANT = "unknown CIFAR-10 variant {variant!r}; choose one of: {choices}."


ERR_CIFAR_BATCH = (
    "{path} is not a CIFAR-10 python batch ({reason}); "
    "download the python version (cifar-10-python.tar.gz) again."
)


ERR_CIFAR_LABELS = "{path}: label(s) outside 0-{last} at row(s) {rows}; download the file again."


ERR_CIFAR_CLASSES = (
    "batches.meta lacks the class(es) {missing} that the {variant} variant changes; "
    "use the original CIFAR-10 files."
)


CIFAR_DIR = "cifar-10-batches-py"


CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


CIFAR_FILES = [*CIFAR_TRAIN, "test_batch", "batches.meta"]


CIFAR_VARIANTS = ("standard", "imbalanced", "shortcut")


CIFAR_SIDE = 32


SQUARE_RGB = (255, 0, 255)  # magenta: rare in natural photos, so it is a pure shortcut


SQUARE_AT, SQUARE_SIZE = 2, 4  # top-left corner and side of the square, in 32-px pixels


def _unpickle(path: Path) -> tuple[dict, bytes]:
    """One CIFAR-10 python batch (a pickle: the dataset's official format) and its raw bytes."""
    # pickle can run code: only the seven files of the official release are ever unpickled
    if path.name not in CIFAR_FILES:
        raise ValueError(f"refusing to unpickle {path}: not a CIFAR-10 batch file name")
    raw = path.read_bytes()
    try:
        obj = pickle.loads(raw, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=exc)) from None
    if not isinstance(obj, dict):
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason="not a dict"))
    return obj, raw


def _cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64, file names) of one batch, validated."""
    obj, _ = _unpickle(path)
    missing = [repr(k) for k in (b"data", b"labels", b"filenames") if k not in obj]
    if missing:
        reason = f"missing key(s) {', '.join(missing)}"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    data = np.asarray(obj[b"data"])
    labels = np.asarray(obj[b"labels"], dtype=np.int64)
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in obj[b"filenames"]]
    side2 = 3 * CIFAR_SIDE * CIFAR_SIDE
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != side2:
        reason = f"data is {data.dtype} {data.shape}, expected uint8 (N, {side2})"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    if not (len(labels) == len(names) == len(data)):
        reason = f"{len(data)} images, {len(labels)} labels, {len(names)} file names"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        rows = ", ".join(str(int(r)) for r in np.flatnonzero(bad)[:5])
        raise FairpruneError(ERR_CIFAR_LABELS.format(path=path, last=num_classes - 1, rows=rows))
    # rows are 1024 red, 1024 green, 1024 blue values, each row-major: channel-first already
    return data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), labels, names


class _CifarView:
    """Batch transform: paint the shortcut square on marked rows, then resize (B, 3, S, S)."""

    def __init__(self, squared: np.ndarray | None, size: int):
        self.squared = squared  # (N,) bool per row of the split, or None
        self.size = size

    def __call__(self, images: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        # images (B, 3, 32, 32) uint8 → (B, 3, S, S) uint8
        if self.squared is not None:
            mark = torch.from_numpy(self.squared[np.asarray(rows)])
            if mark.any():
                images = images.clone()
                a, b = SQUARE_AT, SQUARE_AT + SQUARE_SIZE
                colour = torch.tensor(SQUARE_RGB, dtype=torch.uint8)[:, None, None]
                images[mark, :, a:b, a:b] = colour
        if self.size != CIFAR_SIDE:
            x = F.interpolate(images.float(), size=(self.size, self.size), mode="bilinear")
            images = x.round_().clamp_(0, 255).to(torch.uint8)
        return images


def load_cifar10(
    root,
    *,
    seed: int = 0,
    variant: str = "standard",
    image_size: int = CIFAR_SIDE,
    drop_fraction: float = 0.8,
    square_fraction: float = 0.98,
    limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetBundle:
    """Load CIFAR-10 from the python batches; groups are the classes.

    Parameters
    ----------
    root : path
        Folder holding ``cifar-10-batches-py/`` (or that folder itself).
    seed : int, default 0
        Seeds which images are dropped / get the square, and ``limit``.
    variant : {"standard", "imbalanced", "shortcut"}
        ``imbalanced`` drops ``drop_fraction`` of the training cats and dogs; ``shortcut`` puts a
        magenta square on ``square_fraction`` of the training dogs and adds a split
        ``test_square``: the test images, every one with the square.
    image_size : int, default 32
        Images stay 32 px in memory and are resized per batch.
    limit, test_limit : int, optional
        Keep a seeded subset of the training / test rows (``test_square`` keeps the same rows).

    Returns
    -------
    DatasetBundle
    """
    if variant not in CIFAR_VARIANTS:
        raise FairpruneError(
            ERR_CIFAR_VARIANT.format(variant=variant, choices=", ".join(CIFAR_VARIANTS))
        )
    root = Path(root)
    folder = root / CIFAR_DIR if (root / CIFAR_DIR).is_dir() else root
    _check_files(
        "CIFAR-10",
        folder,
        CIFAR_FILES,
        f"{CIFAR_DIR}/ with data_batch_1..5, test_batch and batches.meta (the python version)",
    )
    meta, _ = _unpickle(folder / "batches.meta")
    if b"label_names" not in meta:
        reason = "missing key b'label_names'"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=folder / "batches.meta", reason=reason))
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]
    changed = {"standard": [], "imbalanced": ["cat", "dog"], "shortcut": ["dog"]}[variant]
    absent = [c for c in changed if c not in class_names]
    if absent:
        raise FairpruneError(ERR_CIFAR_CLASSES.format(missing=", ".join(absent), variant=variant))
    parts = [_cifar_batch(folder / n, len(class_names)) for n in CIFAR_TRAIN]
    x_train = np.concatenate([p[0] for p in parts])  # (50000, 3, 32, 32)
    y_train = np.concatenate([p[1] for p in parts])
    ids_train = [n for p in parts for n in p[2]]
    x_test, y_test, ids_test = _cifar_batch(folder / "test_batch", len(class_names))
    rng = np.random.default_rng([seed, 10])
    keep = np.ones(len(y_train), dtype=bool)
    squared = None
    if variant == "imbalanced":
        for c in changed:
            idx = np.flatnonzero(y_train == class_names.index(c))
            keep[rng.choice(idx, size=int(round(drop_fraction * len(idx))), replace=False)] = False
    if variant == "shortcut":
        idx = np.flatnonzero(y_train == class_names.index("dog"))
        squared = np.zeros(len(y_train), dtype=bool)
        squared[rng.choice(idx, size=int(round(square_fraction * len(idx))), replace=False)] = True
        squared = squared[keep]
    kept = np.flatnonzero(keep)
    images_train = torch.from_numpy(np.ascontiguousarray(x_train[kept]))
    images_test = torch.from_numpy(np.ascontiguousarray(x_test))
    splits = {
        "train": SplitData(
            y_train[kept],
            y_train[kept],
            [ids_train[i] for i in kept],
            image_size,
            images=images_train,
            transform=_CifarView(squared, image_size),
        ),
        "test": SplitData(
            y_test,
            y_test,
            ids_test,
            image_size,
            images=images_test,
            transform=_CifarView(None, image_size),
        ),  # fmt: skip
    }
    if variant == "shortcut":
        splits["test_square"] = SplitData(
            y_test, y_test, ids_test, image_size, images=images_test,
            transform=_CifarView(np.ones(len(y_test), dtype=bool), image_size),
        )  # fmt: skip
    check_groups(splits, class_names, required=("train", "test"))
    splits = _limit(splits, limit, test_limit, seed)
    fingerprint = stable_hash(
        {
            "files": [sha256_file(folder / n) for n in CIFAR_FILES],
            "options": [
                variant,
                image_size,
                seed,
                drop_fraction,
                square_fraction,
                limit,
                test_limit,
            ],
        }  # fmt: skip
    )
    notes = {
        "standard": "the standard training set",
        "imbalanced": f"{drop_fraction:.0%} of the training cats and dogs dropped",
        "shortcut": (
            f"a magenta square on {square_fraction:.0%} of the training dogs; split test_square "
            "has the square on every test image"
        ),
    }[variant]
    return DatasetBundle(
        name="cifar10",
        title=f"CIFAR-10 ({variant})",
        class_names=class_names,
        group_names=list(class_names),
        group_attribute="class",
        input_size=image_size,
        splits=splits,
        synthetic=False,
        description=f"CIFAR-10 from {folder}: {notes}; groups are the ten classes.",
        fingerprint=f"cifar10-{variant}-" + fingerprint,
    )
