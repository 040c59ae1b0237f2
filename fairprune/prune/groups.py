"""Coupled channel groups of a network (Torch-Pruning's dependency graph), shared by the gate-based
(AutoBot) and the iterative (Taylor) pruners.

A group is a set of channels that must be removed together: a convolution's outputs, its batch
norm, every convolution that reads them, and every other layer tied to them by a residual add.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from fairprune.nets.architectures import head_of


@dataclass
class ChannelGroup:
    """One prunable group of coupled channels."""

    root: nn.Module  # the convolution whose output channels define the group
    size: int  # number of channels
    act_modules: list[nn.Module] = field(default_factory=list)  # where activations are gated/read
    out_convs: list[nn.Conv2d] = field(default_factory=list)  # convs producing these channels
    in_convs: list[nn.Conv2d] = field(default_factory=list)  # convs (non-depthwise) consuming them
    in_linears: list[nn.Linear] = field(default_factory=list)  # linear layers consuming them


def build_graph(model: nn.Module, input_size: int) -> tp.DependencyGraph:
    """Trace ``model`` (on its current device) into a Torch-Pruning dependency graph."""
    device = next(model.parameters()).device
    return tp.DependencyGraph().build_dependency(
        model, example_inputs=torch.zeros(1, 3, input_size, input_size, device=device)
    )


def channel_groups(model: nn.Module, graph: tp.DependencyGraph) -> list[ChannelGroup]:
    """Every group rooted at a convolution, the classifier head excluded."""
    out = []
    for group in graph.get_all_groups(
        ignored_layers=[head_of(model)], root_module_types=[nn.Conv2d]
    ):
        root_dep, root_idxs = group[0]
        cg = ChannelGroup(root=root_dep.target.module, size=len(root_idxs))
        bns = []
        for dep, _idxs in group:
            module, fn = dep.target.module, dep.handler
            if isinstance(module, nn.Conv2d) and graph.is_out_channel_pruning_fn(fn):
                cg.out_convs.append(module)
            elif isinstance(module, nn.Conv2d) and graph.is_in_channel_pruning_fn(fn):
                if module.groups == 1:
                    cg.in_convs.append(module)
            elif isinstance(module, nn.Linear) and graph.is_in_channel_pruning_fn(fn):
                cg.in_linears.append(module)
            elif isinstance(module, nn.BatchNorm2d):
                bns.append(module)
        # gate / read activations after batch norm when there is one (AutoBot's placement)
        cg.act_modules = bns or list(cg.out_convs)
        if cg.size > 1:
            out.append(cg)
    return out


def prune_group(graph: tp.DependencyGraph, group: ChannelGroup, idxs: list[int]) -> None:
    """Remove channels ``idxs`` of ``group`` (and everything coupled to them) in place."""
    if idxs:
        graph.get_pruning_group(group.root, tp.prune_conv_out_channels, sorted(idxs)).prune()
