"""The paper's experiments (Meyer & Wong 2022) as named presets, one command each.

Each preset names the dataset and its options, the architecture, the FLOPs-reduction levels, the
criteria, the PW settings and the reference code's fine-tuning learning rate, epochs and batch size.
``--quick`` shrinks any of them to a CPU-sized subset that runs in minutes: it checks the pipeline on
your data, it does not reproduce the paper's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig, TrainConfig

ERR_UNKNOWN_PRESET = "unknown experiment {name!r}; choose one of: {choices}."


@dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments."""

    dataset: str  # key of fairprune.data.DATASETS
    dataset_options: dict  # loader options (variant, alpha, beta, image_size…)
    arch: str  # key of fairprune.nets.ARCHITECTURES
    num_outputs_binary_single_logit: bool  # CelebA's reference model has one sigmoid output
    reductions: tuple[float, ...]  # the paper's FLOPs-reduction levels
    criteria: tuple[str, ...]  # CE and PW forms of the criteria the paper compares
    min_weight: float  # PW w_min
    gamma: float  # PW γ
    finetune: FinetuneConfig  # the reference's fine-tuning lr, epochs, batch size
    train: TrainConfig  # dense training from scratch (no pretrained weights can be fetched)
    prune: PruneConfig = field(default_factory=PruneConfig)  # AutoBot / Taylor settings
    note: str = ""  # shown by --help


EXPERIMENTS: dict[str, Experiment] = {
    "celeba": Experiment(
        dataset="celeba",
        dataset_options={"target": "Blond_Hair", "group": "Male", "image_size": 64},
        arch="resnet18",
        num_outputs_binary_single_logit=True,
        reductions=(0.9375, 0.9688, 0.9844, 0.9922, 0.9961),
        criteria=("autobot", "pw_autobot", "taylor", "pw_taylor"),
        min_weight=0.3,
        gamma=1.0,
        finetune=FinetuneConfig(epochs=30, lr=1e-4, batch_size=256),
        train=TrainConfig(epochs=20, lr=1e-3, batch_size=256),
        prune=PruneConfig(autobot_iters=200, autobot_lr=0.85, autobot_lambda_flops=2.7),
        note="ResNet-18, Blond_Hair by Male; PW w_min 0.3, γ 1 (AutoBot setting)",
    ),
    "fitzpatrick17k": Experiment(
        dataset="fitzpatrick17k",
        dataset_options={"image_size": 128},
        arch="resnet34",
        num_outputs_binary_single_logit=False,
        reductions=(0.5, 0.75, 0.875, 0.9375, 0.96875),
        criteria=("autobot", "pw_autobot", "taylor", "pw_taylor"),
        min_weight=0.8,
        gamma=2.5,
        finetune=FinetuneConfig(epochs=30, lr=1e-4, batch_size=64),
        train=TrainConfig(epochs=30, lr=1e-3, batch_size=64, augment=True),
        prune=PruneConfig(autobot_iters=400, autobot_lr=1.5, autobot_lambda_flops=0.5),
        note="ResNet-34, three-partition label, trained on types 1–2; w_min 0.8, γ 2.5",
    ),
    "cifar10-imbalanced": Experiment(
        dataset="cifar10",
        dataset_options={"variant": "imbalanced"},
        arch="resnet56",
        num_outputs_binary_single_logit=False,
        reductions=(0.5, 0.75, 0.875, 0.9375),
        criteria=("autobot", "pw_autobot", "taylor", "pw_taylor"),
        min_weight=0.75,
        gamma=5.0,
        finetune=FinetuneConfig(epochs=200, lr=1e-3, batch_size=256, augment=True),
        train=TrainConfig(epochs=200, lr=1e-3, batch_size=256, augment=True),
        note="ResNet-56, 80% of training cats and dogs dropped; reference default w_min, γ",
    ),
}
# the shortcut variant is the imbalanced experiment's protocol on other data
EXPERIMENTS["cifar10-shortcut"] = replace(
    EXPERIMENTS["cifar10-imbalanced"],
    dataset_options={"variant": "shortcut"},
    note="ResNet-56, a coloured square on 98% of training dogs",
)

QUICK_LIMIT = 2000  # training images kept by --quick
QUICK_TEST_LIMIT = 600  # test images kept by --quick


def get_experiment(name: str) -> Experiment:
    """Look an experiment up by name, with a clear error."""
    from fairprune.errors import FairpruneError

    if name not in EXPERIMENTS:
        raise FairpruneError(ERR_UNKNOWN_PRESET.format(name=name, choices=", ".join(EXPERIMENTS)))
    return EXPERIMENTS[name]


def quick(exp: Experiment) -> Experiment:
    """A CPU-sized version: small images, a data subset, two levels, 1-2 epochs, few iterations."""
    opts = dict(exp.dataset_options)
    opts["image_size"] = 32
    opts["limit"] = QUICK_LIMIT
    opts["test_limit"] = QUICK_TEST_LIMIT
    return replace(
        exp,
        dataset_options=opts,
        arch="resnet18" if exp.arch != "resnet56" else "resnet56",
        reductions=exp.reductions[:2],
        criteria=tuple(c for c in exp.criteria if "autobot" in c) or exp.criteria[:2],
        finetune=replace(exp.finetune, epochs=1, augment=False),
        train=replace(exp.train, epochs=2, augment=False),
        prune=replace(exp.prune, autobot_iters=30),
    )


def sweep_config(
    exp: Experiment, *, dense_path: str, data_root: str, device: str = "auto"
) -> SweepConfig:
    """The experiment's grid as a SweepConfig, CE and PW fine-tuning for every criterion."""
    return SweepConfig(
        dataset=exp.dataset,
        data_root=data_root,
        dataset_options=dict(exp.dataset_options),
        dense_model=dense_path,
        criteria=exp.criteria,
        losses=("ce", "pw"),
        reductions=exp.reductions,
        seeds=(0,),
        paired=True,
        min_weight=exp.min_weight,
        gamma=exp.gamma,
        finetune=replace(exp.finetune, device=device),
        prune=replace(exp.prune, device=device),
        name=f"reproduce {exp.dataset} {exp.arch}",
    )
