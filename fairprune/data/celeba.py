"""CelebA, read from the layout its publishers distribute (nothing is downloaded).

``img_align_celeba/*.jpg``, ``list_attr_celeba.txt``, ``list_eval_partition.txt``. Target
``Blond_Hair``, group ``Male`` by default; optional α/β subsampling of the training split.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from fairprune.data.base import DatasetBundle, SplitData, check_groups, limit_splits
from fairprune.data.files import (
    DEFAULT_VERIFY,
    ERR_IMAGES_MISSING,
    check_files,
    check_listed_names,
    folder_listing,
    read_capped,
    stays_inside,
    verify_count,
    verify_sample,
)
from fairprune.errors import FairpruneError
from fairprune.utils import sha256_file, stable_hash

log = logging.getLogger(__name__)


ERR_ALPHA_BETA = (
    "alpha and beta must both be positive numbers or both be None (no subsampling); "
    "got alpha={alpha}, beta={beta}."
)


ERR_CELL_TOO_SMALL = (
    "the training cell {cell} has {have} images but alpha={alpha}, beta={beta} ask for {need}; "
    "choose a smaller alpha or beta."
)


ERR_CELEBA_HEADER = (
    "{path}: line 1 must be the image count and line 2 the attribute names; "
    "use the original list_attr_celeba.txt."
)


ERR_CELEBA_COUNT = (
    "{path}: line 1 says {expected} images but {found} are listed; "
    "the file is truncated or corrupt, download it again."
)


ERR_CELEBA_ROWS = (
    "{path}: malformed line(s) {lines}; each needs an image name and {k} values 1 or -1."
)


ERR_CELEBA_ATTRIBUTE = "{path} has no attribute {attr!r}; choose one of: {choices}."


ERR_CELEBA_PARTITION = (
    "{path}: bad line(s) {lines}; each needs an image name and 0 (train), 1 (val) or 2 (test)."
)


ERR_CELEBA_MISMATCH = (
    "{partition} and {attrs} list different images ({count} differ, first: {first}); "
    "use both files of the same CelebA release."
)


def _ratio_ok(value) -> bool:
    """None (no subsampling) or a finite positive number."""
    if value is None:
        return True
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def _pretty(attr: str) -> str:
    return attr.replace("_", " ").lower()


def alpha_beta_subsample(
    labels,
    groups,
    alpha: float,
    beta: float,
    seed: int = 0,
    *,
    group_names=("group 0", "group 1"),
    class_names=("label 0", "label 1"),
) -> np.ndarray:
    """Row indices of an α/β-controlled subset of a binary-label, binary-group split.

    The smallest (group, label) cell is kept whole (n images); then α·n images of the same label
    in the other group, β·n of the other label in the same group and α·β·n of the remaining cell
    are drawn without replacement (seeded). Counts are rounded to the nearest integer.

    Parameters
    ----------
    labels, groups : array-like of int in {0, 1}, shape (N,)
    alpha, beta : float
        Group and label ratios, both > 0.
    seed : int, default 0
    group_names, class_names : pair of str
        Names used in the error message when a cell is too small.

    Returns
    -------
    np.ndarray
        Sorted int64 row indices of the kept images.
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    cells = [(g, y) for g in (0, 1) for y in (0, 1)]
    counts = {c: int(((groups == c[0]) & (labels == c[1])).sum()) for c in cells}
    g0, y0 = min(cells, key=lambda c: counts[c])  # ties: first in (group, label) order
    n = counts[(g0, y0)]
    want = {
        (g0, y0): n,
        (1 - g0, y0): int(round(alpha * n)),
        (g0, 1 - y0): int(round(beta * n)),
        (1 - g0, 1 - y0): int(round(alpha * beta * n)),
    }
    rng = np.random.default_rng(seed)
    keep = []
    for cell in cells:
        idx = np.flatnonzero((groups == cell[0]) & (labels == cell[1]))
        if want[cell] > len(idx):
            raise FairpruneError(
                ERR_CELL_TOO_SMALL.format(
                    cell=f"{group_names[cell[0]]} × {class_names[cell[1]]}",
                    have=len(idx),
                    alpha=alpha,
                    beta=beta,
                    need=want[cell],
                )
            )
        keep.append(rng.choice(idx, size=want[cell], replace=False))
    return np.sort(np.concatenate(keep)).astype(np.int64)


