"""SynthDerm's presets: the control unchanged, the biased preset's training shares, the errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fairprune.data import load_dataset, synthderm
from fairprune.data.options import ERR_OPTION_TYPE
from fairprune.errors import FairpruneError

SMALL = {"n_train": 80, "n_val": 30, "n_test": 60, "image_size": 16}


def _digest(bundle) -> str:
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        split = bundle.splits[name]
        h.update(split.images.numpy().tobytes())
        h.update(split.labels.tobytes())
        h.update(split.groups.tobytes())
    return h.hexdigest()


def test_the_control_is_the_default_and_unchanged(monkeypatch):
    monkeypatch.setenv("FAIRPRUNE_CACHE", "off")  # the generator itself, not its cache
    default = synthderm.load_synthderm(**SMALL)
    control = synthderm.load_synthderm(preset="control", **SMALL)
    explicit = synthderm.load_synthderm(train_proportions=(0.45, 0.25, 0.3), **SMALL)
    # the generator before presets existed (commit 7c01936) made exactly these bytes and this id
    assert default.fingerprint == control.fingerprint == explicit.fingerprint
    assert default.fingerprint == "synthderm-b5b91f03eba88f84"
    want = "e57f14df5d10ca0ce75b7025a86f2814dc7faf4a23230c212788c8ddfa8efe61"
    assert _digest(default) == _digest(control) == want
    assert synthderm.PRESETS["control"] == {"train_proportions": (0.45, 0.25, 0.3)}
    assert "preset 'control'" in default.description


def test_the_biased_preset_makes_dark_skin_rare_in_training_only():
    shares = synthderm.PRESETS["biased"]["train_proportions"]
    control = synthderm.PRESETS["control"]["train_proportions"]
    dark = shares[2] / sum(shares)
    assert shares[2] == min(shares) and dark < 0.15  # dark: rare in training (13.6%)
    assert dark < control[2] / sum(control) / 2  # under half the control's 30%
    bundle = load_dataset("synthderm", preset="biased", **dict(SMALL, n_train=600))
    counts = np.bincount(bundle.splits["train"].groups, minlength=3).tolist()
    # floor(600 * share) per group, the remainder to the first group
    want = [int(np.floor(600 * s / sum(shares))) for s in shares]
    want[0] += 600 - sum(want)
    assert counts == want
    assert np.bincount(bundle.splits["val"].groups).tolist() == [10, 10, 10]
    assert np.bincount(bundle.splits["test"].groups).tolist() == [20, 20, 20]  # balanced
    other = load_dataset("synthderm", preset="control", **SMALL)
    assert bundle.fingerprint != other.fingerprint
    assert "preset 'biased'" in bundle.description


def test_explicit_shares_replace_the_presets():
    a = synthderm.load_synthderm(preset="biased", train_proportions=(7, 2, 1), **SMALL)
    b = synthderm.load_synthderm(preset="control", train_proportions=(7, 2, 1), **SMALL)
    assert np.bincount(a.splits["train"].groups).tolist() == [56, 16, 8]
    assert a.fingerprint == b.fingerprint  # the same data: the preset only names values
    assert "shares given explicitly" in a.description


def test_an_unknown_preset_is_one_line():
    with pytest.raises(FairpruneError) as err:
        load_dataset("synthderm", preset="fair", **SMALL)
    assert str(err.value) == "unknown SynthDerm preset 'fair'; choose one of: control, biased."
    assert str(err.value) == synthderm.ERR_UNKNOWN_PRESET.format(
        name="fair", choices="control, biased"
    )
    with pytest.raises(FairpruneError) as err:
        load_dataset("synthderm", preset=3, **SMALL)
    assert str(err.value) == ERR_OPTION_TYPE.format(
        name="synthderm", option="preset", expected="text", value="3"
    )


def test_the_biased_preset_trains_a_biased_model_and_the_control_does_not():
    # the setting's direction on a small SynthDerm (16 px, 900 training images, 6 epochs): the
    # dense model trained on the biased preset is much worse on dark skin than on light skin,
    # the control's is not (the demo's own figures: scripts/calibrate_synthderm.py)
    import torch

    from fairprune.config import TrainConfig
    from fairprune.evaluate import predict
    from fairprune.intervals import group_accuracy
    from fairprune.nets.architectures import build_model
    from fairprune.train import train_dense
    from fairprune.utils import seed_everything

    light_minus_dark = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        for preset in ("control", "biased"):
            bundle = load_dataset(
                "synthderm", preset=preset, limit=900, n_val=30, test_limit=600, image_size=16
            )
            seed_everything(0)
            model = build_model("demo_cnn", 2, 16)
            train_dense(model, bundle.splits["train"], TrainConfig(epochs=6, batch_size=64))
            preds = predict(model, bundle.splits["test"])
            acc = group_accuracy(preds.correct, preds.groups)[0]  # (3,) light, medium, dark
            light_minus_dark[preset] = float(acc[0] - acc[2])
    finally:
        torch.set_num_threads(threads)
    # seed 0, 2 threads: control 7.5 points, biased 26.0 points
    assert light_minus_dark["biased"] > 0.15
    assert light_minus_dark["biased"] > light_minus_dark["control"] + 0.10
