"""The built-in demo: SynthDerm → a small dense CNN → a CE-vs-PW sweep up to 97% FLOPs reduction.

Everything is synthetic and made on the spot: no download. The dense model is trained on first use
and reused afterwards (matched by dataset fingerprint and training config).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig, TrainConfig
from fairprune.data import load_dataset
from fairprune.nets.architectures import build_model
from fairprune.nets.checkpoint import list_models, save_dense_model
from fairprune.nets.manifest import ModelRecord
from fairprune.train import train_dense
from fairprune.utils import Progress, seed_everything

log = logging.getLogger(__name__)

DEMO_DATASET = "synthderm"
DEMO_ARCH = "demo_cnn"
DEMO_MODEL_NAME = "synthderm-demo_cnn-dense"
DEMO_TRAIN = TrainConfig(epochs=10, lr=3e-3, batch_size=128, seed=0)
DEMO_LEVELS = (0.5, 0.9, 0.97)
DEMO_FINETUNE = FinetuneConfig(epochs=3, lr=2e-3, batch_size=128)
DEMO_PW = (0.75, 5.0)  # the reference code's default (w_min, γ)
DEMO_SEEDS = (0, 1, 2)  # prune + fine-tune seeds: the unit of evidence
METHODS_CRITERIA = ("unstructured", "fairgrape", "fairprune")  # magnitude baseline first
METHODS_LOSSES = ("ce", "pw", "constrained")
METHODS_LEVELS = (0.5, 0.9)  # weight sparsity
DEMO_N_BOOT = 50  # fairlearn resamples per cell for its per-group display bands; every comparison
# (the headline, gaps, drops) uses the paired bootstrap with 2,000 replicates (fairprune.intervals)


def find_demo_model(models_dir: str | Path) -> ModelRecord | None:
    """The stored demo dense model made with today's data and training config, if any."""
    bundle = load_dataset(DEMO_DATASET)
    want = asdict(DEMO_TRAIN)
    for record in list_models(models_dir):
        if (
            record.kind == "dense"
            and record.dataset == DEMO_DATASET
            and record.arch == DEMO_ARCH
            and record.dataset_fingerprint == bundle.fingerprint
            and record.config.get("train") == want
        ):
            return record
    return None


def ensure_demo_model(
    models_dir: str | Path, *, progress: Progress | None = None, should_stop=None
) -> ModelRecord:
    """Return the demo's dense model record, training and saving it first if needed.

    Parameters
    ----------
    models_dir : path
        The model store.
    progress : callable, optional
        ``progress(step, total_steps, info)`` during training.

    Returns
    -------
    ModelRecord
        The saved dense checkpoint (``record.path`` is loadable with ``load_model``).
    """
    found = find_demo_model(models_dir)
    if found is not None:
        return found
    bundle = load_dataset(DEMO_DATASET)
    seed_everything(DEMO_TRAIN.seed)  # before building: the initial weights come from the seed
    model = build_model(DEMO_ARCH, bundle.num_classes, bundle.input_size)
    log.info("training the demo dense model (%s on %s)", DEMO_ARCH, bundle.title)
    train_dense(
        model, bundle.splits["train"], DEMO_TRAIN, progress=progress, should_stop=should_stop
    )
    return save_dense_model(
        model, models_dir, DEMO_MODEL_NAME, bundle=bundle, arch=DEMO_ARCH,
        num_outputs=bundle.num_classes, config={"train": asdict(DEMO_TRAIN)},
    )  # fmt: skip


def demo_sweep_config(dense_path: str | Path, *, criterion: str = "l1") -> SweepConfig:
    """The demo's grid: one criterion × {CE, PW} × the demo's levels × three seeds."""
    return SweepConfig(
        dataset=DEMO_DATASET,
        dense_model=str(dense_path),
        criteria=(criterion,),
        losses=("ce", "pw"),
        reductions=DEMO_LEVELS,
        seeds=DEMO_SEEDS,
        min_weight=DEMO_PW[0],
        gamma=DEMO_PW[1],
        finetune=DEMO_FINETUNE,
        prune=PruneConfig(),
        n_boot=DEMO_N_BOOT,
        name="SynthDerm demo",
    )


def methods_sweep_config(dense_path: str | Path) -> SweepConfig:
    """The methods comparison on the demo's dense model: magnitude, FairGRAPE and FairPrune
    (unstructured, weight sparsity 50% and 90%) × CE, PW and constrained fine-tuning × three
    seeds, with the demo's fine-tuning and PW settings and every method's defaults — one protocol,
    nothing tuned toward any method."""
    return replace(
        demo_sweep_config(dense_path),
        criteria=METHODS_CRITERIA,
        losses=METHODS_LOSSES,
        reductions=METHODS_LEVELS,
        name="SynthDerm methods",
    )
