"""Constrained fine-tuning of a pruned model (Hashemizadeh, Ramirez et al., "Balancing Act:
Constraining Disparate Impact in Sparse Models", ICLR 2024, arXiv 2310.20673).

The pruned model minimises cross-entropy subject to one constraint per group g,

    ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse) ≤ ε,

the group's *excess accuracy gap*: how much more accuracy it lost than the whole training set did.
The problem is solved with Lagrange multipliers λ_g ≥ 0 and **proxy constraints**: the multipliers
rise with the true (non-differentiable) violations ψ_g − ε, while the weights descend on
CE + Σ_g λ_g ψ̃_g with the differentiable surrogate

    ψ̃_g = (L_sparse,g − L_dense,g) − (L_sparse − L_dense),

the same gap in cross-entropy units (the authors' surrogate: the negative loss for accuracy). As
in the authors' code (``merajhashemi/balancing-act``, built on Cooper), λ is an indexed multiplier
updated by SGD ascent *before* each primal step (``AlternatingDualPrimalOptimizer``), surrogates
are measured on the groups present in the mini-batch, and each ψ_g is estimated from a cyclic
buffer of the group's last ``constrained_buffer`` training predictions, observed once that buffer
is full. Dense accuracies and losses are computed once over the whole training split from the
cached dense outputs. One deliberate difference: A_sparse is the group accuracies weighted by the
groups' shares of the training split (the authors average the full buffers uniformly), so that it
estimates the same quantity as A_dense on imbalanced data.

The primal optimiser is the fine-tuning loop's own (AdamW, cosine schedule): the protocol every
loss shares. ``finetune`` (``fairprune.train``) dispatches here for ``loss="constrained"``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cooper
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fairprune.errors import FairpruneError

ERR_TOLERANCE = "the constraint tolerance ε must be >= 0, got {value}; the paper uses 0.01."
ERR_DUAL_LR = "the dual learning rate must be > 0, got {value}; e.g. 0.01."
ERR_BUFFER = "the per-group prediction buffer must hold >= 1 prediction, got {value}; e.g. 40."


def _per_sample(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) cross-entropy and (B,) correctness; sigmoid form for single-logit heads."""
    if logits.dim() == 1 or logits.shape[1] == 1:
        z = logits.reshape(-1).float()
        loss = F.binary_cross_entropy_with_logits(z, y.float(), reduction="none")
        return loss, ((z > 0).long() == y).float()
    loss = F.cross_entropy(logits.float(), y.long(), reduction="none")
    return loss, (logits.argmax(dim=1) == y).float()


@dataclass(frozen=True)
class DenseReference:
    """The dense model on the training split: what every ψ_g is measured against."""

    group_acc: Tensor  # (G,) A_dense,g
    group_loss: Tensor  # (G,) L_dense,g (mean cross-entropy)
    share: Tensor  # (G,) each group's share of the training rows
    acc: float  # A_dense over the whole split
    loss: float  # L_dense over the whole split

    @classmethod
    def from_outputs(cls, dense_logits: Tensor, labels, groups, n_groups: int) -> DenseReference:
        """From the cached (N, K) dense outputs row-aligned with the split's labels and groups."""
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        g = torch.as_tensor(np.asarray(groups), dtype=torch.long)
        with torch.no_grad():
            loss, right = _per_sample(dense_logits.detach().cpu(), y)
        count = torch.bincount(g, minlength=n_groups).double()
        safe = count.clamp_min(1.0)
        return cls(
            group_acc=(torch.bincount(g, right.double(), n_groups) / safe).float(),
            group_loss=(torch.bincount(g, loss.double(), n_groups) / safe).float(),
            share=(count / count.sum()).float(),
            acc=float(right.mean()),
            loss=float(loss.mean()),
        )


