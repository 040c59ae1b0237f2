"""A checkpoint's JSON manifest (``ModelRecord``): its schema, parsing and the store's error messages."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from fairprune.errors import FairpruneError
from fairprune.paths import regular_file_size

FORMAT_VERSION = 1


# ONE metadata key: safetensors writes a multi-key metadata map in random order, which would
# give the same weights a different content hash on every save
SAFETENSORS_METADATA = {"format": f"fairprune-{FORMAT_VERSION}"}


ERR_NOT_FOUND = "model file not found: {path}; check the path or the models folder."


ERR_EXTENSION = (
    "{path}: unknown model file type; expected .safetensors/.json (fairprune) or a .pt/.pth "
    "state dict."
)


ERR_NO_MANIFEST = "{path}: no manifest {manifest} beside the weights; save models with fairprune."


ERR_NO_WEIGHTS = "{path}: no weights file {weights} beside the manifest."


ERR_BAD_MANIFEST = "{path}: the manifest is not valid fairprune JSON ({reason}); re-save the model."


ERR_HASH = (
    "{path}: the weights do not match the manifest's hash; the file was changed or truncated, "
    "re-save or re-download it."
)


ERR_CORRUPT = (
    "{path}: not a readable safetensors file ({reason}); the file is corrupt or truncated."
)


ERR_CORRUPT_PT = "{path}: not a readable PyTorch file ({reason}); the file is corrupt or truncated."


ERR_PICKLE_REFUSED = (
    "{path}: refused to load: it is not a plain state dict of tensors (weights_only=True rejected "
    "it; nothing was executed); export model.state_dict() and try again."
)


ERR_NOT_STATE_DICT = (
    "{path}: expected a state dict (name → tensor), found {found}; export model.state_dict()."
)


ERR_NEED_ARCH = "{path}: a .pt/.pth state dict needs its architecture; choose one (--arch)."


ERR_SHAPES = (
    "{path}: the weights do not fit {arch}: {detail}; choose the architecture it was trained as "
    "(a pruned model also needs its .json manifest)."
)


ERR_CLASSES = (
    "{path}: the model's head has {got} outputs but the dataset has {want} classes; pick the "
    "dataset it was trained for."
)


ERR_NAME = "invalid model name {name!r}: use letters, digits, '-', '_' and '.' only."


ERR_TOO_BIG = "the upload is {size:.0f} MB, over the {cap:.0f} MB limit; add it by path instead."


ERR_UNKNOWN_LAYER = (
    "{path}: the manifest names a layer {name!r} that {arch} does not have; re-save the model."
)


ERR_UNSUPPORTED_LAYER = (
    "cannot save layer {name!r} ({kind}) of this {arch}: its shape differs from a fresh {arch} "
    "and fairprune can only rebuild resized Conv2d, BatchNorm and Linear layers."
)


ERR_ARCH_MISMATCH = (
    "{path}: the manifest says the model is a {found} but {arch} was chosen; choose {found}."
)


ERR_NOT_A_FILE = (
    "{path} is not a regular file; point to the checkpoint itself, not a folder, pipe or device."
)


ERR_NONFINITE = (
    "{path}: the weights hold NaN or infinite values (first in {name}); the training diverged or "
    "the file is damaged, retrain or re-export the model."
)


ERR_OUTSIDE_STORE = (
    "{path} leads outside the models folder {store}; copy the file into the folder itself."
)


MAX_MANIFEST_BYTES = 8 * 2**20  # a real manifest is a few KB (layer shapes + configs)


MAX_JSON_DEPTH = 32  # nesting a manifest (or safetensors header) may have; ours use 4


MAX_WEIGHTS_BYTES = 4 * 2**30  # a checkpoint file; EfficientNetV2-M is 0.2 GB


MAX_OUTPUTS = 100_000  # logits a head may have (ImageNet-21k has 21 841 classes)


MAX_CHANNELS = 1 << 16  # any one size a pruned layer's manifest entry may give


INPUT_SIZES = (8, 1024)  # square input side a model may declare, px (as dataset image_size)


ERR_MANIFEST_PAIR = (
    "{path}: a fairprune .json manifest goes with a .safetensors file; upload the two together."
)


_INT_FIELDS = set("num_outputs num_classes input_size macs params file_size format_version".split())


_FLOAT_FIELDS = {"target_reduction", "flops_reduction"}


_DICT_FIELDS = {"layer_shapes", "config"}


_STR_FIELDS = ("name", "arch", "kind", "dataset", "dataset_fingerprint", "criterion", "loss",
               "sha256", "created")  # fmt: skip


_REQUIRED = ("name", "arch", "num_outputs", "num_classes", "input_size", "sha256")


# the keys of architectures.ARCHITECTURES, spelled here so that reading a manifest (listing the
# store) imports no Torch; tests/nets/test_architectures.py checks the two agree
ARCHITECTURE_NAMES = frozenset({
    "demo_cnn", "resnet18", "resnet34", "resnet50", "vgg16", "vgg16_bn", "vgg16_slim",
    "efficientnet_v2_s", "efficientnet_v2_m", "mobilenet_v2", "resnet56",
})  # fmt: skip


def known_architecture(name: str) -> bool:
    """True for a key of ``ARCHITECTURES``: the live table once the Torch side is loaded (it may
    hold architectures registered at run time), else the names above."""
    table = sys.modules.get("fairprune.nets.architectures")
    return name in (table.ARCHITECTURES if table is not None else ARCHITECTURE_NAMES)


# record fields that saving computes (never taken from the caller or an imported manifest)
COMPUTED_FIELDS = (
    "name", "sha256", "file_size", "created", "path", "layer_shapes", "format_version",
)  # fmt: skip


@dataclass(frozen=True)
class ModelRecord:
    """A checkpoint's manifest."""

    name: str  # file stem
    arch: str  # key of architectures.ARCHITECTURES
    num_outputs: int  # logits per sample; 1 = single-logit binary
    num_classes: int  # classes of the task (2 for a single-logit binary model)
    input_size: int  # square input side the model was trained on
    kind: str = "dense"  # "dense" or "pruned"
    dataset: str = ""  # dataset registry key
    dataset_fingerprint: str = ""  # content hash of the dataset and its options
    parent: str | None = None  # the parent checkpoint's sha256 (pruned models)
    criterion: str = "dense"  # pruning criterion ("dense" for dense models)
    loss: str = "dense"  # fine-tuning loss ("dense" for dense models)
    target_reduction: float = 0.0  # FLOPs reduction asked for
    flops_reduction: float = 0.0  # FLOPs reduction reached
    macs: int = 0  # multiply-accumulates per image (tp.utils.count_ops_and_params)
    params: int = 0  # parameters
    layer_shapes: dict = field(default_factory=dict)  # module → attrs that differ from dense
    config: dict = field(default_factory=dict)  # asdict() of the configs that made it
    sha256: str = ""  # content hash of the .safetensors file
    file_size: int = 0  # bytes of the .safetensors file
    created: str = ""  # ISO 8601 UTC
    format_version: int = FORMAT_VERSION  # manifest format; newer than ours is refused
    path: str = ""  # the .safetensors path, set on load (never trusted from JSON)


