"""The same model on the runtimes it would be deployed with, for side-by-side latency.

A pruned model's FLOPs fall by 4× at 75% reduction, but eager PyTorch on a small CNN also pays for
every batch-norm and activation as a separate pass over memory, and for kernels tuned to round
channel counts. What a deployment does about it, and what ``runtimes`` builds:

- ``"torch"``: the model as trained, eager mode;
- ``"torch (BN folded, channels-last)"``: every BatchNorm folded into the conv before it
  (``torch.fx``), weights and inputs in channels-last layout (oneDNN's preferred one);
- ``"onnxruntime"``: the verified ONNX export (batch norm folded by the exporter) in onnxruntime
  with every graph optimisation (``ORT_ENABLE_ALL``: conv+activation fusion, blocked layouts).

Each runs with the same number of intra-op threads, so the comparison is fair.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path

import torch
from torch import nn

from fairprune.nets.onnx_export import export_onnx
from fairprune.nets.onnx_runtime import OnnxClassifier, load_onnx

log = logging.getLogger(__name__)

TORCH = "torch"
TORCH_DEPLOY = "torch (BN folded, channels-last)"
ONNXRUNTIME = "onnxruntime"


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every Conv→BatchNorm pair folded into one conv.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    nn.Module
        A ``torch.fx.GraphModule`` with the same outputs (to float rounding), or a plain copy
        when the model cannot be traced symbolically.
    """
    from torch.fx.experimental.optimization import fuse

    model = copy.deepcopy(model).cpu().eval()
    try:
        return fuse(model)
    except Exception as exc:  # fx raises many types on untraceable code; eager is still right
        log.info("batch norm not folded (%s): %s", type(model).__name__, exc)
        return model


class ChannelsLast(nn.Module):
    """Runs ``model`` with its weights and every input in channels-last memory layout."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))  # (N, K)


def torch_deploy(model: nn.Module) -> nn.Module:
    """``model`` with batch norm folded and channels-last layout (same outputs)."""
    return ChannelsLast(fold_batchnorm(model)).eval()


def onnxruntime_of(
    model: nn.Module,
    input_size: int,
    *,
    threads: int | None = None,
    exporter: str = "dynamo",
    optimization: str = "all",
) -> OnnxClassifier:
    """``model`` exported to ONNX (verified) and opened in onnxruntime.

    Parameters
    ----------
    model : nn.Module
    input_size : int
    threads : int, optional
        onnxruntime intra-op threads (default: torch's).
    exporter : {"dynamo", "torchscript"}
    optimization : {"all", "extended", "basic", "disabled"}
        onnxruntime's graph optimisation level.

    Returns
    -------
    OnnxClassifier
    """
    if isinstance(model, OnnxClassifier):
        return model
    with tempfile.TemporaryDirectory(prefix="fairprune-onnx-") as tmp:
        out = Path(tmp) / "model.onnx"
        export_onnx(model, out, input_size=input_size, exporter=exporter)
        classifier, _ = load_onnx(
            out, input_size=input_size, threads=threads, optimization=optimization
        )
    return classifier  # the session holds the model in memory; the file is no longer needed


def runtimes(
    model: nn.Module, input_size: int, *, threads: int | None = None, exporter: str = "dynamo"
) -> dict[str, nn.Module]:
    """The model on every runtime above: ``{runtime name: module}``, same outputs each.

    Parameters
    ----------
    model : nn.Module
        A PyTorch model, or an ``OnnxClassifier`` (which has only the onnxruntime entry).
    input_size : int
    threads : int, optional
        onnxruntime intra-op threads; pass the same count to ``measure_latency`` for torch.
    exporter : {"dynamo", "torchscript"}

    Returns
    -------
    dict
    """
    if isinstance(model, OnnxClassifier):
        return {ONNXRUNTIME: model}
    return {
        TORCH: copy.deepcopy(model).cpu().eval(),
        TORCH_DEPLOY: torch_deploy(model),
        ONNXRUNTIME: onnxruntime_of(model, input_size, threads=threads, exporter=exporter),
    }