class ExcessGapProblem(cooper.ConstrainedMinimizationProblem):
    """CE subject to ψ_g ≤ ε for every group g, with proxy constraints (see the module text).

    Parameters
    ----------
    reference : DenseReference
    tolerance : float
        ε, in accuracy units (0.01 = one point).
    buffer : int
        Predictions per group behind each ψ_g estimate.
    device : torch.device
    """

    def __init__(self, reference: DenseReference, tolerance: float, buffer: int, device):
        super().__init__()
        if tolerance < 0:
            raise FairpruneError(ERR_TOLERANCE.format(value=tolerance))
        if buffer < 1:
            raise FairpruneError(ERR_BUFFER.format(value=buffer))
        self.n_groups = len(reference.group_acc)
        self.reference = reference
        self.tolerance = float(tolerance)
        self.device = device
        self.buffers = [deque(maxlen=int(buffer)) for _ in range(self.n_groups)]
        self.group_loss = reference.group_loss.to(device)
        self.excess_gap = cooper.Constraint(
            constraint_type=cooper.ConstraintType.INEQUALITY,
            formulation_type=cooper.formulations.Lagrangian,
            multiplier=cooper.multipliers.IndexedMultiplier(
                num_constraints=self.n_groups, device=device
            ),
        )

    def multipliers_now(self) -> np.ndarray:
        """(G,) current λ_g."""
        return self.excess_gap.multiplier.weight.detach().reshape(-1).cpu().numpy().copy()

    def psi(self) -> np.ndarray:
        """(G,) ψ_g from the full buffers (NaN where a group's buffer is not full yet)."""
        full = [len(b) == b.maxlen for b in self.buffers]
        out = np.full(self.n_groups, np.nan)
        if not any(full):
            return out
        acc = np.array(
            [np.mean(b) if f else np.nan for b, f in zip(self.buffers, full, strict=True)]
        )
        ref_acc = self.reference.group_acc.numpy().astype(np.float64)
        w = self.reference.share.numpy().astype(np.float64) * np.asarray(full, dtype=np.float64)
        if w.sum() <= 0:
            return out
        w = w / w.sum()
        sparse_avg = float(np.nansum(w * np.nan_to_num(acc)))
        dense_avg = float((w * ref_acc).sum())  # the same groups, the same weights
        out[full] = (ref_acc[full] - acc[full]) - (dense_avg - sparse_avg)
        return out

    def compute_cmp_state(self, logits: Tensor, y: Tensor, g: Tensor) -> cooper.CMPState:
        """The batch's CE and the proxy constraint state (surrogate + buffered ψ_g − ε)."""
        per_loss, right = _per_sample(logits, y)  # (B,), (B,)
        loss = per_loss.mean()
        present = torch.unique(g)  # groups in this batch, sorted
        group_loss = torch.stack([per_loss[g == k].mean() for k in present])  # (P,)
        surrogate = (group_loss - self.group_loss[present]) - (loss - self.reference.loss)
        for k, ok in zip(g.tolist(), right.tolist(), strict=True):
            self.buffers[k].append(ok)
        psi = self.psi()
        observed = np.flatnonzero(~np.isnan(psi))
        if len(observed):
            strict = torch.as_tensor(psi[observed] - self.tolerance, dtype=torch.float32)
            state = cooper.ConstraintState(
                violation=surrogate,
                constraint_features=present.to(self.device),
                strict_violation=strict.to(self.device),
                strict_constraint_features=torch.as_tensor(observed, device=self.device),
            )
        else:  # no group's buffer is full yet: the surrogate steers, the multipliers wait
            state = cooper.ConstraintState(
                violation=surrogate,
                constraint_features=present.to(self.device),
                contributes_to_dual_update=False,
            )
        return cooper.CMPState(loss=loss, observed_constraints={self.excess_gap: state})


@dataclass
class StepRecord:
    """One constrained step, for monitoring: λ after the dual update and the ψ_g it saw."""

    step: int
    multipliers: np.ndarray  # (G,) λ_g after this step's dual update
    psi: np.ndarray  # (G,) buffered ψ_g it used (NaN until a group's buffer is full)
    loss: float  # the batch's cross-entropy


class ConstrainedStep:
    """One primal-dual step per mini-batch, for the fine-tuning loop.

    Called with the batch's logits (graph attached), labels and groups; updates λ (SGD ascent on
    the true violations), then the weights through ``primal_optimizer`` (descent on the
    Lagrangian built from the surrogates), and returns the batch's cross-entropy.
    """

    def __init__(self, problem: ExcessGapProblem, primal_optimizer, dual_lr: float, trace=None):
        if not dual_lr > 0:
            raise FairpruneError(ERR_DUAL_LR.format(value=dual_lr))
        self.problem = problem
        dual = torch.optim.SGD(problem.dual_parameters(), lr=float(dual_lr), maximize=True)
        self.optimizer = cooper.optim.AlternatingDualPrimalOptimizer(
            cmp=problem, primal_optimizers=primal_optimizer, dual_optimizers=dual
        )
        self.trace = trace
        self.steps = 0

    def __call__(self, logits: Tensor, y: Tensor, g: Tensor) -> Tensor:
        rollout = self.optimizer.roll(compute_cmp_state_kwargs={"logits": logits, "y": y, "g": g})
        self.steps += 1
        if self.trace is not None:
            # the buffers already hold this batch: psi() is what this step's dual update saw
            self.trace.append(
                StepRecord(
                    step=self.steps,
                    multipliers=self.problem.multipliers_now(),
                    psi=self.problem.psi(),
                    loss=float(rollout.loss.detach()),
                )
            )
        return rollout.loss


def constrained_step_factory(
    split, config, dense_logits: Tensor, device, trace: list | None = None
) -> Callable:
    """``make_step(primal_optimizer) -> ConstrainedStep`` for the fine-tuning loop.

    Parameters
    ----------
    split : SplitData
        The training split; ``dense_logits`` is row-aligned with it.
    config : FinetuneConfig
        ``constrained_tolerance``, ``constrained_dual_lr``, ``constrained_buffer``.
    dense_logits : Tensor
        (N, K) dense outputs on ``split``.
    device : torch.device
    trace : list, optional
        Receives one ``StepRecord`` per step.
    """
    n_groups = int(split.groups.max()) + 1 if len(split) else 1
    reference = DenseReference.from_outputs(dense_logits, split.labels, split.groups, n_groups)
    problem = ExcessGapProblem(
        reference, config.constrained_tolerance, config.constrained_buffer, device
    )
    if not config.constrained_dual_lr > 0:
        raise FairpruneError(ERR_DUAL_LR.format(value=config.constrained_dual_lr))

    def make_step(primal_optimizer) -> ConstrainedStep:
        return ConstrainedStep(problem, primal_optimizer, config.constrained_dual_lr, trace)

    return make_step
