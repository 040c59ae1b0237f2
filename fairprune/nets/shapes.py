"""Pruned layer shapes: record which layers differ from a dense build, and rebuild them on load."""

from __future__ import annotations

from itertools import chain

import torch
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.nets.architectures import build_model
from fairprune.nets.manifest import (
    ERR_BAD_MANIFEST,
    ERR_NONFINITE,
    ERR_SHAPES,
    ERR_UNKNOWN_LAYER,
    ERR_UNSUPPORTED_LAYER,
    ModelRecord,
)

# resizable layer types → the constructor arguments that Torch-Pruning changes
SHAPE_ATTRS = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm1d: ("num_features",),
    nn.Linear: ("in_features", "out_features"),
}


def shape_attrs(module: nn.Module) -> dict | None:
    """The sizes (``SHAPE_ATTRS``) of a layer that pruning can change; None for other layers."""
    # exact type: a subclass may take other constructor arguments than the ones we rebuild with
    attrs = SHAPE_ATTRS.get(type(module))
    return None if attrs is None else {a: int(getattr(module, a)) for a in attrs}


def layer_shapes(model: nn.Module, arch: str, num_outputs: int, input_size: int) -> dict:
    """Shape attributes of every layer whose shape differs from a fresh dense build of ``arch``.

    Parameters
    ----------
    model : nn.Module
        A (possibly pruned) model of architecture ``arch``.
    arch : str
    num_outputs : int
    input_size : int

    Returns
    -------
    dict
        ``{module name: {attr: int}}``, e.g. ``{"stem.0": {"in_channels": 3, "out_channels": 12,
        "groups": 1}}``; empty for a dense model.

    Raises
    ------
    FairpruneError
        If a layer that cannot be rebuilt from these attributes changed shape (the checkpoint
        would not load back).
    """
    fresh = build_model(arch, num_outputs, input_size)
    fresh_modules = dict(fresh.named_modules())
    fresh_state = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    out = {}
    for name, module in model.named_modules():
        attrs = shape_attrs(module)
        ref = fresh_modules.get(name)
        if attrs is not None and ref is not None and type(ref) is type(module):
            if attrs != shape_attrs(ref):
                out[name] = attrs
            continue
        # any other module: its own tensors must match the fresh build, or we could not reload it
        own = chain(module.named_parameters(recurse=False), module.named_buffers(recurse=False))
        for pname, tensor in own:
            key = f"{name}.{pname}" if name else pname
            if fresh_state.get(key) != tuple(tensor.shape):
                kind = type(module).__name__
                raise FairpruneError(
                    ERR_UNSUPPORTED_LAYER.format(name=name or "(root)", kind=kind, arch=arch)
                )
    return out


def new_layer(old: nn.Module, attrs: dict) -> nn.Module:
    """A fresh layer like ``old`` (kernel, stride, eps, bias…) but with the recorded sizes."""
    if type(old) is nn.Conv2d:
        return nn.Conv2d(
            attrs["in_channels"],
            attrs["out_channels"],
            old.kernel_size,
            old.stride,
            old.padding,
            old.dilation,
            attrs.get("groups", old.groups),
            bias=old.bias is not None,
            padding_mode=old.padding_mode,
        )
    if type(old) in (nn.BatchNorm2d, nn.BatchNorm1d):
        return type(old)(
            attrs["num_features"], old.eps, old.momentum, old.affine, old.track_running_stats
        )
    if type(old) is nn.Linear:
        return nn.Linear(attrs["in_features"], attrs["out_features"], bias=old.bias is not None)
    raise TypeError(f"{type(old).__name__} is not a resizable layer")


def rebuild_model(record: ModelRecord, source: object) -> nn.Module:
    """Build ``record.arch`` and swap in layers of the recorded (pruned) shapes."""
    model = build_model(record.arch, record.num_outputs, record.input_size)
    modules = dict(model.named_modules())
    for name, attrs in record.layer_shapes.items():
        old = modules.get(name)
        if old is None or not name:
            raise FairpruneError(ERR_UNKNOWN_LAYER.format(path=source, name=name, arch=record.arch))
        try:
            new = new_layer(old, attrs)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            reason = f"layer {name!r}: {exc}"
            raise FairpruneError(ERR_BAD_MANIFEST.format(path=source, reason=reason)) from None
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, new)
    return model


def expected_shapes(record: ModelRecord, source: object) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor the manifest's model holds, built on the meta device.

    Nothing is allocated: a manifest claiming 10¹² outputs or 65 536-channel layers is compared
    with the weights file's header before a single real parameter exists.
    """
    with torch.device("meta"):
        model = rebuild_model(record, source)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def compare_shapes(
    own: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]], source: object, arch: str
) -> None:
    """One-line error naming the first missing, unexpected or wrongly shaped tensor."""
    missing = [k for k in own if k not in got]
    extra = [k for k in got if k not in own]
    if missing or extra:
        detail = (
            f"missing {missing[0]!r}" if missing else f"unexpected {str(extra[0])[:60]!r}"
        ) + f" ({len(missing)} missing, {len(extra)} unexpected keys)"
        raise FairpruneError(ERR_SHAPES.format(path=source, arch=arch, detail=detail))
    for k, shape in own.items():
        if tuple(shape) != tuple(got[k]):
            detail = f"{k} is {tuple(got[k])}, expected {tuple(shape)}"
            raise FairpruneError(ERR_SHAPES.format(path=source, arch=arch, detail=detail))


def check_finite(state: dict[str, torch.Tensor], source: object) -> None:
    """Refuse weights holding NaN or ±inf: a model like that only ever predicts garbage."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise FairpruneError(ERR_NONFINITE.format(path=source, name=name[:60]))


def load_state(model: nn.Module, state: dict, source: object, arch: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first bad key."""
    own = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    compare_shapes(own, {k: tuple(t.shape) for k, t in state.items()}, source, arch)
    model.load_state_dict(state, strict=True)
