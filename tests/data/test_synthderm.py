"""SynthDerm: deterministic generation, group proportions, lower contrast on darker skin."""

from __future__ import annotations

import inspect

import numpy as np
import torch

from fairprune.data import load_dataset, synthderm
from fairprune.data.base import summarize

SMALL = {"n_train": 80, "n_val": 30, "n_test": 60, "image_size": 16}


def test_same_seed_same_bytes_other_seed_differs(monkeypatch):
    monkeypatch.setenv("FAIRPRUNE_CACHE", "off")  # the generator itself, not its cache
    a = synthderm.load_synthderm(seed=0, **SMALL)
    b = synthderm.load_synthderm(seed=0, **SMALL)
    c = synthderm.load_synthderm(seed=1, **SMALL)
    for name in ("train", "val", "test"):
        assert torch.equal(a.splits[name].images, b.splits[name].images)
        assert (a.splits[name].labels == b.splits[name].labels).all()
    assert not torch.equal(a.splits["train"].images, c.splits["train"].images)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    d = synthderm.load_synthderm(seed=0, **dict(SMALL, difficulty=0.5))
    assert d.fingerprint != a.fingerprint


def test_shapes_names_and_flags():
    bundle = synthderm.load_synthderm(seed=0, **SMALL)
    images = bundle.splits["train"].images
    assert images.dtype == torch.uint8 and tuple(images.shape) == (80, 3, 16, 16)
    assert bundle.title == "SynthDerm (synthetic)" and bundle.synthetic
    assert "SYNTHETIC" in bundle.description
    assert bundle.class_names == ["benign", "malignant"]
    assert bundle.group_names == ["light", "medium", "dark"]
    assert bundle.splits["test"].ids[42] == "synthderm-test-00042"
    big = synthderm.load_synthderm(seed=0, n_train=6, n_val=3, n_test=3, image_size=64)
    assert tuple(big.splits["test"].images.shape) == (3, 3, 64, 64)


def test_group_proportions():
    bundle = synthderm.load_synthderm(seed=0, **SMALL, train_proportions=(0.6, 0.25, 0.15))
    # floor(80 * share) per group, the remainder to the first group: 48, 20, 12
    assert np.bincount(bundle.splits["train"].groups).tolist() == [48, 20, 12]
    assert np.bincount(bundle.splits["val"].groups).tolist() == [10, 10, 10]
    assert np.bincount(bundle.splits["test"].groups).tolist() == [20, 20, 20]
    skew = synthderm.load_synthderm(seed=0, **SMALL, train_proportions=(7, 2, 1))
    assert np.bincount(skew.splits["train"].groups).tolist() == [56, 16, 8]
    # the defaults: at least 600 test images per skin tone, training skewed toward light
    defaults = inspect.signature(synthderm.load_synthderm).parameters
    assert defaults["n_test"].default // 3 >= 600
    assert defaults["preset"].default == "control"
    shares = synthderm.PRESETS["control"]["train_proportions"]
    assert shares[0] == max(shares) and shares[0] > 1 / 3  # light is the majority


def test_lesion_contrast_lower_on_darker_skin():
    split = synthderm.load_synthderm(seed=0, n_train=6, n_val=3, n_test=600, image_size=16)
    x = split.splits["test"].images.float()  # (600, 3, 16, 16)
    centre = x[:, :, 6:10, 6:10].mean((2, 3))  # (N, 3) inside the lesion
    ring = torch.ones(16, 16, dtype=torch.bool)
    ring[2:14, 2:14] = False
    skin = x[:, :, ring].mean(-1)  # (N, 3) the frame of skin around it
    contrast = (skin - centre).sum(1).numpy()
    groups = split.splits["test"].groups
    light, medium, dark = (contrast[groups == g].mean() for g in range(3))
    # seed 0: about 323, 226 and 139 summed RGB levels
    assert light > medium > dark
    assert dark < 0.6 * light


def test_features_overlap_controlled_by_difficulty():
    y = np.repeat([0, 1], 20000)
    rng = np.random.default_rng(0)
    easy = synthderm._features(rng, y, np.zeros_like(y), difficulty=0.0)
    same = synthderm._features(rng, y, np.zeros_like(y), difficulty=1.0)
    gap = easy["irregularity"][y == 1].mean() - easy["irregularity"][y == 0].mean()
    assert 0.10 < gap < 0.13  # 0.12 before clipping at 0
    for values in same.values():
        assert abs(values[y == 1].mean() - values[y == 0].mean()) < 0.01


def test_registry_caches_and_batches_cover_every_row():
    a = load_dataset("synthderm", seed=3, **SMALL)
    assert load_dataset("synthderm", seed=3, **SMALL) is a  # generated once per process
    split = a.splits["val"]
    rows = []
    for x, y, g, idx in split.batches(8, shuffle=True, seed=1, augment=True):
        assert x.dtype == torch.float32 and tuple(x.shape[1:]) == (3, 16, 16)
        assert (g.numpy() == split.groups[idx.numpy()]).all()
        assert (y.numpy() == split.labels[idx.numpy()]).all()
        rows.extend(idx.tolist())
    assert sorted(rows) == list(range(30))
    table = summarize(a)
    assert table.groupby("split")["n"].sum().to_dict() == {"test": 60, "train": 80, "val": 30}


def _same_splits(a, b) -> None:
    assert a.fingerprint == b.fingerprint
    for name in ("train", "val", "test"):
        sa, sb = a.splits[name], b.splits[name]
        assert torch.equal(sa.images, sb.images) and sa.images.dtype == torch.uint8
        np.testing.assert_array_equal(sa.labels, sb.labels)
        np.testing.assert_array_equal(sa.groups, sb.groups)
        assert sa.ids == sb.ids


def test_the_disk_cache_gives_the_generated_bytes_and_survives_damage(tmp_path, monkeypatch):
    opts = {"limit": 120, "test_limit": 90, "n_val": 30}
    monkeypatch.setenv("FAIRPRUNE_CACHE", "off")
    fresh = synthderm.load_synthderm(**opts)
    assert synthderm.cache_dir() is None

    monkeypatch.setenv("FAIRPRUNE_CACHE", str(tmp_path))
    first = synthderm.load_synthderm(**opts)  # generated, then written
    (cached,) = tmp_path.glob("synthderm-*.safetensors")
    _same_splits(fresh, first)
    _same_splits(fresh, synthderm.load_synthderm(**opts))  # read back from the cache
    assert not list(tmp_path.glob("*.tmp"))  # written atomically

    cached.write_bytes(cached.read_bytes()[:-100])  # truncated: regenerated, never trusted
    _same_splits(fresh, synthderm.load_synthderm(**opts))
    cached.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # foreign: regenerated
    _same_splits(fresh, synthderm.load_synthderm(**opts))
    other = synthderm.load_synthderm(**{**opts, "seed": 1})  # other options: another file
    assert len(list(tmp_path.glob("synthderm-*.safetensors"))) == 2
    assert not torch.equal(other.splits["test"].images, fresh.splits["test"].images)
