"""FairPrune (Wu, Zeng, Xu, Shi & Hu, MICCAI 2022, arXiv 2203.02110): prune by group saliency gap.

The paper scores each parameter θ_i with the second-order saliency of Optimal Brain Damage,

    S_i(D) = ½ · θ_i² · H_ii(D)                                   (saliency, per group)

where H_ii(D) is the diagonal of the Hessian of the cross-entropy over the samples D of one
group. With D_u the unprivileged group (lower dense accuracy) and D_p the privileged group, the
fairness-aware score is the β-weighted difference

    S_i = S_i(D_u) − β · S_i(D_p),   β in (0, 1]                   (FairPrune objective)

and the parameters with the **smallest** S_i are pruned: those that matter little to the
unprivileged group but much to the privileged one. Removing them costs the privileged group more
accuracy than the unprivileged group, which is how FairPrune narrows the gap; β < 1 damps that
trade so the privileged group's accuracy is not given away wholesale. (This is the direction of
the paper's text; the open re-implementations that prune the *largest* S_i widen the gap.)

Following the paper, the saliencies are averaged over calibration batches and each prunable
layer (conv and linear weights; never the classifier head, never biases or BN parameters) is
pruned to the same sparsity; the paper does not fine-tune afterwards, the sweep does (the
protocol every criterion shares). With more than two groups the privileged group is the one with
the best dense accuracy on the calibration samples and the unprivileged one the worst (ties
broken by the lower mean loss), unless the configuration names them.

The Hessian diagonal is **exact**, computed in one of three ways (``hessian_diagonal`` returns
which):

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
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairprune.errors import FairpruneError
from fairprune.prune.objective import calibration_batches, resolve_group
from fairprune.prune.unstructured import (
    apply_masks,
    layer_keep_count,
    prunable_weights,
    weight_sparsity,
)
from fairprune.utils import Progress, pick_device, seed_everything

log = logging.getLogger(__name__)

HVP_MAX_WEIGHTS = 20_000  # exact per-weight Hessian-vector products beyond this are too slow
HVP_CHUNK = 256  # basis vectors per batched double-backward

ERR_SPARSITY = "the weight-sparsity target must be in (0, 1), got {target}; e.g. 0.5."
ERR_BETA = "FairPrune's beta must be in (0, 1], got {beta}; the paper studies 0.1 to 0.9."
ERR_ONE_GROUP = (
    "FairPrune compares two groups but the calibration batches hold only {n}; raise "
    "calib_batches or check the dataset's group column."
)
ERR_SAME_GROUP = "FairPrune's privileged and unprivileged groups are both {group!r}; pick two."
ERR_GROUP_ABSENT = (
    "the calibration batches hold no samples of group {group!r}; raise calib_batches or name "
    "another group."
)
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
    diag = torch.zeros(sum(sizes))
    for (x, y), n in zip(batches, counts, strict=True):
        if n == 0:
            continue
        logits = model(x)  # (B, K)
        loss = _loss_module(logits)(logits, _loss_target(logits, y))
        grads = torch.autograd.grad(loss, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])  # (P,)
        for start in range(0, flat.numel(), HVP_CHUNK):
            idx = torch.arange(start, min(start + HVP_CHUNK, flat.numel()))
            basis = torch.zeros(len(idx), flat.numel())
            basis[torch.arange(len(idx)), idx] = 1.0
            rows = torch.autograd.grad(
                flat, params, grad_outputs=basis, retain_graph=True, is_grads_batched=True
            )  # each (chunk, *shape): rows of H
            rows = torch.cat([r.reshape(len(idx), -1) for r in rows], dim=1)  # (chunk, P)
            diag[idx] += rows[torch.arange(len(idx)), idx].detach() * (n / total)
    out, start = {}, 0
    for (name, m), size in zip(layers, sizes, strict=True):
        out[name] = diag[start : start + size].view_as(m.weight).clone()
        start += size
    return out


def group_accuracy(model: nn.Module, batches) -> tuple[dict[int, float], dict[int, float]]:
    """Dense accuracy and mean loss per group over ``batches`` of (x, y, g)."""
    right: dict[int, float] = {}
    loss: dict[int, float] = {}
    count: dict[int, int] = {}
    model.eval()
    with torch.no_grad():
        for x, y, g in batches:
            logits = model(x)  # (B, K)
            if logits.shape[1] == 1:
                pred = (logits[:, 0] > 0).long()
                per = F.binary_cross_entropy_with_logits(logits[:, 0], y.float(), reduction="none")
            else:
                pred = logits.argmax(dim=1)
                per = F.cross_entropy(logits, y, reduction="none")  # (B,)
            for gi in torch.unique(g).tolist():
                sel = g == gi
                right[gi] = right.get(gi, 0.0) + float((pred[sel] == y[sel]).sum())
                loss[gi] = loss.get(gi, 0.0) + float(per[sel].sum())
                count[gi] = count.get(gi, 0) + int(sel.sum())
    return (
        {gi: right[gi] / count[gi] for gi in count},
        {gi: loss[gi] / count[gi] for gi in count},
    )


def choose_groups(model, batches, config, group_names=None) -> tuple[int, int]:
    """(privileged, unprivileged) group indices: named in ``config`` or best/worst dense group."""
    acc, loss = group_accuracy(model, batches)
    if len(acc) < 2:
        raise FairpruneError(ERR_ONE_GROUP.format(n=len(acc)))
    # best accuracy first; among equals the lower loss is better
    ranked = sorted(acc, key=lambda gi: (-acc[gi], loss[gi], gi))
    priv = resolve_group(config.fairprune_privileged, group_names)
    unpriv = resolve_group(config.fairprune_unprivileged, group_names)
    priv = ranked[0] if priv is None else priv
    unpriv = ranked[-1] if unpriv is None else unpriv
    if priv == unpriv:
        name = group_names[priv] if group_names and priv < len(group_names) else priv
        raise FairpruneError(ERR_SAME_GROUP.format(group=name))
    for gi in (priv, unpriv):
        if gi not in acc:
            name = group_names[gi] if group_names and gi < len(group_names) else gi
            raise FairpruneError(ERR_GROUP_ABSENT.format(group=name))
    return priv, unpriv


def fairprune_saliency(
    model: nn.Module, batches, privileged: int, unprivileged: int, beta: float
) -> tuple[dict[str, torch.Tensor], str]:
    """S = ½ θ² (H_ii(D_u) − β H_ii(D_p)) per prunable weight; prune the smallest.

    Parameters
    ----------
    model : nn.Module
    batches : list of (x, y, g)
        Calibration batches with group indices.
    privileged, unprivileged : int
        Group indices p and u.
    beta : float
        β in (0, 1].

    Returns
    -------
    (dict, str)
        Prunable-layer name → saliency (same shape as its weight), and the Hessian method used.
    """
    per_group = {}
    how = ""
    for gi in (unprivileged, privileged):
        sub = [(x[g == gi], y[g == gi]) for x, y, g in batches]
        per_group[gi], how = hessian_diagonal(model, sub)
    layers = dict(prunable_weights(model))
    out = {}
    for name, m in layers.items():
        theta2 = m.weight.detach() ** 2
        out[name] = (
            0.5 * theta2 * (per_group[unprivileged][name] - beta * per_group[privileged][name])
        )
    return out, how


def prune(
    model: nn.Module,
    config,
    *,
    split,
    input_size: int | None = None,
    progress: Progress | None = None,
    group_names: list[str] | None = None,
) -> tuple[nn.Module, float]:
    """``CRITERIA["fairprune"].run``: FairPrune to ``config.target_reduction`` weight sparsity.

    Parameters
    ----------
    model : nn.Module
        The trained dense model; never modified.
    config : PruneConfig
        ``target_reduction`` (weight sparsity), ``fairprune_beta``, ``fairprune_privileged``,
        ``fairprune_unprivileged``, ``calib_batches``, ``calib_batch_size``, ``seed``.
    split : SplitData
        The training split; its group labels define the groups.
    group_names : list of str, optional
        Names of the group indices, to resolve named groups.

    Returns
    -------
    (nn.Module, float)
        A pruned copy (zeros in place) and the weight sparsity reached over the prunable weights.
    """
    target = float(config.target_reduction)
    if not 0.0 < target < 1.0:
        raise FairpruneError(ERR_SPARSITY.format(target=target))
    beta = float(config.fairprune_beta)
    if not 0.0 < beta <= 1.0:
        raise FairpruneError(ERR_BETA.format(beta=beta))
    seed_everything(config.seed)
    device = pick_device(config.device)
    model = copy.deepcopy(model).to(device).eval()
    batches = [
        (x.to(device), y.to(device), g.to(device)) for x, y, g in calibration_batches(split, config)
    ]
    priv, unpriv = choose_groups(model, batches, config, group_names)
    if progress is not None:
        progress(0, 2, "FairPrune: Hessian diagonals per group")
    saliency, how = fairprune_saliency(model, batches, priv, unpriv, beta)
    log.info("FairPrune: privileged %s, unprivileged %s, Hessian by %s", priv, unpriv, how)
    masks = {}
    for name, m in prunable_weights(model):
        s = saliency[name].reshape(-1).cpu().numpy().astype(np.float64)
        mag = m.weight.detach().abs().reshape(-1).cpu().numpy()
        order = np.lexsort((mag, s))  # smallest saliency first; among equals the smaller |w|
        keep = np.ones(s.size, dtype=bool)
        keep[order[: s.size - layer_keep_count(s.size, target)]] = False
        masks[name] = torch.from_numpy(keep).view_as(m.weight)
    apply_masks(model, masks)
    if progress is not None:
        progress(2, 2, f"FairPrune: {weight_sparsity(model):.1%} weight sparsity")
    model = model.cpu().eval()
    return model, weight_sparsity(model)
