"""MACs and parameters of a model, counted by Torch-Pruning."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn


def count_macs_params(model: nn.Module, input_size: int) -> tuple[int, int]:
    """MACs per image and parameters, counted by ``tp.utils.count_ops_and_params``."""
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, input_size, input_size, device=device)
    macs, params = tp.utils.count_ops_and_params(model, example)
    return int(macs), int(params)
