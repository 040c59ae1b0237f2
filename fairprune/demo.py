"""The built-in demo: the paper's protocol on SynthDerm, with nothing to download.

SynthDerm's ``biased`` preset (dark skin rare in training, balanced test groups) → a small dense
CNN, a biased classifier the way the paper's dense models are → Taylor + cross-entropy against
PW-Taylor + PW (the PW loss in the channel importance and in the fine-tuning, as in the reference
code) at the five FLOPs levels of the paper's Fitzpatrick17k ResNet-34, several seeds each.
``preset="control"`` runs the same protocol on the unbiased control; ``pair="autobot"`` compares
AutoBot + CE with PW-AutoBot + PW; ``arms="all"`` adds the off-diagonal arms (Taylor + PW,
PW-Taylor + CE) and the fine-tuning ablations (``pw_weights``, ``pw_soft``).

The dense model is trained on first use and reused afterwards (matched by the dataset's
fingerprint, which the preset decides, and the training config).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

from fairprune.config import FinetuneConfig, PruneConfig, SweepConfig, TrainConfig
from fairprune.data import load_dataset
from fairprune.data.synthderm import BIASED_PRESET, CONTROL_PRESET, PRESETS
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import build_model
from fairprune.nets.checkpoint import list_models, save_dense_model
from fairprune.nets.manifest import ModelRecord
from fairprune.train import train_dense
from fairprune.utils import Progress, seed_everything

log = logging.getLogger(__name__)

DEMO_DATASET = "synthderm"
DEMO_ARCH = "demo_cnn"
DEMO_PRESET = BIASED_PRESET  # the paper's setting: the minority rare in training
# 16 epochs, cosine-decayed: the dense model fits its training split, the rare group's few images
# included, as the paper's dense models do; with 10 the setting failed its calibration (pruning did
# not widen the gap: fairprune.calibration, README "How the setting was calibrated")
DEMO_TRAIN = TrainConfig(epochs=16, lr=3e-3, batch_size=128, seed=0)
# the reference scripts' levels for the Fitzpatrick17k ResNet-34: 1 - 2^-k, k = 1..5
DEMO_LEVELS = (0.5, 0.75, 0.875, 0.9375, 0.96875)
# criterion pairs, baseline first: X + CE against PW-X + PW (``demo --criteria``)
DEMO_PAIRS: dict[str, tuple[str, str]] = {
    "taylor": ("taylor", "pw_taylor"),
    "autobot": ("autobot", "pw_autobot"),
}
DEMO_PAIR = "taylor"
DEMO_LOSSES = ("ce", "pw")  # paired: X with CE, PW-X with PW (SweepConfig.paired)
ABLATION_LOSSES = ("pw_weights", "pw_soft")  # PW's weights alone, its soft targets alone
PAPER_ARMS, ALL_ARMS = "paper", "all"
DEMO_ARMS = (PAPER_ARMS, ALL_ARMS)
DEMO_FINETUNE = FinetuneConfig(epochs=3, lr=2e-3, batch_size=128)
# the reference scripts' PW-Taylor setting for the comparable model (Fitzpatrick17k ResNet-34,
# a skin-tone minority barely seen in training): w_min 0.95, γ 3
DEMO_PW = (0.95, 3.0)
DEMO_SEEDS = (0, 1, 2, 3, 4)  # prune + fine-tune seeds: the unit of evidence
METHODS_CRITERIA = ("unstructured", "fairgrape", "fairprune")  # magnitude baseline first
METHODS_LOSSES = ("ce", "pw", "constrained")
METHODS_LEVELS = (0.5, 0.9)  # weight sparsity
METHODS_SEEDS = (0, 1, 2)
DEMO_N_BOOT = 50  # fairlearn resamples per cell for its per-group display bands; every comparison
# (the headline, gaps, drops) uses the paired bootstrap with 2,000 replicates (fairprune.intervals)


ERR_DENSE_STOPPED = (
    "the demo's dense model was stopped before it finished training and was not saved; run the "
    "demo again to train it."
)
ERR_DEMO_PAIR = "unknown demo criteria {name!r}; choose one of: {choices}."


ERR_DEMO_ARMS = "unknown demo arms {name!r}; choose one of: {choices}."


def demo_options(preset: str = DEMO_PRESET) -> dict:
    """The demo's SynthDerm options for ``preset`` (the sweep's ``dataset_options``)."""
    return {"preset": preset}


def demo_model_name(preset: str = DEMO_PRESET) -> str:
    """The stored name of the demo's dense model trained on ``preset``."""
    return f"synthderm-{preset}-{DEMO_ARCH}-dense"


def _dense_config(options: dict) -> dict:
    """What made a demo dense model, as its manifest stores it."""
    return {"train": asdict(DEMO_TRAIN), "dataset_options": dict(options)}


