"""The task loss the data-driven criteria share (CE or PW) and gradient accumulation."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fairprune.config import PruneConfig


def _task_loss(pw: bool, cfg: PruneConfig) -> Callable:
    from fairprune.loss import cross_entropy, performance_weighted_loss

    def fn(logits, y, dense):
        if logits.dim() == 2 and logits.shape[1] == 1:
            y = y.float()
        if pw:
            return performance_weighted_loss(
                logits, y, dense, min_weight=cfg.min_weight, gamma=cfg.gamma
            )
        return cross_entropy(logits, y)

    return fn


def accumulate_gradients(model: nn.Module, calib, loss_fn, device) -> None:
    """Sum the loss gradients of ``model`` over the calibration batches into ``.grad``."""
    model.to(device).eval()  # eval: BN statistics stay those of the trained model
    model.zero_grad(set_to_none=True)
    for x, y, dense in calib:
        logits = model(x.to(device))  # (B, K)
        loss = loss_fn(logits, y.to(device), dense.to(device) if dense is not None else None)
        loss.backward()
    model.cpu()