ERR_CELEBA_REPEATED = (
    "{path}: image {name} is listed on line(s) {lines}; each image once, use the original file."
)


ERR_CELEBA_NAMES = "target and group must be attribute names (text), got {target!r} and {group!r}."


CELEBA_EXPECTS = "img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt"


MAX_ATTR_BYTES = 128 * 2**20  # list_attr_celeba.txt is 26 MB; the partition file 2.8 MB


def _read_celeba_attrs(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, image names, (N, K) int8 values ±1) of ``list_attr_celeba.txt``."""
    text = read_capped(path, cap=MAX_ATTR_BYTES, what="CelebA list").decode(errors="replace")
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit() or not lines[1].split():
        raise FairpruneError(ERR_CELEBA_HEADER.format(path=path))
    names = lines[1].split()
    k = len(names)
    body = [(no, line.split()) for no, line in enumerate(lines[2:], start=3) if line.strip()]
    expected = int(lines[0].strip())
    if expected != len(body):
        raise FairpruneError(ERR_CELEBA_COUNT.format(path=path, expected=expected, found=len(body)))
    bad = [no for no, parts in body if len(parts) != k + 1]
    if not bad:
        values = np.array([parts[1:] for _, parts in body], dtype="<U2").reshape(len(body), k)
        ok = np.isin(values, ["1", "-1"]).all(axis=1)
        bad = [body[i][0] for i in np.flatnonzero(~ok)]
    if bad:
        lines_txt = ", ".join(str(no) for no in bad[:5])
        raise FairpruneError(ERR_CELEBA_ROWS.format(path=path, lines=lines_txt, k=k))
    values = np.where(values == "1", 1, -1).astype(np.int8)  # (N, K)
    images = [parts[0] for _, parts in body]
    if len(set(images)) != len(images):
        seen, name = set(), None
        for img in images:
            if img in seen:
                name = img
                break
            seen.add(img)
        lines_txt = ", ".join(str(no) for no, parts in body if parts[0] == name)
        raise FairpruneError(ERR_CELEBA_REPEATED.format(path=path, name=name, lines=lines_txt))
    return names, images, values


def _read_celeba_partition(path: Path) -> dict[str, int]:
    out, bad = {}, []
    text = read_capped(path, cap=MAX_ATTR_BYTES, what="CelebA list").decode(errors="replace")
    for no, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            bad.append(no)
            continue
        out[parts[0]] = int(parts[1])
    if bad:
        lines_txt = ", ".join(str(no) for no in bad[:5])
        raise FairpruneError(ERR_CELEBA_PARTITION.format(path=path, lines=lines_txt))
    return out


def load_celeba(
    root,
    *,
    seed: int = 0,
    image_size: int = 64,
    target: str = "Blond_Hair",
    group: str = "Male",
    alpha: float | None = None,
    beta: float | None = None,
    verify: int | str = DEFAULT_VERIFY,
    limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetBundle:
    """Load CelebA from its original files (no md5 check, nothing downloaded).

    Parameters
    ----------
    root : path
        Folder holding ``img_align_celeba/`` (or Kaggle's doubled ``img_align_celeba/
        img_align_celeba/``), ``list_attr_celeba.txt`` and ``list_eval_partition.txt``.
    seed : int, default 0
        Seeds the α/β subsampling, the verified sample and ``limit``.
    image_size : int, default 64
        Square side the aligned 178×218 faces are resized to.
    target, group : str
        Attribute names (as on line 2 of the attribute file) used as label and group.
    alpha, beta : float, optional
        α/β subsampling of the training split (see ``alpha_beta_subsample``); None: all images.
    verify : int or "all", default 64
        How many images (seeded sample) to decode before returning; every file's existence is
        always checked.
    limit, test_limit : int, optional
        Keep a seeded subset of the training / test rows.

    Returns
    -------
    DatasetBundle
        Splits ``train``, ``val``, ``test`` from ``list_eval_partition.txt``.
    """
    root = Path(root)
    check_files(
        "CelebA",
        root,
        ["img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt"],
        CELEBA_EXPECTS,
    )
    if (alpha is None) != (beta is None) or not all(_ratio_ok(v) for v in (alpha, beta)):
        raise FairpruneError(ERR_ALPHA_BETA.format(alpha=alpha, beta=beta))
    if not (isinstance(target, str) and isinstance(group, str)):
        raise FairpruneError(ERR_CELEBA_NAMES.format(target=target, group=group))
    verify_count(verify)
    attr_path, part_path = root / "list_attr_celeba.txt", root / "list_eval_partition.txt"
    for listing in (attr_path, part_path):
        stays_inside(listing, root)
    names, images, values = _read_celeba_attrs(attr_path)
    for attr in (target, group):
        if attr not in names:
            raise FairpruneError(
                ERR_CELEBA_ATTRIBUTE.format(path=attr_path, attr=attr, choices=", ".join(names))
            )
    partition = _read_celeba_partition(part_path)
    differ = sorted(set(images).symmetric_difference(partition))
    if differ:
        raise FairpruneError(
            ERR_CELEBA_MISMATCH.format(
                partition=part_path.name, attrs=attr_path.name, count=len(differ), first=differ[0]
            )
        )
    img_dir = root / "img_align_celeba"
    if (img_dir / "img_align_celeba").is_dir():  # the Kaggle archive nests the folder
        img_dir = img_dir / "img_align_celeba"
    stays_inside(img_dir, root)
    present, odd = folder_listing(img_dir, root)  # one listing: far faster than 200k stat calls
    lines = [str(i + 3) for i in range(len(images))]  # the attribute file's line numbers
    check_listed_names(images, lines, odd, source=attr_path.name, root=root)
    missing = [n for n in images if n not in present]
    if missing:
        raise FairpruneError(
            ERR_IMAGES_MISSING.format(
                count=len(missing), source=attr_path.name, root=img_dir, first=missing[0]
            )
        )
    group_names = (
        ["female", "male"] if group == "Male" else [f"not {_pretty(group)}", _pretty(group)]
    )
    class_names = [f"not {_pretty(target)}", _pretty(target)]
    labels = (values[:, names.index(target)] == 1).astype(np.int64)  # (N,)
    groups = (values[:, names.index(group)] == 1).astype(np.int64)  # (N,)
    part = np.array([partition[n] for n in images])
    splits = {}
    for code, split_name in enumerate(("train", "val", "test")):
        idx = np.flatnonzero(part == code)
        if split_name == "train" and alpha is not None:
            keep = alpha_beta_subsample(
                labels[idx], groups[idx], alpha, beta, seed,
                group_names=group_names, class_names=class_names,
            )  # fmt: skip
            idx = idx[keep]
        splits[split_name] = SplitData(
            labels[idx],
            groups[idx],
            [images[i] for i in idx],
            image_size,
            paths=[img_dir / images[i] for i in idx],
        )
    splits = {k: v for k, v in splits.items() if len(v) or k != "val"}
    check_groups(splits, group_names, required=("train", "test"))
    splits = limit_splits(splits, limit, test_limit, seed)
    verify_sample([p for s in splits.values() for p in s.paths], verify, seed)
    fingerprint = stable_hash(
        {
            "attrs": sha256_file(attr_path),
            "partition": sha256_file(part_path),
            "options": [image_size, target, group, alpha, beta, seed, limit, test_limit],
        }
    )
    ab = "" if alpha is None else f" Training split subsampled with alpha={alpha}, beta={beta}."
    return DatasetBundle(
        name="celeba",
        title="CelebA",
        class_names=class_names,
        group_names=group_names,
        group_attribute=group,
        input_size=image_size,
        splits=splits,
        synthetic=False,
        description=(
            f"CelebA faces from {root}: label {target}, groups by {group}, the official "
            f"train/val/test partition.{ab}"
        ),
        fingerprint="celeba-" + fingerprint,
    )
