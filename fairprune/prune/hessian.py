"""The exact diagonal of a network's loss Hessian, for second-order pruning saliencies.

Three exact ways, chosen per network (``hessian_diagonal`` returns which):

- ``"backpack-diag-hessian"``: BackPACK's ``DiagHessian`` when every layer is one it supports
  (conv, linear, pooling and element-wise activations in a chain; no batch norm, no residual add).
- ``"backpack-ggn"``: BackPACK's ``DiagGGNExact`` (which handles eval-mode batch norm and residual
  adds through its module converter) when the network is piecewise linear in every single weight
  (conv, linear, eval-mode batch norm, ReLU, max/average pooling, adds). There the output is
  linear in each weight θ_i with the others fixed, so ∂²f/∂θ_i² = 0 and the Hessian diagonal
  equals the generalised Gauss–Newton diagonal exactly (almost everywhere). ResNets, VGG and the
  demo CNN take this path.
- ``"hvp"``: one exact Hessian-vector product per prunable weight (double back-propagation,
  batched), for any other small network; above ``HVP_MAX_WEIGHTS`` prunable weights this is
  refused with a clear error rather than replaced by an estimate (Hutchinson's would not be exact).

Functional activations and pools in ``forward`` (``torch.relu``, ``F.adaptive_avg_pool2d``…) are
turned into modules first: BackPACK only sees modules, and would silently skip them.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.prune.unstructured import prunable_weights

HVP_MAX_WEIGHTS = 20_000  # exact per-weight Hessian-vector products beyond this are too slow
HVP_CHUNK = 256  # basis vectors per batched double-backward

ERR_HESSIAN = (
    "FairPrune needs the exact Hessian diagonal, but this network has layers BackPACK cannot "
    "differentiate twice ({layers}) and {n} prunable weights, more than the {limit} an exact "
    "Hessian-vector pass handles; use a ReLU network (demo_cnn, resnet18/34/56, vgg16)."
)

# layers BackPACK's DiagHessian supports (exact second derivatives through each)
_DIAG_H = (
    nn.Conv1d, nn.Conv2d, nn.Linear, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.SELU,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.ZeroPad2d,
)  # fmt: skip
# piecewise-linear layers BackPACK's DiagGGNExact supports: there diag(H) == diag(GGN) exactly
_PIECEWISE_LINEAR = (
    nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity, nn.ZeroPad2d,
)  # fmt: skip
# functional calls BackPACK cannot see, turned into the equivalent modules before conversion
_AS_MODULE = {
    torch.relu: lambda node: nn.ReLU(),
    F.relu: lambda node: nn.ReLU(),
    torch.sigmoid: lambda node: nn.Sigmoid(),
    torch.tanh: lambda node: nn.Tanh(),
    F.silu: lambda node: nn.SiLU(),
    F.adaptive_avg_pool2d: lambda node: nn.AdaptiveAvgPool2d(
        node.args[1] if len(node.args) > 1 else node.kwargs["output_size"]
    ),
}
# functional calls BackPACK's converter turns into modules itself (sums, flatten)
_CONVERTED = {"add", "flatten", "<built-in function add>"}


def _loss_module(logits: torch.Tensor) -> nn.Module:
    if logits.dim() == 2 and logits.shape[1] == 1:
        return nn.BCEWithLogitsLoss()
    return nn.CrossEntropyLoss()


def _loss_target(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return y.float().view(-1, 1) if logits.dim() == 2 and logits.shape[1] == 1 else y.long()


def _backpack_graph(model: nn.Module):
    """``model`` as a BackPACK-converted graph module and the path it allows, or (None, reason)."""
    import torch.fx as fx
    from backpack.custom_module.branching import SumModule
    from backpack.custom_module.graph_utils import convert_module_to_backpack

    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # data-dependent control flow: no graph, so no BackPACK
        return None, f"not traceable: {type(exc).__name__}"
    # BackPACK only sees modules: functional activations and pools become modules
    others = set()
    for i, node in enumerate(list(gm.graph.nodes)):
        if node.op == "call_function" and node.target in _AS_MODULE:
            gm.add_submodule(f"fairprune_fn{i}", _AS_MODULE[node.target](node))
            with gm.graph.inserting_after(node):
                new = gm.graph.call_module(f"fairprune_fn{i}", (node.args[0],))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
        elif node.op in ("call_function", "call_method"):
            name = str(getattr(node.target, "__name__", node.target))
            if name not in _CONVERTED and str(node.target) not in _CONVERTED:
                others.add(name)
    if others:  # an operation between modules would be invisible to BackPACK
        return None, ", ".join(sorted(others))
    gm.recompile()
    try:
        gm = convert_module_to_backpack(gm, debug=False)
    except Exception as exc:
        return None, f"BackPACK converter: {type(exc).__name__}"
    kinds, unsupported = set(), set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        if node.op != "call_module":
            unsupported.add(str(getattr(node.target, "__name__", node.target)))
            continue
        m = gm.get_submodule(node.target)
        if isinstance(m, _DIAG_H):
            kinds.add("h")
        elif isinstance(m, _PIECEWISE_LINEAR + (SumModule,)):
            kinds.add("ggn")
        else:
            unsupported.add(type(m).__name__)
    if unsupported:
        return None, ", ".join(sorted(unsupported))
    return gm, ("backpack-ggn" if "ggn" in kinds else "backpack-diag-hessian")


def hessian_diagonal(
    model: nn.Module, batches, *, method: str = "auto"
) -> tuple[dict[str, torch.Tensor], str]:
    """Exact diagonal of the Hessian of the mean loss over every sample in ``batches``.

    Parameters
    ----------
    model : nn.Module
        Evaluated in eval mode (batch norm uses its running statistics); never modified.
    batches : list of (x, y)
        Inputs (B, 3, S, S) and labels (B,). The loss is the mean cross-entropy (sigmoid form for
        single-logit heads) over all their samples.
    method : {"auto", "backpack", "hvp"}
        ``"auto"`` uses BackPACK when the network allows an exact answer, else exact
        Hessian-vector products for small networks.

    Returns
    -------
    (dict, str)
        Prunable-layer name → (same shape as its ``weight``) Hessian diagonal, and the method used
        (``"backpack-diag-hessian"``, ``"backpack-ggn"`` or ``"hvp"``).
    """
    names = [name for name, _ in prunable_weights(model)]
    counts = [int(len(y)) for _, y in batches]
    total = sum(counts)
    if total == 0:
        return {}, "none"
    gm, how = (None, "hvp requested") if method == "hvp" else _backpack_graph(copy.deepcopy(model))
    if gm is not None:
        diag = _backpack_diagonal(gm, how, names, batches, counts, total)
        return diag, how
    n = sum(m.weight.numel() for _, m in prunable_weights(model))
    if method == "backpack" or n > HVP_MAX_WEIGHTS:
        raise FairpruneError(ERR_HESSIAN.format(layers=how, n=n, limit=HVP_MAX_WEIGHTS))
    return _hvp_diagonal(model, batches, counts, total), "hvp"


def _backpack_diagonal(gm, how, names, batches, counts, total) -> dict[str, torch.Tensor]:
    from backpack import backpack, extend
    from backpack.extensions import DiagGGNExact, DiagHessian

    gm = extend(gm.eval())
    ext, field = (DiagHessian(), "diag_h") if how == "backpack-diag-hessian" else (
        DiagGGNExact(), "diag_ggn_exact")  # fmt: skip
    modules = dict(gm.named_modules())
    out = {name: torch.zeros_like(modules[name].weight) for name in names}
    for (x, y), n in zip(batches, counts, strict=True):
        if n == 0:
            continue
        gm.zero_grad(set_to_none=True)
        logits = gm(x)  # (B, K)
        loss = extend(_loss_module(logits))(logits, _loss_target(logits, y))
        with warnings.catch_warnings():
            # BackPACK's full backward hooks warn when the input needs no gradient; harmless
            warnings.simplefilter("ignore", UserWarning)
            with backpack(ext):
                loss.backward()
        for name in names:
            out[name] += getattr(modules[name].weight, field).detach() * (n / total)
    return out


def _hvp_diagonal(model, batches, counts, total) -> dict[str, torch.Tensor]:
    model = copy.deepcopy(model).eval()
    layers = prunable_weights(model)
    params = [m.weight for _, m in layers]
    sizes = [p.numel() for p in params]
    device = params[0].device
    diag = torch.zeros(sum(sizes), device=device)
    for (x, y), n in zip(batches, counts, strict=True):
        if n == 0:
            continue
        logits = model(x)  # (B, K)
        loss = _loss_module(logits)(logits, _loss_target(logits, y))
        grads = torch.autograd.grad(loss, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])  # (P,)
        for start in range(0, flat.numel(), HVP_CHUNK):
            idx = torch.arange(start, min(start + HVP_CHUNK, flat.numel()), device=device)
            basis = torch.zeros(len(idx), flat.numel(), device=device)
            basis[torch.arange(len(idx), device=device), idx] = 1.0
            rows = torch.autograd.grad(
                flat, params, grad_outputs=basis, retain_graph=True, is_grads_batched=True
            )  # each (chunk, *shape): rows of H
            rows = torch.cat([r.reshape(len(idx), -1) for r in rows], dim=1)  # (chunk, P)
            diag[idx] += rows[torch.arange(len(idx), device=device), idx].detach() * (n / total)
    out, start = {}, 0
    for (name, m), size in zip(layers, sizes, strict=True):
        out[name] = diag[start : start + size].view_as(m.weight).clone()
        start += size
    return out
