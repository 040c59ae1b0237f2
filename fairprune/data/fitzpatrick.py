"""Fitzpatrick17k: ``fitzpatrick17k.csv`` + ``images/<md5hash>.jpg`` (nothing is downloaded).

Three-class ``three_partition_label``; trains on skin types 1–2 and evaluates on every skin-type
group, with a seeded split saved beside the data so every run sees the same one.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from fairprune import paths as fp_paths
from fairprune.data.base import DatasetBundle, SplitData, check_groups, first_rows, limit_splits
from fairprune.data.csv_table import ERR_CSV_EMPTY_VALUES, ERR_CSV_NO_ROWS, read_table
from fairprune.data.files import (
    DEFAULT_VERIFY,
    check_files,
    check_listed_names,
    folder_listing,
    stays_inside,
    verify_count,
    verify_sample,
)
from fairprune.errors import FairpruneError
from fairprune.utils import sha256_bytes, sha256_file, stable_hash

log = logging.getLogger(__name__)


ERR_FITZ_COLUMNS = (
    "{path} lacks the column(s) {missing}; Fitzpatrick17k's CSV has md5hash, "
    "fitzpatrick_scale (or fitzpatrick) and three_partition_label."
)


ERR_FITZ_SKIN = (
    "{path}: skin type must be 1-6 or -1 (unknown) but row(s) {rows} hold {values}; "
    "fix or drop those rows."
)


ERR_FITZ_LABEL = (
    "{path}: unknown three_partition_label value(s) {values} in row(s) {rows}; "
    "use benign, malignant or non-neoplastic."
)


ERR_SPLIT_FILE = "{path} is not a fairprune split file ({reason}); delete it to make a new split."


FITZ_CSV = "fitzpatrick17k.csv"


FITZ_LABELS = ["benign", "malignant", "non-neoplastic"]


FITZ_GROUPS = ["light (1-2)", "medium (3-4)", "dark (5-6)"]


SKIN_COLUMNS = ("fitzpatrick_scale", "fitzpatrick")  # current name first, then the original


FITZ_LIGHT_TRAIN = 0.8  # share of types 1–2 used for training; the rest is held out


FITZ_VAL = 0.2  # share of the held-out images (all groups) used for validation; the rest: test


MAX_FITZ_CSV_BYTES = 64 * 2**20  # fitzpatrick17k.csv is about 4 MB


ERR_FITZ_FRACTIONS = (
    "light_train_fraction must be in (0, 1] and val_fraction in [0, 1); got {light} and {val}."
)


def fitzpatrick_assignment(
    groups, labels, seed: int = 0, light_train_fraction=FITZ_LIGHT_TRAIN, val_fraction=FITZ_VAL
) -> np.ndarray:
    """Seeded split: part of group 0 (light) trains; the rest of every group is val/test.

    Per (group, label) cell, shuffled: for group 0 the first ``round(n * light_train_fraction)``
    rows go to ``train``; of the remaining rows of any cell, the first
    ``round(m * val_fraction)`` go to ``val`` and the rest to ``test``.

    Returns
    -------
    np.ndarray of str, shape (N,)
        ``"train"``, ``"val"`` or ``"test"`` per row.
    """
    groups, labels = np.asarray(groups), np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.full(len(groups), "test", dtype=object)
    for g, y in sorted(set(zip(groups.tolist(), labels.tolist(), strict=True))):
        idx = np.flatnonzero((groups == g) & (labels == y))
        idx = idx[rng.permutation(len(idx))]
        if g == 0:
            n_train = int(round(len(idx) * light_train_fraction))
            out[idx[:n_train]] = "train"
            idx = idx[n_train:]
        out[idx[: int(round(len(idx) * val_fraction))]] = "val"
    return out


def _split_cache_dir(root: Path) -> Path:
    return fp_paths.data_dir() / "splits" / f"fitzpatrick17k-{stable_hash(str(root.resolve()))}"


def _write_split(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` to a new file and rename it into place.

    The rename replaces a name, never writes through it: a symlink planted at ``path`` (even a
    dangling one) cannot make fairprune create or change the file it points to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            frame.to_csv(f, index=False)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the split is shared like the data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _usable(path: Path) -> bool | None:
    """True: a regular file (not a symlink) to read; None: nothing there yet; False: leave it.

    A symlink, folder, pipe or device under the split file's name is neither read nor written.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def _read_split(path: Path, hashes: list[str]) -> np.ndarray | None:
    """The saved assignment aligned with ``hashes``; None when it covers other images."""
    saved = read_table(path, cap=MAX_FITZ_CSV_BYTES, message=ERR_SPLIT_FILE)
    if list(saved.columns) != ["md5hash", "split"]:
        raise FairpruneError(
            ERR_SPLIT_FILE.format(path=path, reason="columns must be md5hash,split")
        )
    bad = ~saved["split"].isin(["train", "val", "test"])
    if bad.any():
        reason = f"unknown split in row(s) {first_rows(bad)}"
        raise FairpruneError(ERR_SPLIT_FILE.format(path=path, reason=reason))
    mapping = dict(zip(saved["md5hash"], saved["split"], strict=True))
    if len(mapping) != len(hashes) or set(mapping) != set(hashes):
        return None
    return np.array([mapping[h] for h in hashes], dtype=object)