def check_name(name: str) -> None:
    """Raise unless ``name`` is a plain checkpoint name (no folder, no leading dot)."""
    if (
        not name
        or any(c in name for c in "/\\")
        or name.startswith(".")
        or not all(c.isalnum() or c in "-_." for c in name)
    ):
        raise FairpruneError(ERR_NAME.format(name=name))


def check_file(path: str | Path, *, cap: int, what: str) -> int:
    """A regular file (symlinks followed) of at most ``cap`` bytes, checked before any read.

    Returns the size in bytes. A FIFO would block a reader forever and ``/dev/zero`` never ends,
    so neither is ever opened, hashed or listed.
    """
    return regular_file_size(path, cap=cap, what=what, not_a_file=ERR_NOT_A_FILE)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(raw: bytes) -> int:
    """How deeply ``[``/``{`` nest in JSON text (strings skipped), without parsing it.

    ``json.loads`` recurses once per level: a few thousand ``[`` raise ``RecursionError`` (and
    one such file once broke listing the whole store), so depth is measured first.
    """
    skeleton = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    step = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64)
    step -= np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


def parse_json(raw: bytes, *, cap: int) -> object:
    """JSON from bytes with a size and depth cap; ``ValueError`` (a short reason) otherwise."""
    if len(raw) > cap:
        raise ValueError(f"{len(raw) / 2**20:.0f} MB, over {cap / 2**20:.0f} MB")
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested {depth} levels deep, over {MAX_JSON_DEPTH}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc).splitlines()[0][:80] if str(exc) else "invalid JSON") from None


_SHAPE_KEYS = {"in_channels", "out_channels", "groups", "num_features", "in_features",
               "out_features"}  # fmt: skip


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")  # e.g. "layer1.0.conv1"


