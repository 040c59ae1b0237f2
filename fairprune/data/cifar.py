"""CIFAR-10 from the python batches in ``cifar-10-batches-py/`` (nothing is downloaded).

Variants ``standard``, ``imbalanced`` (80% of training cats and dogs dropped) and ``shortcut`` (a
small magenta square on 98% of training dogs; an extra split ``test_square`` puts it on EVERY test
image, so a model that learnt the shortcut shows it as non-dog classes predicted "dog").
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import numpy._core.multiarray as np_multiarray
import torch
import torch.nn.functional as F

from fairprune.data.base import DatasetBundle, SplitData, check_groups, limit_splits
from fairprune.data.files import check_files, read_capped, stays_inside
from fairprune.errors import FairpruneError
from fairprune.utils import sha256_bytes, stable_hash

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


CIFAR_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}  # the official python release (as torchvision's CIFAR10 lists them)


MAX_BATCH_BYTES = 64 * 2**20  # an official batch is 31 MB


REFUSED_GLOBAL = "it asks to load {module}.{name}, which a CIFAR-10 batch never contains"


def _refuse(reason: str):
    raise pickle.UnpicklingError(reason)


def _reconstruct(cls, shape, dtype):
    # NumPy pickles an array as an empty (0,)-shaped one whose data comes with its state: a bigger
    # shape here could only allocate memory before anything is checked
    if cls is not np.ndarray or not isinstance(shape, tuple) or int(np.prod(shape)) > 1:
        _refuse("an array reconstruction other than NumPy's own")
    return np_multiarray._reconstruct(cls, shape, dtype)


def _dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:  # object arrays hold arbitrary Python objects
        _refuse("an object array")
    return dtype


def _frombuffer(buf, dtype, shape, order):
    # protocol 5's form of an array: a view on bytes already read, so it allocates nothing new
    if np.dtype(dtype).hasobject:
        _refuse("an object array")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _latin1(text, encoding="latin1"):
    # how protocol 2 writes Python 3 bytes: _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        _refuse("a text encoding other than latin-1")
    return text.encode("latin1")


# every global an official batch (or one written like it) may name, and what it becomes
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what the official CIFAR-10 files hold: dicts, lists, str, bytes, numbers
    and NumPy arrays of plain dtypes. Any other global (``os.system``, ``builtins.eval``…) is
    refused before it is looked up, so nothing in the file can run."""

    def find_class(self, module, name):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            _refuse(REFUSED_GLOBAL.format(module=module, name=name))
        return allowed


def _unpickle(path: Path) -> tuple[dict, bytes]:
    """One CIFAR-10 python batch (a pickle: the dataset's official format) and its raw bytes.

    The file must be a regular file of at most ``MAX_BATCH_BYTES``; it is read with
    ``_BatchUnpickler``, never with the stock unpickler, whether or not it matches the official
    MD5 (a match only says the data is the published one).
    """
    raw = read_capped(path, cap=MAX_BATCH_BYTES, what="CIFAR-10 batch")
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # nothing ran: whatever the refusal or damage, it is one line
        lines = str(exc).strip().splitlines()
        reason = lines[0][:120] if lines else type(exc).__name__
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason)) from None
    if not isinstance(obj, dict):
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason="not a dict"))
    return obj, raw


def _official(raw: bytes, name: str) -> bool:
    """Whether ``raw`` is the official release's file ``name`` (its published MD5)."""
    return hashlib.md5(raw, usedforsecurity=False).hexdigest() == CIFAR_MD5.get(name)


def _texts(values, path: Path, key: str) -> list[str]:
    """A list of bytes/str values as text (file names, class names)."""
    if not isinstance(values, list | tuple) or not all(isinstance(v, bytes | str) for v in values):
        reason = f"{key} is not a list of names"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]


def _cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray, list[str], bytes]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64, file names, raw bytes) of one batch."""
    obj, raw = _unpickle(path)
    missing = [repr(k) for k in (b"data", b"labels", b"filenames") if k not in obj]
    if missing:
        reason = f"missing key(s) {', '.join(missing)}"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    data = obj[b"data"]
    if not isinstance(data, np.ndarray):
        reason = f"data is a {type(data).__name__}, expected a uint8 array"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    labels = obj[b"labels"]
    if not isinstance(labels, list | tuple | np.ndarray) or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in labels
    ):
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason="labels are not integers"))
    bad = [i for i, v in enumerate(labels) if not 0 <= int(v) < num_classes]
    if bad:
        rows = ", ".join(str(r) for r in bad[:5])
        raise FairpruneError(ERR_CIFAR_LABELS.format(path=path, last=num_classes - 1, rows=rows))
    labels = np.asarray(labels, dtype=np.int64)
    names = _texts(obj[b"filenames"], path, "filenames")
    side2 = 3 * CIFAR_SIDE * CIFAR_SIDE
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != side2:
        reason = f"data is {data.dtype} {data.shape}, expected uint8 (N, {side2})"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    if not (len(labels) == len(names) == len(data)):
        reason = f"{len(data)} images, {len(labels)} labels, {len(names)} file names"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=path, reason=reason))
    # rows are 1024 red, 1024 green, 1024 blue values, each row-major: channel-first already
    return data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), labels, names, raw


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
    check_files(
        "CIFAR-10",
        folder,
        CIFAR_FILES,
        f"{CIFAR_DIR}/ with data_batch_1..5, test_batch and batches.meta (the python version)",
    )
    for name in CIFAR_FILES:  # symlinks may point anywhere inside root, never out of it
        stays_inside(folder / name, root)
    meta, meta_raw = _unpickle(folder / "batches.meta")
    if b"label_names" not in meta:
        reason = "missing key b'label_names'"
        raise FairpruneError(ERR_CIFAR_BATCH.format(path=folder / "batches.meta", reason=reason))
    class_names = _texts(meta[b"label_names"], folder / "batches.meta", "label_names")
    changed = {"standard": [], "imbalanced": ["cat", "dog"], "shortcut": ["dog"]}[variant]
    absent = [c for c in changed if c not in class_names]
    if absent:
        raise FairpruneError(ERR_CIFAR_CLASSES.format(missing=", ".join(absent), variant=variant))
    parts = [_cifar_batch(folder / n, len(class_names)) for n in CIFAR_TRAIN]
    x_train = np.concatenate([p[0] for p in parts])  # (50000, 3, 32, 32)
    y_train = np.concatenate([p[1] for p in parts])
    ids_train = [n for p in parts for n in p[2]]
    x_test, y_test, ids_test, test_raw = _cifar_batch(folder / "test_batch", len(class_names))
    raws = {**{n: p[3] for n, p in zip(CIFAR_TRAIN, parts, strict=True)},
            "test_batch": test_raw, "batches.meta": meta_raw}  # fmt: skip
    official = all(_official(raws[n], n) for n in CIFAR_FILES)
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
    splits = limit_splits(splits, limit, test_limit, seed)
    fingerprint = stable_hash(
        {
            "files": [sha256_bytes(raws[n]) for n in CIFAR_FILES],  # the bytes that were read
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
        description=(
            f"CIFAR-10 from {folder}: {notes}; groups are the ten classes. "
            + (
                "The files are the official release (MD5 checked)."
                if official
                else "The files are not the official release (their MD5s differ)."
            )
        ),
        fingerprint=f"cifar10-{variant}-" + fingerprint,
    )
