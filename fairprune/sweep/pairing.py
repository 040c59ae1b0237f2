"""A *method* is a (pruning criterion, fine-tuning loss) pair; a comparison is a baseline method
against a method, both against the sweep's dense model.

Every comparison the product states — ``summary``, the Overview headline, the Sparsity sweep
findings, the report — is between two methods chosen here. By default it is the paper's pair when
the sweep holds it (Meyer & Wong: X + CE against PW-X + PW, PW in the pruning criterion and in the
fine-tuning), else CE against PW within one criterion; the criterion is the sweep's first *as
configured* (the order of ``SweepConfig.criteria``), never alphabetical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from fairprune.errors import FairpruneError

PW_PREFIX = "pw_"
BASE_LOSS, PW_LOSS = "ce", "pw"
ERR_METHOD_SYNTAX = "a method is CRITERION:LOSS, e.g. taylor:ce or pw_taylor:pw; got {value!r}."
ERR_NO_METHOD = "sweep {sweep} has no pruned cells of {method}; it has: {have}."
ERR_SAME_METHOD = "the baseline and the method are both {method}; choose two different methods."


@dataclass(frozen=True, order=True)
class Method:
    """A (criterion, loss) pair of a sweep, e.g. ``Method("pw_taylor", "pw")``."""

    criterion: str
    loss: str

    @property
    def key(self) -> str:
        """``criterion:loss``, as the CLI takes it (``--method pw_taylor:pw``)."""
        return f"{self.criterion}:{self.loss}"

    @property
    def label(self) -> str:
        """How a method is named on every page, the report and the CLI."""
        return method_label(self.criterion, self.loss)

    def as_dict(self) -> dict:
        return {"criterion": self.criterion, "loss": self.loss}


def method_label(criterion: str, loss: str) -> str:
    """How a method is named on every page, the report and the CLI: ``taylor + ce``."""
    return f"{criterion} + {loss}"


def parse_method(value) -> Method:
    """``"taylor:ce"`` (or a ``Method``) → ``Method``; a one-line error otherwise."""
    if isinstance(value, Method):
        return value
    text = str(value).strip()
    crit, sep, loss = text.partition(":")
    if not sep or not crit.strip() or not loss.strip() or ":" in loss:
        raise FairpruneError(ERR_METHOD_SYNTAX.format(value=text))
    return Method(crit.strip(), loss.strip())


def configured_criteria(config_json: str | None, present) -> list[str]:
    """The sweep's criteria in the order it was configured with, then any others present."""
    order: list[str] = []
    try:
        order = [str(c) for c in json.loads(config_json or "{}").get("criteria", [])]
    except (ValueError, TypeError, AttributeError):
        order = []
    present = [str(c) for c in present]
    seen = [c for c in order if c in present]
    return seen + [c for c in present if c not in seen]


def methods_of(cells: pd.DataFrame, config_json: str | None = None) -> list[Method]:
    """The pruned methods of a sweep's cells, criteria in configured order, CE first."""
    pruned = cells[cells["criterion"] != "dense"]
    pairs = {(str(c), str(lo)) for c, lo in zip(pruned["criterion"], pruned["loss"], strict=True)}
    criteria = configured_criteria(config_json, sorted({c for c, _ in pairs}))
    out = []
    for crit in criteria:
        losses = sorted(lo for c, lo in pairs if c == crit)
        losses.sort(key=lambda lo: (lo != BASE_LOSS, lo != PW_LOSS, lo))
        out += [Method(crit, lo) for lo in losses]
    return out


def paper_partner(baseline: Method, have: list[Method]) -> Method | None:
    """The method the paper compares ``baseline`` with: PW-X + PW for X + CE, else X + PW."""
    for cand in (
        Method(PW_PREFIX + baseline.criterion, PW_LOSS),
        Method(baseline.criterion, PW_LOSS),
    ):
        if cand in have and cand != baseline:
            return cand
    return None


def default_pair(
    have: list[Method], *, criterion: str | None = None
) -> tuple[Method | None, Method | None]:
    """The comparison a sweep is read by when nobody chose one.

    The paper's pair X + CE against PW-X + PW for the first configured criterion X that has
    both, else X + CE against X + PW; ``criterion`` restricts X. Without any CE cells the
    baseline is the first method and there is no method to compare it with.
    """
    bases = [m for m in have if m.loss == BASE_LOSS and not m.criterion.startswith(PW_PREFIX)]
    bases += [m for m in have if m.loss == BASE_LOSS and m not in bases]
    if criterion is not None:
        bases = [m for m in bases if m.criterion == criterion]
    for finder in (
        lambda b: Method(PW_PREFIX + b.criterion, PW_LOSS),
        lambda b: Method(b.criterion, PW_LOSS),
    ):
        for b in bases:
            if finder(b) in have:
                return b, finder(b)
    if bases:
        return bases[0], None
    mine = [m for m in have if criterion is None or m.criterion == criterion]
    return (mine[0] if mine else None), None


def resolve_pair(
    have: list[Method],
    sweep_id: str,
    *,
    baseline=None,
    method=None,
    criterion: str | None = None,
) -> tuple[Method | None, Method | None]:
    """The (baseline, method) to compare: the ones asked for (checked against the sweep), the
    paper's partner of an asked-for baseline, or :func:`default_pair`."""
    listing = ", ".join(m.key for m in have) or "none"
    asked = [parse_method(v) if v is not None else None for v in (baseline, method)]
    for m in asked:
        if m is not None and m not in have:
            raise FairpruneError(ERR_NO_METHOD.format(sweep=sweep_id, method=m.key, have=listing))
    b, m = asked
    if b is not None and m is not None and b == m:
        raise FairpruneError(ERR_SAME_METHOD.format(method=b.key))
    if b is None and m is None:
        return default_pair(have, criterion=criterion)
    if b is None:
        b = default_pair([x for x in have if x != m], criterion=criterion)[0]
    if m is None:
        m = paper_partner(b, have)
    return b, m


__all__ = [
    "BASE_LOSS",
    "Method",
    "PW_LOSS",
    "configured_criteria",
    "default_pair",
    "method_label",
    "methods_of",
    "paper_partner",
    "parse_method",
    "resolve_pair",
]
