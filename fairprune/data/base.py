"""The types every loader returns (SplitData, DatasetBundle) and the checks they share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fairprune.data.files import read_image
from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)


ERR_EMPTY_GROUP = "the {split} split has no samples of group {group!r}; check the group column."


IMAGE_MEMORY_BUDGET = 1_500_000_000  # bytes of decoded uint8 images kept in memory per split


class SplitData:
    """One split: labels and groups in memory; images in memory or read from files on demand.

    Parameters
    ----------
    labels, groups : array-like of int, shape (N,)
        Class index and group index per row.
    ids : list of str
        Stable per-row ids (file names, or generated ids).
    image_size : int
        Square side images are resized to.
    images : torch.Tensor, optional
        (N, 3, S, S) uint8, for in-memory datasets.
    paths : list of Path, optional
        One image file per row, read lazily (and kept decoded when they fit the memory budget).
    transform : callable, optional
        ``transform(uint8 (B,3,S,S) tensor, row_indices) -> uint8 tensor``, applied after loading
        (e.g. CIFAR's "shortcut" square).
    """

    def __init__(
        self,
        labels,
        groups,
        ids: list[str],
        image_size: int,
        *,
        images: torch.Tensor | None = None,
        paths: list[Path] | None = None,
        transform: Callable | None = None,
    ):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.groups = np.asarray(groups, dtype=np.int64)
        self.ids = list(ids)
        self.image_size = int(image_size)
        self.images = images
        self.paths = list(paths) if paths is not None else None
        self.transform = transform
        if images is None and paths is None:
            raise ValueError("SplitData needs images or paths")
        n = len(self.labels)
        if len(self.groups) != n or len(self.ids) != n:
            raise ValueError("labels, groups and ids must have the same length")

    def __len__(self) -> int:
        return len(self.labels)

    def _read(self, i: int) -> torch.Tensor:
        im = read_image(self.paths[i])  # checked: regular file, pixel cap, decodes fully
        im = im.resize((self.image_size, self.image_size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)  # (3, S, S)

    def _materialize(self) -> bool:
        """Decode every image once if they fit the memory budget; True when in memory."""
        if self.images is not None:
            return True
        if len(self) * 3 * self.image_size**2 > IMAGE_MEMORY_BUDGET:
            return False
        self.images = (
            torch.stack([self._read(i) for i in range(len(self))])
            if len(self)
            else (torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8))
        )
        return True

    def uint8(self, idx: np.ndarray) -> torch.Tensor:
        """(B, 3, S, S) uint8 images of rows ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._materialize():
            out = self.images[torch.from_numpy(idx)]
        else:
            out = torch.stack([self._read(int(i)) for i in idx])
        if self.transform is not None:
            out = self.transform(out, idx)
        return out

    def image(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 image of row ``i``, for display."""
        return self.uint8(np.array([i]))[0].permute(1, 2, 0).numpy()

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        augment: bool = False,
        indices=None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Iterate over the split in batches.

        Yields
        ------
        (x, y, g, idx)
            x (B, 3, S, S) float32 in [0, 1]; y (B,) int64 labels; g (B,) int64 groups;
            idx (B,) int64 row indices (to look up cached per-row values, e.g. dense outputs).
            Every row appears exactly once per pass; the order depends only on ``seed``.
        """
        order = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        rng = np.random.default_rng(seed)
        if shuffle:
            order = order[rng.permutation(len(order))]
        labels, groups = torch.from_numpy(self.labels), torch.from_numpy(self.groups)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = self.uint8(idx).float().div_(255.0)  # (B, 3, S, S)
            if augment:
                x = _augment(x, rng)
            t = torch.from_numpy(idx)
            yield x, labels[t], groups[t], t


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random horizontal and vertical flips per image, deterministic given ``rng``."""
    b = x.shape[0]
    h = torch.from_numpy(rng.random(b) < 0.5)
    v = torch.from_numpy(rng.random(b) < 0.5)
    x = x.clone()
    x[h] = x[h].flip(-1)
    x[v] = x[v].flip(-2)
    return x


@dataclass
class DatasetBundle:
    """A dataset ready to train and audit on."""

    name: str  # registry key, e.g. "synthderm"
    title: str  # human title, e.g. "SynthDerm (synthetic)"
    class_names: list[str]  # label index → name
    group_names: list[str]  # group index → name
    group_attribute: str  # what the groups are, e.g. "skin tone"
    input_size: int  # square side the images are resized to
    splits: dict[str, SplitData]  # "train", "val", "test", maybe more
    synthetic: bool = False  # generated, not real data
    description: str = ""  # one paragraph for the UI
    fingerprint: str = ""  # content hash of data + options; stable across loads
    skipped: dict = field(default_factory=dict)  # rows dropped while loading, by reason

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def summarize(bundle: DatasetBundle) -> pd.DataFrame:
    """Counts per split × group × label, with names (columns split, group, label, n)."""
    rows = []
    for split_name, split in bundle.splits.items():
        if len(split) == 0:
            continue
        df = pd.DataFrame({"g": split.groups, "y": split.labels})
        counts = df.groupby(["g", "y"]).size()
        for (g, y), n in counts.items():
            rows.append(
                {
                    "split": split_name,
                    "group": bundle.group_names[g],
                    "label": bundle.class_names[y],
                    "n": int(n),
                }
            )
    return pd.DataFrame(rows, columns=["split", "group", "label", "n"])


def subset(split: SplitData, n: int | None, seed: int = 0) -> SplitData:
    """A seeded random subset of at most ``n`` rows (the whole split when ``n`` is None)."""
    if n is None or n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).choice(len(split), size=int(n), replace=False))
    return SplitData(
        split.labels[idx],
        split.groups[idx],
        [split.ids[i] for i in idx],
        split.image_size,
        images=split.images[torch.from_numpy(idx)] if split.images is not None else None,
        paths=[split.paths[i] for i in idx] if split.paths is not None else None,
        transform=_reindexed(split.transform, idx) if split.transform else None,
    )


def _reindexed(transform, idx):
    def fn(images, rows):
        return transform(images, idx[np.asarray(rows)])

    return fn


def first_rows(mask, limit: int = 5) -> str:
    rows = np.flatnonzero(np.asarray(mask))[:limit]
    return ", ".join(str(int(r) + 2) for r in rows)  # +2: header line, 1-based file lines


def check_groups(splits: dict[str, SplitData], group_names: list[str], required=("test",)) -> None:
    """Every group must appear in each required split that exists."""
    for name in required:
        split = splits.get(name)
        if split is None:
            continue
        present = set(np.unique(split.groups).tolist())
        for gi, g in enumerate(group_names):
            if gi not in present:
                raise FairpruneError(ERR_EMPTY_GROUP.format(split=name, group=g))


def limit_splits(
    splits: dict[str, SplitData], limit, test_limit, seed: int
) -> dict[str, SplitData]:
    out = dict(splits)
    out["train"] = subset(out["train"], limit, seed)
    for name in out:
        if name.startswith("test"):
            out[name] = subset(out[name], test_limit, seed)  # same seed: same rows in each
    return out
