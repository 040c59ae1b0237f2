"""Frozen configuration records: every number in the results store traces back to one of these.

``dataclasses.asdict(cfg)`` is stored with every checkpoint and every result row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class TrainConfig:
    """How a dense model is trained from scratch."""

    epochs: int = 12  # passes over the training split
    lr: float = 3e-3  # AdamW peak learning rate (cosine-decayed to 0)
    weight_decay: float = 5e-4  # AdamW decoupled weight decay
    batch_size: int = 128  # samples per optimisation step
    augment: bool = False  # random flips/crops; off keeps cached dense outputs valid
    seed: int = 0  # seeds init, shuffling and augmentation
    device: str = "auto"  # "auto" picks CUDA when present, else CPU


@dataclass(frozen=True)
class PruneConfig:
    """How one structured (or unstructured) pruning step is made."""

    criterion: str = "l1"  # key of fairprune.prune.CRITERIA
    target_reduction: float = (
        0.75  # FLOPs reduction 1 - macs_pruned/macs_dense (unstructured: sparsity)
    )
    tolerance: float = 0.01  # accepted |reached - target|, as a fraction (0.01 = 1 point)
    min_weight: float = 0.75  # PW loss w_min for PW criteria (reference default)
    gamma: float = 5.0  # PW loss focusing exponent for PW criteria (reference default)
    calib_batches: int = 4  # batches of training data used by data-driven criteria
    calib_batch_size: int = 64  # samples per calibration batch
    seed: int = 0  # seeds random importance and data order
    max_layer_ratio: float = 0.98  # no layer loses more than this fraction of its channels
    round_to: int = 1  # keep channel counts multiples of this (8: fast SIMD kernels); 1 = any
    autobot_iters: int = 200  # AutoBot gate optimisation steps (reference: CelebA 200)
    autobot_lr: float = 0.85  # AutoBot gate learning rate, Adam (reference: CelebA 0.85)
    autobot_lambda_flops: float = 2.7  # AutoBot weight of the FLOPs term (reference: CelebA 2.7)
    autobot_lambda_h: float = 0.0  # AutoBot weight of the gate-polarisation term
    taylor_step_batches: int = 4  # iterative Taylor: batches trained between removals
    taylor_step_lr: float = 0.01  # iterative Taylor: SGD learning rate between removals
    fairgrape_keep_per_iter: float = 0.9  # FairGRAPE: share of remaining weights kept per round
    fairgrape_step_batches: int = 4  # FairGRAPE: training batches fine-tuned on between rounds
    fairgrape_step_lr: float = 0.01  # FairGRAPE: SGD (momentum 0.9) learning rate of that fine-tune
    fairgrape_batch: int = 1  # FairGRAPE: weights taken per deficit check (1 = exact greedy)
    fairprune_beta: float = 0.3  # FairPrune β in (0, 1]: weight of the privileged group's saliency
    fairprune_privileged: str = ""  # FairPrune: group name or index; "" = best dense group
    fairprune_unprivileged: str = ""  # FairPrune: group name or index; "" = worst dense group
    device: str = "auto"  # "auto" picks CUDA when present, else CPU


@dataclass(frozen=True)
class FinetuneConfig:
    """How a pruned model is fine-tuned."""

    loss: str = "ce"  # key of fairprune.loss.LOSSES: ce, pw, pw_weights, pw_soft, constrained
    min_weight: float = 0.75  # PW loss w_min (reference default)
    gamma: float = 5.0  # PW loss focusing exponent γ (reference default)
    epochs: int = 4  # passes over the training split
    lr: float = 2e-3  # AdamW peak learning rate, cosine-decayed to 0
    weight_decay: float = 5e-4  # AdamW decoupled weight decay
    batch_size: int = 128  # samples per optimisation step
    augment: bool = False  # augmentation forces dense outputs to be recomputed per batch
    keep_zeros: bool = True  # weights that are exactly 0 (unstructured pruning) stay 0
    constrained_tolerance: float = 0.01  # constrained: ε bounding each group's ψ_g (paper: 1%)
    constrained_dual_lr: float = 0.01  # constrained: multipliers' SGD step (authors: 1e-4 to 1e-2)
    constrained_buffer: int = 40  # constrained: last predictions per group behind each ψ_g
    seed: int = 0  # seeds shuffling and augmentation
    device: str = "auto"  # "auto" picks CUDA when present, else CPU


@dataclass(frozen=True)
class SweepConfig:
    """A grid: criterion × loss × target FLOPs reduction × seed, on one dense model."""

    dataset: str = "synthderm"  # key of fairprune.data.DATASETS
    data_root: str | None = None  # folder holding a real dataset (None for synthderm)
    csv: str | None = None  # CSV file for the generic "csv" dataset
    dataset_options: dict = field(default_factory=dict)  # loader options (alpha, beta, variant…)
    dense_model: str = ""  # path of the dense checkpoint every cell starts from
    criteria: tuple[str, ...] = ("l1",)  # pruning criteria, keys of CRITERIA
    losses: tuple[str, ...] = ("ce", "pw")  # fine-tuning losses, keys of LOSSES
    reductions: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95)  # target FLOPs reductions
    seeds: tuple[int, ...] = (0,)  # one cell per seed
    min_weight: float = 0.75  # PW w_min used by PW losses and PW criteria
    gamma: float = 5.0  # PW γ used by PW losses and PW criteria
    finetune: FinetuneConfig = field(
        default_factory=FinetuneConfig
    )  # loss/seed overridden per cell
    prune: PruneConfig = field(default_factory=PruneConfig)  # criterion/target overridden per cell
    paired: bool = False  # True: pw_* criteria run only with PW losses, the others only with CE
    eval_split: str = "test"  # split every cell is audited on
    n_boot: int = 200  # bootstrap resamples for the 95% intervals
    name: str = ""  # optional label shown in the dashboard


def config_to_dict(cfg: object) -> dict:
    """``asdict`` for any of the configs above (tuples become lists, JSON-ready)."""
    return asdict(cfg)  # type: ignore[arg-type]


def config_from_dict(cls: type, data: dict):
    """Rebuild a config from ``config_to_dict`` output, ignoring unknown keys."""
    names = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            continue
        if key == "finetune" and isinstance(value, dict):
            value = config_from_dict(FinetuneConfig, value)
        elif key == "prune" and isinstance(value, dict):
            value = config_from_dict(PruneConfig, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
