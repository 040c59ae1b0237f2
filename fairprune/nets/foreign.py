"""State dicts from other tools: pruned, masked or wrapped weights loaded into our architectures.

A model pruned elsewhere (Torch-Pruning's ``BasePruner``, NNI, a hand-written script) and saved with
``torch.save(model.state_dict(), ...)`` holds smaller tensors than a fresh build of its
architecture, and nothing says which layers shrank. The shapes are in the tensors themselves:
``conv.weight`` of a Conv2d is ``(out, in / groups, kh, kw)``, a BatchNorm's ``weight`` is
``(features,)``, a Linear's ``weight`` is ``(out, in)``. This module reads them, rebuilds every
resized Conv2d (plain, grouped or depthwise), BatchNorm and Linear, and loads the weights.

It also undoes what other tools wrap around a state dict:

- ``torch.nn.utils.prune`` keeps ``weight_orig`` and ``weight_mask`` instead of ``weight``; the
  pruned weight is their product (what ``prune.remove`` would have stored);
- ``nn.DataParallel`` / ``DistributedDataParallel`` prefix every key with ``module.``,
  ``torch.compile`` with ``_orig_mod.``.

Nothing here unpickles: the state dict comes from ``torch.load(weights_only=True)``. Shapes are
checked against sane bounds, and against the state dict itself, before any layer is allocated: the
rebuilt model is laid out on the ``meta`` device first and only materialised once every tensor
fits, so a hostile file cannot make us allocate more than the tensors it really holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.architectures import ARCHITECTURES, ERR_UNKNOWN_ARCH, build_model, head_of
from fairprune.nets.manifest import ERR_CLASSES, ERR_SHAPES
from fairprune.nets.shapes import SHAPE_ATTRS, new_layer, shape_attrs

MAX_DIM = 1 << 16  # channels or features per layer above this are refused (no CNN has them)

MAX_INPUT_SIZE = 4096  # input side above this is refused (nothing here runs at that size)

WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile

ERR_MASK_PAIR = (
    "{path}: {name}_orig and {name}_mask do not match ({detail}); apply "
    "torch.nn.utils.prune.remove() to every pruned layer before saving, or save both intact."
)

ERR_HOLLOW_TENSOR = (
    "{path}: {key} declares {numel} values but holds {stored}; the file is corrupt or hostile, "
    "save the state dict again with torch.save(model.state_dict(), ...)."
)

ERR_DIM = (
    "{path}: layer {name!r} would have {attr}={value}, outside 1-{cap}; the file is corrupt or "
    "not a {arch}."
)

ERR_WIRING = (
    "{path}: the resized layers do not connect into a {arch}: {detail}; the tensors were not "
    "saved from one consistently pruned {arch}."
)

ERR_INPUT_SIZE = (
    "input size {size} is outside 16-{cap} px; choose the size the model was trained at."
)


@dataclass(frozen=True)
class ForeignModel:
    """A model rebuilt from a foreign state dict, and what had to be undone to load it."""

    model: nn.Module  # the architecture with resized layers, weights loaded, eval mode, CPU
    num_outputs: int  # logits per sample (1 = single-logit binary), read from the head
    num_classes: int  # 2 for a single-logit head, else num_outputs
    input_size: int  # square input side (given, or the architecture's usual size)
    layer_shapes: dict = field(default_factory=dict)  # module -> attrs that differ from dense
    masked: tuple[str, ...] = ()  # tensors that were stored as *_orig × *_mask
    prefix: str = ""  # wrapper prefix stripped from every key ("module.", ...)

    @property
    def kind(self) -> str:
        """``"pruned"`` when layers were resized or masks applied, else ``"dense"``."""
        return "pruned" if self.layer_shapes or self.masked else "dense"


def _check_storage(state: dict, source: object) -> None:
    # a tensor with zero strides claims more values than it stores (torch.load rebuilds tensors
    # from (storage, size, stride)); a layer rebuilt from its shape would allocate the claim
    for key, t in state.items():
        stored = t.untyped_storage().nbytes() // max(t.element_size(), 1)
        if t.numel() > stored:
            raise FairpruneError(
                ERR_HOLLOW_TENSOR.format(path=source, key=key, numel=t.numel(), stored=stored)
            )


def unwrap_state(state: dict, source: object = "state dict") -> tuple[dict, str, tuple[str, ...]]:
    """Strip wrapper prefixes and fold ``torch.nn.utils.prune`` masks into plain weights.

    Parameters
    ----------
    state : dict
        name -> tensor, as ``torch.load(weights_only=True)`` returned it.
    source : object
        Named in error messages (the file).

    Returns
    -------
    (dict, str, tuple of str)
        The plain state dict, the prefix stripped ("" if none) and the names of the tensors that
        were stored as ``NAME_orig`` × ``NAME_mask`` (``conv1.weight``, ...).
    """
    _check_storage(state, source)
    prefix = ""
    stripped = True
    while stripped and state:
        stripped = False
        for p in WRAPPER_PREFIXES:
            if all(isinstance(k, str) and k.startswith(p) for k in state):
                state = {k[len(p) :]: v for k, v in state.items()}
                prefix += p
                stripped = True
    out, masked = {}, []
    for key, value in state.items():
        if key.endswith("_mask") and key[: -len("_mask")] + "_orig" in state:
            continue  # folded in with its _orig below
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in state:
            name = key[: -len("_orig")]
            mask = state[name + "_mask"]
            if mask.shape != value.shape:
                detail = f"shapes {tuple(value.shape)} and {tuple(mask.shape)}"
                raise FairpruneError(ERR_MASK_PAIR.format(path=source, name=name, detail=detail))
            if name in state:
                detail = f"{name!r} is stored as well"
                raise FairpruneError(ERR_MASK_PAIR.format(path=source, name=name, detail=detail))
            out[name] = value * mask.to(value.dtype)  # what prune.remove() would have stored
            masked.append(name)
            continue
        out[key] = value
    return out, prefix, tuple(masked)


def _conv_attrs(ref: nn.Conv2d, w: torch.Tensor) -> dict | None:
    """Conv2d sizes that fit ``w`` (out, in / groups, kh, kw), given the fresh layer ``ref``."""
    if w.ndim != 4 or tuple(w.shape[2:]) != tuple(ref.kernel_size):
        return None  # not this layer's weight: the shape check names it
    out, per_group = int(w.shape[0]), int(w.shape[1])
    if ref.groups == 1:
        return {"in_channels": per_group, "out_channels": out, "groups": 1}
    if ref.groups == ref.in_channels:
        # depthwise (MobileNet, EfficientNet): pruning keeps in = groups and the multiplier
        mult = ref.out_channels // ref.groups
        if per_group != 1 or out % mult:
            return None
        return {"in_channels": out // mult, "out_channels": out, "groups": out // mult}
    # grouped (ResNeXt-style): pruners keep the number of groups and shrink each group
    if out % ref.groups:
        return None
    return {"in_channels": per_group * ref.groups, "out_channels": out, "groups": ref.groups}


def _inferred_attrs(name: str, ref: nn.Module, state: dict) -> dict | None:
    """The sizes of layer ``name`` that its tensors in ``state`` imply (None: cannot tell)."""
    w = state.get(f"{name}.weight")
    if type(ref) is nn.Conv2d:
        return None if w is None else _conv_attrs(ref, w)
    if type(ref) in (nn.BatchNorm2d, nn.BatchNorm1d):
        t = w if w is not None else state.get(f"{name}.running_mean")
        return None if t is None or t.ndim != 1 else {"num_features": int(t.shape[0])}
    if type(ref) is nn.Linear:
        if w is None or w.ndim != 2:
            return None
        return {"in_features": int(w.shape[1]), "out_features": int(w.shape[0])}
    return None


def foreign_layer_shapes(model: nn.Module, state: dict, source: object, arch: str) -> dict:
    """Sizes of every resizable layer of ``model`` whose tensors in ``state`` differ from it.

    Parameters
    ----------
    model : nn.Module
        A fresh build of ``arch`` (on any device; ``meta`` allocates nothing).
    state : dict
        A plain state dict (see ``unwrap_state``).
    source : object
        Named in error messages.
    arch : str

    Returns
    -------
    dict
        ``{module name: {attr: int}}`` in the format of ``ModelRecord.layer_shapes``.
    """
    out = {}
    for name, module in model.named_modules():
        if type(module) not in SHAPE_ATTRS or not name:
            continue
        attrs = _inferred_attrs(name, module, state)
        if attrs is None or attrs == shape_attrs(module):
            continue
        for attr, value in attrs.items():
            if not 1 <= value <= MAX_DIM:
                raise FairpruneError(
                    ERR_DIM.format(
                        path=source, name=name, attr=attr, value=value, cap=MAX_DIM, arch=arch
                    )
                )
        out[name] = attrs
    return out


def _fit_problem(model: nn.Module, state: dict) -> str | None:
    """Why ``state`` does not load strictly into ``model`` (shapes only; nothing is copied)."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        return f"{first} ({len(missing)} missing, {len(extra)} unexpected keys)"
    for k, shape in own.items():
        if tuple(state[k].shape) != shape:
            return f"{k} is {tuple(state[k].shape)}, expected {shape}"
    return None


