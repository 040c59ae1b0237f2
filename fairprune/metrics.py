"""Per-group fairness metrics in fairlearn's shape, computed by ``fairlearn.metrics.MetricFrame``.

Also the disparity that pruning adds relative to the dense model: Δg, its std over groups (the
FairGRAPE measure) and the maximum excess accuracy gap ψ (Hashemizadeh et al. 2023).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from fairprune.errors import FairpruneError

ERR_EMPTY = "no predictions to audit: the split is empty; check the dataset and its split."
ERR_LENGTH = "y_true has {n_true} rows but {what} has {n_other}; pass arrays of the same length."
ERR_MISSING_GROUP = (
    "{n} sample(s) have no group (missing or empty sensitive feature); give every sample a group "
    "or drop those samples."
)
ERR_RESERVED_GROUP = (
    'a group is named "overall", which is reserved for the whole split; rename that group.'
)
ERR_GROUP_MISMATCH = (
    "the dense and pruned tables have different groups ({missing}); audit both on the same split."
)
ERR_NO_OVERALL = (
    'the dense and pruned tables have no "overall" row; pass group_metrics output, not a subset.'
)
ERR_NO_GROUPS = 'the tables hold no group besides "overall"; audit a split with group labels.'
ERR_SCORE_COLUMNS = (
    "y_score has {got} columns but the task has {want} classes; pass one probability column per "
    "class (or P(positive class) alone for a binary task)."
)
ERR_CODE_RANGE = (
    "{what} index {code} is outside the dataset's {n} {names}; audit predictions made on this "
    "dataset."
)
ERR_INTERSECT_EMPTY = "intersect needs at least one column of group values."
ERR_INTERSECT_LENGTH = "intersect columns have different lengths ({lengths}); pass aligned columns."
METRIC_COLUMNS = [
    "group",
    "n",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "balanced_accuracy",
    "auroc",
    "tpr",
    "fpr",
    "selection_rate",
]
METRICS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "auroc": "AUROC (one-vs-rest for multiclass)",
    "tpr": "True positive rate (binary)",
    "fpr": "False positive rate (binary)",
    "selection_rate": "Selection rate (binary)",
}
"""Metric columns of ``group_metrics`` and their display names (the dashboard's selector)."""


def _auroc(y_true, y_score, *, labels) -> float:
    """AUROC that is NaN (not an error) where a group holds a single class.

    Binary: ``y_score`` is P(labels[1]) of shape (N,) or probabilities of shape (N, 2).
    Multiclass: ``y_score`` is (N, C) with column j the probability of ``labels[j]``; the
    result is the one-vs-rest macro average over the classes present in ``y_true`` (equal to
    scikit-learn's ``multi_class="ovr", average="macro"`` when every class is present, where
    scikit-learn itself would raise otherwise).
    """
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    y_score = np.asarray(y_score, dtype=float)
    if y_score.ndim == 1 or len(labels) <= 2:
        pos = y_score if y_score.ndim == 1 else y_score[:, -1]  # (N,) P(positive)
        return float(roc_auc_score(y_true == labels[-1], pos))
    column = {label: j for j, label in enumerate(labels)}
    scores = [roc_auc_score(y_true == c, y_score[:, column[c]]) for c in present]
    return float(np.mean(scores))


def _accuracy(y_true, y_pred) -> float:
    """Fraction correct: ``sklearn.metrics.accuracy_score`` without its input validation, which
    dominates the bootstrap's cost (a MetricFrame per replicate); equal values (tested)."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _balanced(y_true, y_pred) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y_true, y_pred))


def _named(fn, name: str, **kwargs):
    """A partial with a ``__name__`` (MetricFrame labels metrics by it)."""
    part = functools.partial(fn, **kwargs)
    part.__name__ = name  # type: ignore[attr-defined]
    return part


def group_metrics(
    y_true,
    y_pred,
    *,
    sensitive_features,
    y_score=None,
    n_boot: int = 200,
    ci: float = 0.95,
    random_state: int = 0,
    labels=None,
) -> pd.DataFrame:
    """Per-group metrics with bootstrap intervals on accuracy, through ``MetricFrame``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (N,)
        True and predicted class indices.
    sensitive_features : array-like of shape (N,)
        Group of each sample (names or codes); none may be missing or empty, and no group may
        be called ``"overall"``.
    y_score : array-like of shape (N,) or (N, C), optional
        Class probabilities for AUROC: (N,) is P(positive class) for binary tasks; (N, C) has
        column j for ``labels[j]`` (binary tasks use column 1). None leaves AUROC NaN.
    n_boot : int, default 200
        Bootstrap resamples for the intervals (``MetricFrame``'s ``n_boot``); 0 leaves the
        interval columns NaN.
    ci : float, default 0.95
        Central interval mass: quantiles ``(1 - ci) / 2`` and ``1 - (1 - ci) / 2`` of the
        bootstrap distribution (0.025 and 0.975 by default).
    random_state : int, default 0
        Seeds ``MetricFrame``'s bootstrap, so equal inputs give equal intervals.
    labels : sequence, optional
        All classes of the task, sorted; the last one of a binary task is the positive class.
        Defaults to ``range(C)`` for an (N, C) ``y_score``, else to the classes seen in
        ``y_true`` and ``y_pred`` (a lone 0 or 1 means the task is {0, 1}).

    Returns
    -------
    pandas.DataFrame
        One row per group in sorted order of the group values (``MetricFrame.by_group``'s
        order; integer codes sort numerically before becoming strings), then a row
        ``group == "overall"`` for all samples; columns ``METRIC_COLUMNS``. AUROC is NaN for a
        group holding a single class; TPR, FPR and selection rate are NaN for multiclass tasks.

    Raises
    ------
    FairpruneError
        ``ERR_EMPTY``, ``ERR_LENGTH``, ``ERR_MISSING_GROUP``, ``ERR_RESERVED_GROUP`` or
        ``ERR_SCORE_COLUMNS``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    sf = np.asarray(sensitive_features)
    if len(y_true) == 0:
        raise FairpruneError(ERR_EMPTY)
    score = None if y_score is None else np.asarray(y_score, dtype=float)
    others = [("y_pred", y_pred), ("sensitive_features", sf)]
    for what, arr in others + ([("y_score", score)] if score is not None else []):
        if len(arr) != len(y_true):
            raise FairpruneError(ERR_LENGTH.format(n_true=len(y_true), what=what, n_other=len(arr)))
    missing = int(sum(_is_missing(v) for v in sf.tolist()))
    if missing:
        raise FairpruneError(ERR_MISSING_GROUP.format(n=missing))
    if any(str(v) == "overall" for v in np.unique(sf.astype(str))):
        raise FairpruneError(ERR_RESERVED_GROUP)
    if labels is None and score is not None and score.ndim == 2:
        labels = range(score.shape[1])
    elif labels is None:
        labels = np.union1d(np.unique(y_true), np.unique(y_pred))
        if len(labels) == 1 and labels[0] in (0, 1):
            labels = [0, 1]  # a split where one class never shows up is still binary
    labels = list(labels)
    want = max(len(labels), 2)
    got = None if score is None else (1 if score.ndim == 1 else score.shape[1])
    if got is not None and got != want and not (got == 1 and want == 2):
        raise FairpruneError(ERR_SCORE_COLUMNS.format(got=got, want=want))
    with warnings.catch_warnings():
        # single-class groups are expected in small or intersectional audits
        warnings.simplefilter("ignore", UserWarning)
        return _group_metrics(y_true, y_pred, sf, score, n_boot, ci, random_state, labels)


def _is_missing(value) -> bool:
    """None, NaN or an empty/blank string: a sample without a group."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def _count(y_true, y_pred) -> int:
    return len(y_true)


def _group_metrics(y_true, y_pred, sf, score, n_boot, ci, random_state, labels):
    # fairlearn and scikit-learn cost ~1.4 s to import: the store and the pages that only read
    # METRIC_COLUMNS or compare stored tables (pruning_disparity) do not pay for them
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    binary = len(labels) <= 2
    metrics = {
        "n": _count,
        "accuracy": accuracy_score,
        "balanced_accuracy": _balanced,
    }
    if binary:
        pos = labels[-1]
        metrics["tpr"] = _named(true_positive_rate, "tpr", pos_label=pos)
        metrics["fpr"] = _named(false_positive_rate, "fpr", pos_label=pos)
        metrics["selection_rate"] = _named(selection_rate, "selection_rate", pos_label=pos)
    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sf)
    table = frame.by_group.copy()
    table.loc["overall"] = frame.overall
    if score is not None:
        auroc = MetricFrame(
            metrics=_named(_auroc, "auroc", labels=labels),
            y_true=y_true,
            # binary: P(positive) as one column (what _auroc reads), so fairlearn slices a 1-D
            # array instead of stacking a list of rows per group; multiclass: the rows
            y_pred=score if score.ndim == 1 else score[:, -1] if binary else list(score),
            sensitive_features=sf,
        )
        table["auroc"] = pd.concat([auroc.by_group, pd.Series({"overall": auroc.overall})])
    else:
        table["auroc"] = np.nan
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    if n_boot and n_boot > 0:
        boot = MetricFrame(
            metrics={"accuracy": _accuracy},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sf,
            n_boot=n_boot,
            ci_quantiles=[lo_q, hi_q],
            random_state=random_state,
        )
        low, high = boot.by_group_ci[0]["accuracy"], boot.by_group_ci[1]["accuracy"]
        table["accuracy_low"] = pd.concat(
            [low, pd.Series({"overall": boot.overall_ci[0]["accuracy"]})]
        )
        table["accuracy_high"] = pd.concat(
            [high, pd.Series({"overall": boot.overall_ci[1]["accuracy"]})]
        )
    else:
        table["accuracy_low"] = np.nan
        table["accuracy_high"] = np.nan
    for col in ("tpr", "fpr", "selection_rate"):
        if col not in table:
            table[col] = np.nan
    table.index.name = "group"
    out = table.reset_index()
    out["group"] = out["group"].astype(str)
    out["n"] = out["n"].astype(int)
    for col in METRIC_COLUMNS[2:]:
        out[col] = out[col].astype(float)
    return out[METRIC_COLUMNS]


def accuracy_gap(table: pd.DataFrame) -> float:
    """Max − min group accuracy, the ``overall`` row excluded.

    Parameters
    ----------
    table : pandas.DataFrame
        ``group_metrics`` output (columns ``group`` and ``accuracy`` at least).

    Returns
    -------
    float
        The gap in accuracy units (0–1); NaN when the table holds no group.
    """
    groups = table[table["group"] != "overall"]
    if groups.empty:
        return float("nan")
    return float(groups["accuracy"].max() - groups["accuracy"].min())


def intersect(*columns, sep: str = " × ") -> np.ndarray:
    """Element-wise intersection of group columns: ``("dark", "malignant") → "dark × malignant"``.

    Parameters
    ----------
    *columns : array-like of shape (N,)
        Group values (anything ``str()`` turns into a name), all of the same length.
    sep : str, default " × "
        Put between the parts.

    Returns
    -------
    numpy.ndarray of shape (N,), dtype object
        The intersectional group name of each sample.
    """
    if not columns:
        raise FairpruneError(ERR_INTERSECT_EMPTY)
    cols = [np.asarray(c).astype(str).astype(object) for c in columns]
    lengths = sorted({len(c) for c in cols})
    if len(lengths) > 1:
        raise FairpruneError(ERR_INTERSECT_LENGTH.format(lengths=", ".join(map(str, lengths))))
    out = cols[0]
    for c in cols[1:]:
        out = out + sep + c  # object arrays concatenate element-wise, any string length
    return out


def pruning_disparity(dense_table: pd.DataFrame, pruned_table: pd.DataFrame) -> dict:
    """How unequally pruning cost accuracy across groups.

    Parameters
    ----------
    dense_table, pruned_table : pandas.DataFrame
        ``group_metrics`` output for the dense and the pruned model on the same split; both
        need the same groups and an ``overall`` row.

    Returns
    -------
    dict
        ``delta`` (Series over groups in ``dense_table`` order, Δg = acc_dense(g) − acc_pruned(g);
        positive means the group lost accuracy), ``delta_overall`` (Δ on the whole split),
        ``std_delta`` (population standard deviation of Δg over groups, ``ddof=0``: the FairGRAPE
        measure), ``psi`` (Series, ψg = Δg − Δoverall), ``max_psi`` (max over groups of ψg, the
        excess accuracy gap of Hashemizadeh et al. 2023) and ``max_psi_group`` (its group).

    Raises
    ------
    FairpruneError
        ``ERR_GROUP_MISMATCH``, ``ERR_NO_OVERALL`` or ``ERR_NO_GROUPS``.
    """
    d = dense_table.set_index("group")["accuracy"].astype(float)
    p = pruned_table.set_index("group")["accuracy"].astype(float)
    if set(d.index) != set(p.index):
        missing = ", ".join(sorted(map(str, set(d.index) ^ set(p.index))))
        raise FairpruneError(ERR_GROUP_MISMATCH.format(missing=missing))
    if "overall" not in d.index:
        raise FairpruneError(ERR_NO_OVERALL)
    delta = d - p.reindex(d.index)
    delta_overall = float(delta["overall"])
    per_group = delta.drop("overall")
    if per_group.empty:
        raise FairpruneError(ERR_NO_GROUPS)
    psi = per_group - delta_overall
    return {
        "delta": per_group,
        "delta_overall": delta_overall,
        "std_delta": float(np.std(per_group.to_numpy(), ddof=0)),
        "psi": psi,
        "max_psi": float(psi.max()),
        "max_psi_group": str(psi.idxmax()),
    }


def audit(preds, bundle, *, intersectional: bool = False, n_boot: int = 200, random_state: int = 0):
    """``group_metrics`` for a model's predictions on a dataset split, with readable group names.

    Parameters
    ----------
    preds : Predictions
        ``y_true``, ``y_pred``, ``groups`` (indices into ``bundle.group_names``) and ``probs``.
    bundle : DatasetBundle
        Supplies ``group_names`` and ``class_names``.
    intersectional : bool, default False
        Groups become group × true label (e.g. "male × blond").
    n_boot : int, default 200
        Bootstrap resamples for the accuracy intervals; 0 leaves them NaN.
    random_state : int, default 0
        Seeds the bootstrap.

    Returns
    -------
    pandas.DataFrame
        See ``group_metrics``: groups by name in sorted order, then ``overall``.
    """
    groups = np.asarray(preds.groups)
    y_true = np.asarray(preds.y_true)
    _check_codes(groups, len(bundle.group_names), "group", "group_names")
    _check_codes(y_true, len(bundle.class_names), "label", "class_names")
    names = np.asarray(bundle.group_names, dtype=object)[groups]
    if intersectional:
        names = intersect(names, np.asarray(bundle.class_names, dtype=object)[y_true])
    probs = np.asarray(preds.probs)  # (N, C); single-logit models come as (N, 2) already
    score = probs[:, 1] if probs.ndim == 2 and probs.shape[1] == 2 else probs
    return group_metrics(
        y_true,
        preds.y_pred,
        sensitive_features=names,
        y_score=score,
        n_boot=n_boot,
        random_state=random_state,
        labels=list(range(len(bundle.class_names))),
    )


def _check_codes(codes: np.ndarray, n: int, what: str, names: str) -> None:
    """Integer codes must index the bundle's names (a negative index would silently wrap)."""
    if len(codes) and (codes.min() < 0 or codes.max() >= n):
        bad = int(codes.min() if codes.min() < 0 else codes.max())
        raise FairpruneError(ERR_CODE_RANGE.format(what=what, code=bad, n=n, names=names))
