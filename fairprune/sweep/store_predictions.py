"""How the results store keeps a cell's per-sample predictions: one row of the ``predictions``
table, the arrays as raw little-endian bytes of a fixed dtype (compact, no pickle)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from fairprune.outcomes import Outcomes

_CODE_DTYPE = np.dtype("<i2")  # labels, predictions and group codes (< 32768 classes/groups)
_PROB_DTYPE = np.dtype("<f2")  # class probabilities, 3 significant digits: enough for AUROC
PREDICTION_COLUMNS = [
    "cell_key", "split", "n", "num_classes", "split_key", "group_names", "class_names",
    "y_true", "y_pred", "groups", "probs",
]  # fmt: skip
"""The columns of the ``predictions`` table, in the order of ``encode_predictions``' row."""


@dataclass(frozen=True)
class StoredPredictions(Outcomes):
    """A cell's per-sample predictions, as kept in the store (row-aligned with the split)."""

    cell_key: str
    split: str  # the split they were made on
    split_key: str  # dataset fingerprint + split: equal keys mean the same rows in the same order
    y_true: np.ndarray  # (N,) int true class
    y_pred: np.ndarray  # (N,) int predicted class
    groups: np.ndarray  # (N,) int group code, an index into group_names
    probs: np.ndarray  # (N, C) float32 class probabilities (stored as float16)
    group_names: list[str]
    class_names: list[str]


def _codes(values, what: str) -> bytes:
    arr = np.asarray(values)
    if len(arr) and (arr.min() < 0 or arr.max() > np.iinfo(_CODE_DTYPE).max):
        raise ValueError(f"{what} codes must be in 0..32767")
    return arr.astype(_CODE_DTYPE).tobytes()


def encode_predictions(cell_key: str, split: str, predictions, group_names, class_names) -> tuple:
    """One ``predictions`` row (``PREDICTION_COLUMNS`` order) for a cell's predictions.

    Parameters
    ----------
    cell_key, split : str
    predictions : Predictions
        Anything with ``y_true``, ``y_pred``, ``groups`` (N,), ``probs`` (N, C) and optionally
        ``split_key``.
    group_names, class_names : list of str
        Names of the group and class codes.

    Returns
    -------
    tuple
        The row to insert, in ``PREDICTION_COLUMNS`` order.

    Raises
    ------
    ValueError
        A label, prediction or group code outside 0..32767.
    """
    probs = np.asarray(predictions.probs, dtype=np.float32)  # (N, C)
    return (
        cell_key,
        split,
        len(predictions.y_true),
        probs.shape[1],
        str(getattr(predictions, "split_key", "") or ""),
        json.dumps([str(g) for g in group_names]),
        json.dumps([str(c) for c in class_names]),
        _codes(predictions.y_true, "label"),
        _codes(predictions.y_pred, "prediction"),
        _codes(predictions.groups, "group"),
        probs.astype(_PROB_DTYPE).tobytes(),
    )


def decode_predictions(row) -> StoredPredictions:
    """A ``predictions`` row (``PREDICTION_COLUMNS`` order) back as arrays.

    Parameters
    ----------
    row : sequence
        As selected with ``PREDICTION_COLUMNS``.

    Returns
    -------
    StoredPredictions
        Codes as int64, probabilities as float32.
    """
    key, split, n, k, split_key, gnames, cnames, yt, yp, gr, pr = row
    return StoredPredictions(
        cell_key=key,
        split=split,
        split_key=split_key,
        y_true=np.frombuffer(yt, _CODE_DTYPE, count=n).astype(np.int64),
        y_pred=np.frombuffer(yp, _CODE_DTYPE, count=n).astype(np.int64),
        groups=np.frombuffer(gr, _CODE_DTYPE, count=n).astype(np.int64),
        probs=np.frombuffer(pr, _PROB_DTYPE, count=n * k).astype(np.float32).reshape(n, k),
        group_names=json.loads(gnames),
        class_names=json.loads(cnames),
    )