def _fitz_split(root, hashes, groups, labels, seed, light_train_fraction, val_fraction):
    """Load the saved split beside the data (or in the cache folder), or make and save it."""
    name = f"fairprune_split_seed{seed}"
    if (light_train_fraction, val_fraction) != (FITZ_LIGHT_TRAIN, FITZ_VAL):
        name += "_" + stable_hash([light_train_fraction, val_fraction])[:8]
    candidates = [root / f"{name}.csv", _split_cache_dir(root) / f"{name}.csv"]
    for path in list(candidates):
        usable = _usable(path)
        if usable is False:
            log.warning("%s is not a regular file (a symlink?); not using it", path)
            candidates.remove(path)
        elif usable:
            assignment = _read_split(path, hashes)
            if assignment is not None:
                return assignment, path
            log.warning("%s covers other images than those present; making a new split", path)
    assignment = fitzpatrick_assignment(groups, labels, seed, light_train_fraction, val_fraction)
    frame = pd.DataFrame({"md5hash": hashes, "split": assignment})
    for path in candidates:
        try:
            _write_split(path, frame)
            log.info("saved the Fitzpatrick17k split to %s", path)
            return assignment, path
        except OSError as exc:
            log.warning("cannot write %s (%s); trying the cache folder", path, exc)
    return assignment, None  # both places read-only: the split is still seeded and repeatable