def _wiring_problem(model: nn.Module, input_size: int) -> str | None:
    """Why resized layers do not chain (a conv of 12 channels into a BatchNorm of 24), or None.

    Runs the model on the ``meta`` device: shapes propagate, nothing is computed or allocated.
    """
    current = ["(input)"]

    def enter(name):
        def hook(module, args):
            current[0] = f"{name!r} ({type(module).__name__})"

        return hook

    handles = [
        m.register_forward_pre_hook(enter(n))
        for n, m in model.named_modules()
        if n and not any(True for _ in m.children())
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, 3, input_size, input_size, device="meta"))
    except (RuntimeError, ValueError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        return f"layer {current[0]} does not fit its input ({reason})"
    finally:
        for h in handles:
            h.remove()
    return None


def model_from_state(
    state: dict,
    source: object,
    arch: str,
    *,
    num_classes: int | None = None,
    input_size: int | None = None,
) -> ForeignModel:
    """Build ``arch`` to fit a state dict from any tool, pruned or not, and load it.

    Parameters
    ----------
    state : dict
        name -> tensor from ``torch.load(weights_only=True)``: plain, with ``module.`` /
        ``_orig_mod.`` prefixes, with ``*_orig`` + ``*_mask`` pairs, and with layers resized by
        structured pruning.
    source : object
        Named in error messages (the file or upload name).
    arch : str
        Key of ``ARCHITECTURES``: the architecture the weights were made from.
    num_classes : int, optional
        The dataset's classes; a head of another size is refused (a 1-output head is binary).
    input_size : int, optional
        Square input side; defaults to the architecture's usual one.

    Returns
    -------
    ForeignModel
        The loaded model (eval mode, CPU): its outputs equal those of the model that was saved.
    """
    spec = ARCHITECTURES.get(arch)
    if spec is None:
        raise FairpruneError(ERR_UNKNOWN_ARCH.format(name=arch, choices=", ".join(ARCHITECTURES)))
    size = int(input_size or spec.default_input_size)
    if not 8 <= size <= MAX_INPUT_SIZE:
        raise FairpruneError(ERR_INPUT_SIZE.format(size=size, cap=MAX_INPUT_SIZE))
    state, prefix, masked = unwrap_state(state, source)
    with torch.device("meta"):  # layout only: nothing is allocated until the weights fit
        probe = build_model(arch, 1, size)
    head_name = next(n for n, m in probe.named_modules() if m is head_of(probe))
    head_w = state.get(f"{head_name}.weight")
    if head_w is None or head_w.ndim != 2:
        detail = f"missing {head_name + '.weight'!r}"
        raise FairpruneError(ERR_SHAPES.format(path=source, arch=arch, detail=detail))
    outputs = int(head_w.shape[0])  # (num_outputs, in_features)
    if not 1 <= outputs <= MAX_DIM:
        raise FairpruneError(
            ERR_DIM.format(
                path=source, name=head_name, attr="out_features", value=outputs, cap=MAX_DIM,
                arch=arch,
            )
        )  # fmt: skip
    classes = 2 if outputs == 1 else outputs
    if num_classes is not None and classes != num_classes:
        raise FairpruneError(ERR_CLASSES.format(path=source, got=outputs, want=num_classes))
    with torch.device("meta"):
        model = build_model(arch, outputs, size)
        shapes = foreign_layer_shapes(model, state, source, arch)
        modules = dict(model.named_modules())
        for name, attrs in shapes.items():
            parent, _, child = name.rpartition(".")
            setattr(modules[parent] if parent else model, child, new_layer(modules[name], attrs))
    problem = _fit_problem(model, state)
    if problem:
        raise FairpruneError(ERR_SHAPES.format(path=source, arch=arch, detail=problem))
    problem = _wiring_problem(model, size) if shapes else None
    if problem:
        raise FairpruneError(ERR_WIRING.format(path=source, arch=arch, detail=problem))
    persistent = set(model.state_dict())
    if all(n in persistent for n, _ in model.named_buffers()):
        model = model.to_empty(device="cpu")  # every tensor is overwritten by the load below
    else:  # a buffer the state dict does not carry keeps the value its constructor gives it
        real = build_model(arch, outputs, size)
        real_modules = dict(real.named_modules())
        for name, attrs in shapes.items():
            parent, _, child = name.rpartition(".")
            new = new_layer(real_modules[name], attrs)
            setattr(real_modules[parent] if parent else real, child, new)
        model = real
    model.load_state_dict(state, strict=True)
    return ForeignModel(
        model=model.eval(),
        num_outputs=outputs,
        num_classes=classes,
        input_size=size,
        layer_shapes=shapes,
        masked=masked,
        prefix=prefix,
    )
