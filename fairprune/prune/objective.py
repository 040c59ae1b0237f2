"""What the data-driven criteria share: the task loss (CE or PW), gradient accumulation, the
calibration batches with their group labels, and group names given by the user."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fairprune.config import PruneConfig
from fairprune.errors import FairpruneError


def task_loss(pw: bool, cfg: PruneConfig | None) -> Callable:
    """The loss a data-driven criterion scores by: ``fn(logits, y, dense_logits) -> scalar``.

    Cross-entropy, or the PW loss against the dense model's logits (``pw``, with ``cfg``'s
    ``min_weight`` and ``gamma``); a single-logit binary model gets float targets.
    """
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


ERR_GROUP_NAME = "unknown group {name!r}; the dataset's groups are: {choices}."


def calibration_batches(split, cfg: PruneConfig) -> list:
    """The calibration data every data-driven criterion sees: (x, y, g) batches of ``split``.

    The first ``cfg.calib_batches`` shuffled batches of ``cfg.calib_batch_size`` rows, drawn with
    ``cfg.seed`` exactly as the sweep draws them for the structured criteria, so every method of a
    comparison is calibrated on the same samples.
    """
    out = []
    for x, y, g, _idx in split.batches(cfg.calib_batch_size, shuffle=True, seed=cfg.seed):
        out.append((x, y, g))
        if len(out) >= cfg.calib_batches:
            break
    return out


def resolve_group(value: str, group_names: list[str] | None) -> int | None:
    """A group named by the user (its name, or its index as text) → index; "" → None."""
    value = str(value).strip()
    if not value:
        return None
    names = list(group_names or [])
    if value in names:
        return names.index(value)
    if value.lstrip("-").isdigit() and (not names or 0 <= int(value) < len(names)):
        return int(value)
    raise FairpruneError(ERR_GROUP_NAME.format(name=value, choices=", ".join(names) or "(none)"))