def load_fitzpatrick17k(
    root,
    *,
    seed: int = 0,
    image_size: int = 128,
    light_train_fraction: float = FITZ_LIGHT_TRAIN,
    val_fraction: float = FITZ_VAL,
    verify: int | str = DEFAULT_VERIFY,
    limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetBundle:
    """Load Fitzpatrick17k: three-class diagnosis, trained on skin types 1–2.

    Rows whose skin type is -1 (unknown), repeated md5hash rows and rows whose image is missing
    are skipped and counted in ``bundle.skipped`` (and the description).

    Parameters
    ----------
    root : path
        Folder holding ``fitzpatrick17k.csv`` and ``images/<md5hash>.jpg``.
    seed : int, default 0
        Seeds the split; the split is saved as ``fairprune_split_seed<seed>.csv`` in ``root``
        (or, if ``root`` is read-only, in ``<data_dir>/splits/``) and reused on later loads.
    image_size : int, default 128
    light_train_fraction : float, default 0.8
        Share of types 1–2 used for training; the rest is held out so light skin is measured too.
    val_fraction : float, default 0.2
        Share of the held-out images of each group × label cell that goes to ``val``.
    verify : int or "all", default 64
        Images decoded (seeded sample) before returning.
    limit, test_limit : int, optional
        Keep a seeded subset of the training / test rows.

    Returns
    -------
    DatasetBundle
    """
    root = Path(root)
    check_files("Fitzpatrick17k", root, [FITZ_CSV, "images/"], f"{FITZ_CSV} and images/")
    if not (0 < light_train_fraction <= 1 and 0 <= val_fraction < 1):
        raise FairpruneError(
            ERR_FITZ_FRACTIONS.format(light=light_train_fraction, val=val_fraction)
        )
    verify_count(verify)
    csv_path = root / FITZ_CSV
    stays_inside(csv_path, root)
    df = read_table(csv_path, cap=MAX_FITZ_CSV_BYTES)
    if df.empty:
        raise FairpruneError(ERR_CSV_NO_ROWS.format(path=csv_path))
    skin_col = next((c for c in SKIN_COLUMNS if c in df.columns), None)
    missing = [c for c in ("md5hash", "three_partition_label") if c not in df.columns]
    if skin_col is None:
        missing.append(" or ".join(SKIN_COLUMNS))
    if missing:
        raise FairpruneError(ERR_FITZ_COLUMNS.format(path=csv_path, missing=", ".join(missing)))
    for col in ("md5hash", skin_col, "three_partition_label"):
        df[col] = df[col].str.strip()
        empty = df[col] == ""
        if empty.any():
            raise FairpruneError(
                ERR_CSV_EMPTY_VALUES.format(path=csv_path, column=col, rows=first_rows(empty))
            )
    skin = df[skin_col]
    bad = ~skin.isin([str(v) for v in (-1, 1, 2, 3, 4, 5, 6)])
    if bad.any():
        values = ", ".join(sorted(set(skin[bad]))[:5])
        raise FairpruneError(
            ERR_FITZ_SKIN.format(path=csv_path, rows=first_rows(bad), values=values)
        )
    label_col = df["three_partition_label"]
    bad = ~label_col.isin(FITZ_LABELS)
    if bad.any():
        values = ", ".join(sorted(set(label_col[bad]))[:5])
        raise FairpruneError(
            ERR_FITZ_LABEL.format(path=csv_path, values=values, rows=first_rows(bad))
        )
    skin_type = skin.astype(int).to_numpy()
    unknown = skin_type == -1
    duplicate = np.zeros(len(df), dtype=bool)  # a repeated image would leak across splits
    duplicate[~unknown] = df["md5hash"][~unknown].duplicated().to_numpy()
    stays_inside(root / "images", root)
    present, odd = folder_listing(root / "images", root)
    listed = [f"{h}.jpg" for h in df["md5hash"]]
    lines = [str(i + 2) for i in range(len(df))]  # +2: header line, 1-based file lines
    check_listed_names(listed, lines, odd, source=csv_path.name, root=root)
    no_image = ~np.array([n in present for n in listed], dtype=bool) & ~unknown & ~duplicate
    skipped = {
        "unknown skin type": int(unknown.sum()),
        "duplicate md5hash": int(duplicate.sum()),
        "missing image": int(no_image.sum()),
    }
    kept = df[~(unknown | duplicate | no_image)]
    hashes = kept["md5hash"].tolist()
    labels = kept["three_partition_label"].map(FITZ_LABELS.index).to_numpy(np.int64)
    groups = (skin_type[~(unknown | duplicate | no_image)] - 1) // 2  # 1-2→0, 3-4→1, 5-6→2
    assignment, split_path = _fitz_split(
        root, hashes, groups, labels, seed, light_train_fraction, val_fraction
    )
    img_paths = [root / "images" / f"{h}.jpg" for h in hashes]
    splits = {}
    for split_name in ("train", "val", "test"):
        idx = np.flatnonzero(assignment == split_name)
        if len(idx) == 0 and split_name == "val":
            continue
        splits[split_name] = SplitData(
            labels[idx],
            groups[idx],
            [hashes[i] for i in idx],
            image_size,
            paths=[img_paths[i] for i in idx],
        )
    check_groups(splits, FITZ_GROUPS)  # every skin-type group must be in the test split
    check_groups({"train": splits["train"]}, FITZ_GROUPS[:1], required=("train",))
    splits = limit_splits(splits, limit, test_limit, seed)
    verify_sample([p for s in splits.values() for p in s.paths], verify, seed)
    fingerprint = stable_hash(
        {
            "csv": sha256_file(csv_path),
            "split": sha256_bytes(
                ",".join(map(str, assignment)).encode() + ",".join(hashes).encode()
            ),
            "options": [image_size, seed, light_train_fraction, val_fraction, limit, test_limit],
        }
    )
    counts = ", ".join(f"{v} {k}" for k, v in skipped.items())
    where = split_path if split_path is not None else "nowhere (read-only folders)"
    return DatasetBundle(
        name="fitzpatrick17k",
        title="Fitzpatrick17k",
        class_names=list(FITZ_LABELS),
        group_names=list(FITZ_GROUPS),
        group_attribute="Fitzpatrick skin type",
        input_size=image_size,
        splits=splits,
        synthetic=False,
        description=(
            f"Fitzpatrick17k clinical images from {root}: three-class diagnosis, trained on skin "
            f"types 1-2 ({light_train_fraction:.0%} of them), evaluated on every skin-type group. "
            f"Skipped rows: {counts}. Split saved to {where}."
        ),
        fingerprint="fitzpatrick17k-" + fingerprint,
        skipped=skipped,
    )
