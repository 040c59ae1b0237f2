"""Checking a loader's options (``--option KEY=VALUE``, the dashboard's fields) before loading.

The type of each option comes from the loader's own signature (its annotations, or the default's
type), so a new loader option is checked without an entry here; ``RANGES`` adds the sane bounds
that keep memory and meaning in check (an ``image_size`` of 40 000 would allocate terabytes).
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass

from fairprune.errors import FairpruneError

ERR_OPTION_TYPE = "the {name} dataset's option {option} must be {expected}, got {value}."


ERR_OPTION_RANGE = "the {name} dataset's option {option} must be {bounds}, got {value}."


ERR_SEED = "seed must be a whole number from 0 to {top}, got {value}."


ERR_TOO_MANY_PIXELS = (
    "the {name} dataset's {split} split would be {count:,} images of {size} x {size} px; "
    "generating it takes about {gb:.1f} GB of memory, over the {cap_gb:.1f} GB allowed: lower "
    "n_train, n_val, n_test (or limit) or image_size."
)


SEED_TOP = 2**32 - 1  # NumPy's legacy seeding takes 32 bits


MAX_GENERATED_PIXELS = 25_000_000  # images × side² of one generated split (6000 at 64 px fit)


GENERATION_BYTES_PER_PIXEL = 140  # SynthDerm's float32 rendering, measured: 6000 × 32² → 0.8 GB


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """A closed or half-open interval of allowed numbers."""

    low: float  # smallest allowed value (or just above it, when low_open)
    high: float  # largest allowed value (or just below it, when high_open)
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False  # high itself is not allowed

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def text(self) -> str:
        if self.high >= 1e9:  # a sanity cap nobody reaches: say only what matters
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        return (
            f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}"
            f"{')' if self.high_open else ']'}"
        )


_FRACTION = Range(0, 1, high_open=True)
_COUNT = Range(1, 10**9)


RANGES: dict[str, Range] = {
    "image_size": Range(8, 1024),  # px; 1024² × 3 bytes per image already
    "limit": _COUNT,
    "test_limit": _COUNT,
    "n_train": Range(1, 1_000_000),
    "n_val": Range(0, 1_000_000),
    "n_test": Range(1, 1_000_000),
    "val_fraction": _FRACTION,
    "test_fraction": _FRACTION,
    "drop_fraction": _FRACTION,
    "square_fraction": Range(0, 1),
    "light_train_fraction": Range(0, 1, low_open=True),
    "alpha": Range(0, 1e6, low_open=True),
    "beta": Range(0, 1e6, low_open=True),
    "difficulty": Range(0, 1),
    "label_noise": Range(0, 0.5),
    "train_proportions": Range(0, 1e6),  # each share; they need not sum to 1
    "lesion_darkening": Range(0, 1),
    "verify": Range(0, 10**9),
}
"""Bounds by option name, whichever loader has it; for sequences, bounds of each element."""


_POSITIVE_SUM = ("train_proportions",)  # options whose elements must not all be 0


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _finite_number(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class _Mismatch(Exception):
    """The value does not have the annotated type."""


def _coerce(value, ann):
    """``value`` as type ``ann`` (int, float, str, None, tuple[...], unions); else _Mismatch."""
    if ann is inspect.Parameter.empty or ann is typing.Any:
        return value
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        for arm in typing.get_args(ann):
            try:
                return _coerce(value, arm)
            except _Mismatch:
                continue
        raise _Mismatch
    if ann is type(None):
        if value is None:
            return None
        raise _Mismatch
    if ann is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if ann is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if ann is float:
        if _finite_number(value):
            return float(value)
        raise _Mismatch
    if ann is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if typing.get_origin(ann) is tuple:
        if not isinstance(value, list | tuple):
            raise _Mismatch
        arms = typing.get_args(ann)
        if len(arms) == 2 and arms[1] is Ellipsis:
            return tuple(_coerce(v, arms[0]) for v in value)
        if len(arms) != len(value):
            raise _Mismatch
        return tuple(_coerce(v, a) for v, a in zip(value, arms, strict=True))
    return value  # a type we do not know how to check: the loader checks it


def _describe(ann) -> str:
    """Words for a type annotation: "an integer or null", "a list of 3 numbers"."""
    if ann is inspect.Parameter.empty or ann is typing.Any:
        return "a value"
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        return " or ".join(_describe(a) for a in typing.get_args(ann))
    names = {int: "an integer", float: "a finite number", str: "text", bool: "true or false"}
    if ann is type(None):
        return "null"
    if ann in names:
        return names[ann]
    if typing.get_origin(ann) is tuple:
        arms = typing.get_args(ann)
        if len(arms) == 2 and arms[1] is Ellipsis:
            return f"a list of {_describe(arms[0]).removeprefix('an ').removeprefix('a ')}s"
        inner = {_describe(a) for a in arms}
        kind = inner.pop() if len(inner) == 1 else "values"
        kind = kind.removeprefix("an ").removeprefix("a ").replace("finite ", "")
        return f"a list of {len(arms)} {kind}s"
    return getattr(ann, "__name__", str(ann))


def _annotations(loader: Callable) -> dict[str, object]:
    """Keyword option → annotation (evaluated), or the default's type when not annotated."""
    out = {}
    for p in inspect.signature(loader, eval_str=True).parameters.values():
        if p.kind is not p.KEYWORD_ONLY:
            continue
        ann = p.annotation
        if ann is p.empty and p.default is not p.empty and p.default is not None:
            ann = type(p.default) if not isinstance(p.default, tuple) else tuple[typing.Any, ...]
        out[p.name] = ann
    return out


