"""A checkpoint's JSON manifest (``ModelRecord``): its schema, parsing and the store's error messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from fairprune.errors import FairpruneError

FORMAT_VERSION = 1


# ONE metadata key: safetensors writes a multi-key metadata map in random order, which would
# give the same weights a different content hash on every save
_METADATA = {"format": f"fairprune-{FORMAT_VERSION}"}


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


ERR_MANIFEST_PAIR = (
    "{path}: a fairprune .json manifest goes with a .safetensors file; upload the two together."
)


_INT_FIELDS = set("num_outputs num_classes input_size macs params file_size format_version".split())


_FLOAT_FIELDS = {"target_reduction", "flops_reduction"}


_DICT_FIELDS = {"layer_shapes", "config"}


_REQUIRED = ("name", "arch", "num_outputs", "num_classes", "input_size", "sha256")


_COMPUTED = ("name", "sha256", "file_size", "created", "path", "layer_shapes", "format_version")


@dataclass(frozen=True)
class ModelRecord:
    """A checkpoint's manifest."""

    name: str  # file stem
    arch: str  # key of ARCHITECTURES
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


def _check_name(name: str) -> None:
    if (
        not name
        or any(c in name for c in "/\\")
        or name.startswith(".")
        or not all(c.isalnum() or c in "-_." for c in name)
    ):
        raise FairpruneError(ERR_NAME.format(name=name))


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
    if data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        return f"format {data['format_version']} is newer than this fairprune's {FORMAT_VERSION}"
    return None


def _parse_manifest(text: str | bytes, source: object) -> ModelRecord:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:80]
        raise FairpruneError(ERR_BAD_MANIFEST.format(path=source, reason=reason)) from None
    problem = _manifest_problem(data)
    if problem:
        raise FairpruneError(ERR_BAD_MANIFEST.format(path=source, reason=problem))
    known = {f.name for f in fields(ModelRecord)}
    return ModelRecord(**{k: v for k, v in data.items() if k in known and k != "path"})


def _read_manifest(path: Path) -> ModelRecord:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FairpruneError(ERR_BAD_MANIFEST.format(path=path, reason=exc.strerror)) from None
    return _parse_manifest(raw, path)


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