def find_demo_model(
    models_dir: str | Path, *, preset: str = DEMO_PRESET, options: dict | None = None
) -> ModelRecord | None:
    """The stored demo dense model made with today's data (``preset``) and training config.

    ``options`` replaces the preset's dataset options (the calibration script's variants).
    """
    options = demo_options(preset) if options is None else dict(options)
    bundle = load_dataset(DEMO_DATASET, **options)
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
    models_dir: str | Path,
    *,
    progress: Progress | None = None,
    should_stop=None,
    preset: str = DEMO_PRESET,
    options: dict | None = None,
) -> ModelRecord:
    """Return the demo's dense model record, training and saving it first if needed.

    Parameters
    ----------
    models_dir : path
        The model store.
    progress : callable, optional
        ``progress(step, total_steps, info)`` during training.
    preset : str, default "biased"
        SynthDerm's preset (``fairprune.data.synthderm.PRESETS``); ``"control"``: unbiased.
    options : dict, optional
        SynthDerm options replacing the preset's (``{"preset": ..., "train_proportions": ...}``).

    Returns
    -------
    ModelRecord
        The saved dense checkpoint (``record.path`` is loadable with ``load_model``).
    """
    options = demo_options(preset) if options is None else dict(options)
    found = find_demo_model(models_dir, options=options)
    if found is not None:
        return found
    bundle = load_dataset(DEMO_DATASET, **options)
    seed_everything(DEMO_TRAIN.seed)  # before building: the initial weights come from the seed
    model = build_model(DEMO_ARCH, bundle.num_classes, bundle.input_size)
    log.info("training the demo dense model (%s on %s, %s)", DEMO_ARCH, bundle.title, options)
    train_dense(
        model, bundle.splits["train"], DEMO_TRAIN, progress=progress, should_stop=should_stop
    )
    if should_stop is not None and should_stop():
        # a half-trained model must never be stored as the demo's: later runs would reuse it
        raise FairpruneError(ERR_DENSE_STOPPED)
    name = demo_model_name(options.get("preset", CONTROL_PRESET))
    if options != demo_options(options.get("preset", CONTROL_PRESET)):
        name += "-" + bundle.fingerprint.removeprefix("synthderm-")[:8]  # a variant: its own name
    return save_dense_model(
        model, models_dir, name, bundle=bundle, arch=DEMO_ARCH,
        num_outputs=bundle.num_classes, config=_dense_config(options),
    )  # fmt: skip


def demo_sweep_config(
    dense_path: str | Path,
    *,
    pair: str = DEMO_PAIR,
    arms: str = PAPER_ARMS,
    preset: str = DEMO_PRESET,
    seeds: tuple[int, ...] = DEMO_SEEDS,
    options: dict | None = None,
) -> SweepConfig:
    """The demo's grid: the paper's protocol on SynthDerm.

    Parameters
    ----------
    dense_path : path
        The demo's dense checkpoint (``ensure_demo_model(..., preset=preset)``).
    pair : {"taylor", "autobot"}, default "taylor"
        X + CE against PW-X + PW (``DEMO_PAIRS``).
    arms : {"paper", "all"}, default "paper"
        ``paper``: the two arms above (``paired``); ``all``: each criterion of the pair with CE,
        PW and the ablations ``pw_weights`` and ``pw_soft`` (the off-diagonal arms included).
    preset : str, default "biased"
        SynthDerm's preset; ``"control"`` is the unbiased control.
    seeds : tuple of int
        Prune + fine-tune seeds.
    options : dict, optional
        SynthDerm options replacing the preset's.

    Returns
    -------
    SweepConfig
    """
    if pair not in DEMO_PAIRS:
        raise FairpruneError(ERR_DEMO_PAIR.format(name=pair, choices=", ".join(DEMO_PAIRS)))
    if arms not in DEMO_ARMS:
        raise FairpruneError(ERR_DEMO_ARMS.format(name=arms, choices=", ".join(DEMO_ARMS)))
    if preset not in PRESETS:  # the dataset layer says it too, but only once the sweep loads
        from fairprune.data.synthderm import ERR_UNKNOWN_PRESET

        raise FairpruneError(ERR_UNKNOWN_PRESET.format(name=preset, choices=", ".join(PRESETS)))
    options = demo_options(preset) if options is None else dict(options)
    every = arms == ALL_ARMS
    title = "SynthDerm demo" if preset == DEMO_PRESET else f"SynthDerm demo ({preset})"
    detail = [] if pair == DEMO_PAIR else [pair]
    detail += ["all arms"] if every else []
    return SweepConfig(
        dataset=DEMO_DATASET,
        dataset_options=options,
        dense_model=str(dense_path),
        criteria=DEMO_PAIRS[pair],
        losses=DEMO_LOSSES + ABLATION_LOSSES if every else DEMO_LOSSES,
        reductions=DEMO_LEVELS,
        seeds=tuple(seeds),
        min_weight=DEMO_PW[0],
        gamma=DEMO_PW[1],
        finetune=DEMO_FINETUNE,
        prune=PruneConfig(),
        paired=not every,
        n_boot=DEMO_N_BOOT,
        name=title + (f", {', '.join(detail)}" if detail else ""),
    )


def methods_sweep_config(dense_path: str | Path, *, preset: str = DEMO_PRESET) -> SweepConfig:
    """The methods comparison on the demo's dense model: magnitude, FairGRAPE and FairPrune
    (unstructured, weight sparsity 50% and 90%) × CE, PW and constrained fine-tuning × three
    seeds, with the demo's fine-tuning and PW settings and every method's defaults — one protocol,
    nothing tuned toward any method."""
    return replace(
        demo_sweep_config(dense_path, preset=preset),
        criteria=METHODS_CRITERIA,
        losses=METHODS_LOSSES,
        reductions=METHODS_LEVELS,
        seeds=METHODS_SEEDS,
        paired=False,  # every method with every loss
        name="SynthDerm methods" + ("" if preset == DEMO_PRESET else f" ({preset})"),
    )