def _check_range(dataset: str, option: str, value) -> None:
    bounds = RANGES.get(option)
    if bounds is None or value is None or isinstance(value, str):
        return
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if _finite_number(v) and v not in bounds:
            raise FairpruneError(
                ERR_OPTION_RANGE.format(
                    name=dataset, option=option, bounds=bounds.text(), value=_show(value)
                )
            )
    if option in _POSITIVE_SUM and isinstance(value, tuple) and not sum(value) > 0:
        raise FairpruneError(
            ERR_OPTION_RANGE.format(
                name=dataset, option=option, bounds="shares that are not all 0", value=_show(value)
            )
        )


def check_seed(seed) -> int:
    """``seed`` if it is a whole number in [0, 2³² − 1]; one clear error otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_TOP:
        raise FairpruneError(ERR_SEED.format(top=SEED_TOP, value=_show(seed)))
    return seed


def check_options(dataset: str, loader: Callable | None, options: dict) -> dict:
    """Options checked against ``loader``'s signature and ``RANGES``; values coerced.

    Parameters
    ----------
    dataset : str
        The registry name, for messages.
    loader : callable or None
        The function that loads it (None: only ``RANGES`` apply).
    options : dict
        Keyword options as given (``--option`` values are JSON-decoded first, so ``64`` is an
        int and ``abc`` a string).

    Returns
    -------
    dict
        The options with ints as floats where a float is expected and lists as tuples.

    Raises
    ------
    FairpruneError
        The first option of the wrong type or out of range, or a generated dataset too big to
        hold in memory.
    """
    anns = _annotations(loader) if loader is not None else {}
    out = {}
    for option, value in options.items():
        ann = anns.get(option, inspect.Parameter.empty)
        try:
            value = _coerce(value, ann)
        except _Mismatch:
            raise FairpruneError(
                ERR_OPTION_TYPE.format(
                    name=dataset, option=option, expected=_describe(ann), value=_show(value)
                )
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise FairpruneError(
                ERR_OPTION_TYPE.format(
                    name=dataset, option=option, expected="a finite number", value=_show(value)
                )
            )
        _check_range(dataset, option, value)
        out[option] = value
    if loader is not None:
        _check_generated_size(dataset, loader, out)
    return out


def _check_generated_size(dataset: str, loader: Callable, options: dict) -> None:
    """Each split of a generated dataset (``n_train``, ``n_val``, ``n_test`` images of
    ``image_size``) must be small enough to render in memory; splits are rendered one by one."""
    params = inspect.signature(loader).parameters
    keys = ("n_train", "n_val", "n_test", "image_size")
    if not all(k in params for k in keys):
        return
    value = {k: options.get(k, params[k].default) for k in keys}
    if options.get("limit") is not None:
        value["n_train"] = min(value["n_train"], options["limit"])
    if options.get("test_limit") is not None:
        value["n_test"] = min(value["n_test"], options["test_limit"])
    side = value["image_size"]
    for split in ("train", "val", "test"):
        count = value[f"n_{split}"]
        if count * side**2 > MAX_GENERATED_PIXELS:
            raise FairpruneError(
                ERR_TOO_MANY_PIXELS.format(
                    name=dataset,
                    split=split,
                    count=count,
                    size=side,
                    gb=count * side**2 * GENERATION_BYTES_PER_PIXEL / 1e9,
                    cap_gb=MAX_GENERATED_PIXELS * GENERATION_BYTES_PER_PIXEL / 1e9,
                )
            )
