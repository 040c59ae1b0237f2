"""The generic CSV dataset: ``path,label,group[,split]`` rows + an image root."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fairprune.data.base import DatasetBundle, SplitData, check_groups, first_rows, subset
from fairprune.data.files import clip, listed_files, read_capped, verify_count, verify_images
from fairprune.errors import FairpruneError
from fairprune.utils import stable_hash

ERR_CSV_MISSING = "CSV file not found: {path}; pass --csv FILE with columns path,label,group."


ERR_CSV_UNREADABLE = "cannot read {path} as CSV ({reason}); save it as comma-separated text."


ERR_CSV_COLUMNS = "{path} lacks the column(s) {missing}; it needs path, label and {groups}."


ERR_CSV_EMPTY_VALUES = "{path}: empty {column} in row(s) {rows}; fill them or drop those rows."


ERR_BAD_SPLIT = "{path}: unknown split value(s) {values} in row(s) {rows}; use train, val or test."


ERR_EMPTY_SPLIT = "{source} yields an empty {split} split; check the split column or fractions."


ERR_NO_TEST_FRACTION = (
    "test_fraction={value:g} leaves no test split to audit; use a fraction above 0 (default 0.2)."
)


ERR_FEW_CLASSES = "{source} has a single label ({label!r}); a classifier needs at least two."


ERR_CSV_NO_ROWS = "{path} has no data rows; add one row per image (path,label,group)."


ERR_GROUP_COLUMNS = "group_columns must name one or more CSV columns, got {value!r}."


ERR_FRACTIONS = (
    "val_fraction + test_fraction must stay below 1 (got {val} + {test}); leave rows to train on."
)


MAX_CSV_BYTES = 256 * 2**20  # a CSV listing images; millions of rows fit


def read_table(
    path: Path, *, cap: int = MAX_CSV_BYTES, message: str = ERR_CSV_UNREADABLE
) -> pd.DataFrame:
    """A CSV as strings (no NA guessing), size-capped; ``message`` (path, reason) if not CSV."""
    raw = read_capped(path, cap=cap, what="CSV file")
    try:
        return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeError, OverflowError) as exc:  # ParserError, EmptyDataError…
        lines = str(exc).strip().splitlines()
        reason = lines[0][:120] if lines else type(exc).__name__
        raise FairpruneError(message.format(path=path, reason=reason)) from None


def load_csv_dataset(
    root,
    csv,
    *,
    seed: int = 0,
    image_size: int = 64,
    group_columns: str | tuple[str, ...] = ("group",),
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    verify: str | int = "all",
    limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetBundle:
    """A dataset described by a CSV: ``path,label,group`` (optional ``split``) + an image root.

    Parameters
    ----------
    root : path
        Folder the ``path`` column is relative to.
    csv : path
        The CSV file.
    group_columns : sequence of str, default ("group",)
        One or more sensitive-attribute columns; several form intersections ("a × b").
    val_fraction, test_fraction : float
        Seeded stratified split when the CSV has no ``split`` column.
    verify : "all" or int
        Decode every image (default) or a seeded sample of that many before returning.
    limit, test_limit : int, optional
        Keep a seeded subset of the training / test rows.

    Returns
    -------
    DatasetBundle
    """
    if not csv:
        raise FairpruneError(ERR_CSV_MISSING.format(path=csv))
    path = Path(csv)
    if not os.path.exists(path):  # never raises: a NUL byte or an over-long name is "missing"
        raise FairpruneError(ERR_CSV_MISSING.format(path=clip(path)))
    if isinstance(group_columns, str):
        group_columns = tuple(c.strip() for c in group_columns.split(",") if c.strip())
    if (
        not isinstance(group_columns, list | tuple)
        or not group_columns
        or not all(isinstance(c, str) and c.strip() for c in group_columns)
    ):
        raise FairpruneError(ERR_GROUP_COLUMNS.format(value=group_columns))
    group_columns = tuple(c.strip() for c in group_columns)
    if test_fraction <= 0:  # a dataset without a test split has nothing to audit
        raise FairpruneError(ERR_NO_TEST_FRACTION.format(value=test_fraction))
    if val_fraction + test_fraction >= 1:
        raise FairpruneError(ERR_FRACTIONS.format(val=val_fraction, test=test_fraction))
    sample = verify_count(verify)
    df = read_table(path)
    need = ["path", "label", *group_columns]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise FairpruneError(
            ERR_CSV_COLUMNS.format(
                path=path, missing=", ".join(missing), groups=", ".join(group_columns)
            )
        )
    if df.empty:
        raise FairpruneError(ERR_CSV_NO_ROWS.format(path=path))
    for col in dict.fromkeys(need):
        df[col] = df[col].str.strip()
        empty = df[col] == ""
        if empty.any():
            raise FairpruneError(
                ERR_CSV_EMPTY_VALUES.format(path=path, column=col, rows=first_rows(empty))
            )
    root = Path(root)
    # every row must lead (symlinks resolved) to a regular file inside root, each one only once
    lines = [str(i + 2) for i in range(len(df))]  # +2: header line, 1-based file lines
    paths = listed_files(root, df["path"].tolist(), source=path.name, rows=lines, unique=True)
    verify_images(paths, sample=sample, seed=seed)
    class_names = sorted(df["label"].unique(), key=_natural)
    if len(class_names) < 2:
        raise FairpruneError(ERR_FEW_CLASSES.format(source=path.name, label=class_names[0]))
    group_values = df[list(group_columns)].astype(str).agg(" × ".join, axis=1)
    group_names = sorted(group_values.unique(), key=_natural)
    labels = df["label"].map({c: i for i, c in enumerate(class_names)}).to_numpy()
    groups = group_values.map({g: i for i, g in enumerate(group_names)}).to_numpy()
    if "split" in df.columns:
        split_col = df["split"].str.strip().str.lower()
        bad = ~split_col.isin(["train", "val", "test"])
        if bad.any():
            values = ", ".join(sorted(set(split_col[bad]))[:5])
            raise FairpruneError(
                ERR_BAD_SPLIT.format(path=path, values=values, rows=first_rows(bad))
            )
        assignment = split_col.to_numpy()
    else:
        assignment = stratified_assignment(labels, groups, val_fraction, test_fraction, seed)
    splits = {}
    for name in ("train", "val", "test"):
        idx = np.flatnonzero(assignment == name)
        if len(idx) == 0 and name != "val":
            raise FairpruneError(ERR_EMPTY_SPLIT.format(source=path.name, split=name))
        if len(idx) == 0:
            continue
        splits[name] = SplitData(
            labels[idx], groups[idx], [df["path"].iloc[i] for i in idx], image_size,
            paths=[paths[i] for i in idx],
        )  # fmt: skip
    splits["train"] = subset(splits["train"], limit, seed)
    splits["test"] = subset(splits["test"], test_limit, seed)
    check_groups(splits, group_names)
    fp = stable_hash(
        {
            "csv": pd.util.hash_pandas_object(df, index=False).sum().item(),
            "size": image_size,
            "groups": list(group_columns),
            "seed": seed,
            "fractions": [val_fraction, test_fraction],
            "limit": [limit, test_limit],
        }  # fmt: skip
    )
    return DatasetBundle(
        name="csv",
        title=f"CSV dataset ({path.name})",
        class_names=[str(c) for c in class_names],
        group_names=[str(g) for g in group_names],
        group_attribute=" × ".join(group_columns),
        input_size=image_size,
        splits=splits,
        description=f"{len(df)} images listed in {path}, groups by {', '.join(group_columns)}.",
        fingerprint=fp,
    )


def _natural(value: str):
    text = str(value)
    digits = text[1:] if text.startswith("-") else text
    return (0, int(text)) if digits.isascii() and digits.isdigit() else (1, text)


def stratified_assignment(labels, groups, val_fraction, test_fraction, seed) -> np.ndarray:
    """Seeded split per (group, label) cell: each cell contributes its share to val and test."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    for key in sorted(set(zip(groups.tolist(), labels.tolist(), strict=True))):
        idx = np.flatnonzero((groups == key[0]) & (labels == key[1]))
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        if len(idx) >= 2 and n_test == 0 and test_fraction > 0:
            n_test = 1
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_val]] = "val"
        out[idx[n_test + n_val :]] = "train"
    return out