def _bounds_problem(data: dict) -> str | None:
    """Why a manifest's sizes cannot be a real model (checked before anything is built)."""
    k, c, s = data["num_outputs"], data["num_classes"], data["input_size"]
    if not 1 <= k <= MAX_OUTPUTS:
        return f"num_outputs {k} outside 1..{MAX_OUTPUTS}"
    if not (c == k >= 2 or (k == 1 and c == 2)):
        return f"num_classes {c} does not fit num_outputs {k}"
    if not INPUT_SIZES[0] <= s <= INPUT_SIZES[1]:
        return f"input_size {s} outside {INPUT_SIZES[0]}..{INPUT_SIZES[1]}"
    for key in ("macs", "params", "file_size"):
        if data.get(key, 0) < 0:
            return f"{key} is negative"
    for key in ("target_reduction", "flops_reduction"):
        value = data.get(key, 0.0)
        if not (math.isfinite(value) and 0 <= value <= 1):
            return f"{key} {value} outside 0..1"
    shapes = data.get("layer_shapes", {})
    for name, attrs in shapes.items():
        if not _MODULE_NAME.fullmatch(name):
            return f"layer_shapes names {name[:40]!r}, not a module of a network"
        if not isinstance(attrs, dict) or not attrs or set(attrs) - _SHAPE_KEYS:
            return f"layer_shapes[{name[:40]!r}] is not a layer's sizes"
        for attr, value in attrs.items():
            ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok or not 1 <= value <= MAX_CHANNELS:
                return f"layer_shapes[{name[:40]!r}].{attr} is not a size in 1..{MAX_CHANNELS}"
    return None


def _manifest_problem(data: object) -> str | None:
    """Why a parsed manifest is not one of ours, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    absent = [k for k in _REQUIRED if k not in data]
    if absent:
        return f"missing {', '.join(absent)}"
    for key, value in data.items():
        if key in _INT_FIELDS:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif key in _FLOAT_FIELDS:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif key in _DICT_FIELDS:
            ok = isinstance(value, dict)
        elif key == "parent":
            ok = value is None or isinstance(value, str)
        else:
            ok = True  # unknown keys are dropped; the rest are strings, checked below
        if not ok:
            return f"{key} has the wrong type"
    if not all(isinstance(data[k], str) for k in ("name", "arch", "sha256")):
        return "name, arch and sha256 must be strings"
    texts = [k for k in _STR_FIELDS if k in data and not isinstance(data[k], str)]
    if texts:
        return f"{texts[0]} has the wrong type"
    if not known_architecture(data["arch"]):
        return f"unknown architecture {data['arch'][:40]!r}"
    try:
        check_name(data["name"])
    except FairpruneError:
        return f"name {data['name'][:40]!r} is not a model name (letters, digits, '-', '_', '.')"
    if any(len(data[k]) > 1000 for k in _STR_FIELDS if k in data):
        return "a text field is over 1000 characters"
    if data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        return f"format {data['format_version']} is newer than this fairprune's {FORMAT_VERSION}"
    return _bounds_problem(data)


def parse_manifest(text: str | bytes, source: object) -> ModelRecord:
    """A manifest's JSON text (size and depth capped) as a checked ``ModelRecord``."""
    raw = text.encode() if isinstance(text, str) else text
    try:
        data = parse_json(raw, cap=MAX_MANIFEST_BYTES)
    except ValueError as exc:
        raise FairpruneError(ERR_BAD_MANIFEST.format(path=source, reason=str(exc))) from None
    problem = _manifest_problem(data)
    if problem:
        raise FairpruneError(ERR_BAD_MANIFEST.format(path=source, reason=problem))
    known = {f.name for f in fields(ModelRecord)}
    return ModelRecord(**{k: v for k, v in data.items() if k in known and k != "path"})


def read_manifest(path: Path) -> ModelRecord:
    """``parse_manifest`` of the file at ``path``, checked before it is read."""
    size = check_file(path, cap=MAX_MANIFEST_BYTES, what="manifest")
    try:
        with open(path, "rb") as f:
            raw = f.read(size + 1)
    except OSError as exc:
        raise FairpruneError(ERR_BAD_MANIFEST.format(path=path, reason=exc.strerror)) from None
    return parse_manifest(raw, path)


def record_to_row(record: ModelRecord) -> dict:
    """One table row for the Models page and ``python -m fairprune models``.

    Parameters
    ----------
    record : ModelRecord

    Returns
    -------
    dict
        name, kind, arch, parent (12 hex), criterion, loss, flops_reduction, macs, params,
        size_kb (of the weights), sha256 (first 12 hex).
    """
    return {
        "name": record.name,
        "kind": record.kind,
        "arch": record.arch,
        "parent": (record.parent or "")[:12],
        "criterion": record.criterion,
        "loss": record.loss,
        "flops_reduction": record.flops_reduction,
        "macs": record.macs,
        "params": record.params,
        "size_kb": round(record.file_size / 1024, 1),
        "sha256": record.sha256[:12],
    }
