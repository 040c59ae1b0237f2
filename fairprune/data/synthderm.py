"""SynthDerm: a synthetic, dermatology-like image set for the demo. No real patient data.

Each image is a "lesion" on a patch of "skin". The label (benign / malignant) follows the spirit of
the ABCD rule: malignant lesions tend to have an irregular border, varied colour and a larger
diameter; the distributions overlap, and a little label noise keeps any model below 100%. The
sensitive attribute is skin tone (light / medium / dark, like Fitzpatrick I–II, III–IV, V–VI).
As in real clinical photos, a lesion contrasts less with darker skin; and here malignancy on dark
skin shows in colour variegation rather than in shape, a presentation the light-skinned majority
never shows, so a model has to spend capacity on it (and pruning is tempted to drop it).
Validation and test splits are balanced per group; the training split's shares come from a preset:

- ``control`` (the default): 45/25/30 light/medium/dark. Every tone is well represented and the
  dense model is about equally accurate on all three: the unbiased control.
- ``biased``: dark skin is rare in training (see ``PRESETS``), as in the paper's settings
  (Fitzpatrick17k trained on types 1–2, CelebA's rare blond men), so the dense model is a biased
  classifier the way the paper's are. Only this setting was calibrated, with the demo's 16-epoch
  dense training (the dense model's gap, no group near 100%, Taylor + CE pruning widening the gap:
  ``fairprune.calibration``, ``scripts/calibrate_synthderm.py``); nothing in it was tuned toward
  any pruning method or loss.

An explicit ``train_proportions`` overrides the preset's.

Generation is vectorised (NumPy) and deterministic for a seed: ~13k 32-px images in about 4 s.
The generated splits are kept in a disk cache (``FAIRPRUNE_CACHE``, default
``~/.cache/fairprune``; ``off`` disables it) as safetensors, keyed by the options, this module's
source and NumPy's version, so every later process (the dashboard, a Ray worker, the tests) reads
the same bytes in a fraction of a second instead of generating them again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from fairprune.data.base import DatasetBundle, SplitData
from fairprune.errors import FairpruneError
from fairprune.utils import stable_hash

log = logging.getLogger(__name__)

GENERATOR_VERSION = 5
CLASS_NAMES = ["benign", "malignant"]
GROUP_NAMES = ["light", "medium", "dark"]
# base skin colours (RGB, 0-255), roughly Fitzpatrick I–II, III–IV, V–VI
SKIN_RGB = np.array([[232, 196, 172], [196, 148, 114], [138, 98, 74]], dtype=np.float32)
# colour of the variegated second tone relative to the lesion's base colour, per group: on dark
# skin malignant variegation shows as lighter blue-grey areas (a presentation the majority of the
# training data never shows), on light and medium skin as darker red-purple areas
SECOND_TONE = np.array([[0.75, 0.65, 1.06], [0.75, 0.65, 1.06], [1.4, 1.45, 1.7]], dtype=np.float32)
# on dark skin: what remains of the shape cues' class difference, and how much stronger the
# colour-variegation difference is
DARK_SHAPE_GAIN = 0.0
DARK_VARIEGATION_GAIN = 2.5
# how strongly a lesion darkens the skin beneath it, per group: less visible on darker skin
LESION_DARKENING = np.array([0.55, 0.5, 0.55], dtype=np.float32)

CONTROL_PRESET = "control"
BIASED_PRESET = "biased"
PRESETS: dict[str, dict] = {
    # today's generator settings, unchanged bytes: every tone well represented in training
    CONTROL_PRESET: {"train_proportions": (0.45, 0.25, 0.3)},
    # dark skin rare in training (the paper's dense models never or rarely see the minority);
    # calibrated on the setting only, see scripts/calibrate_synthderm.py
    BIASED_PRESET: {"train_proportions": (0.57, 0.38, 0.15)},  # 52/35/14%: 818 of 6000 dark
}
"""Named training-split settings; the preset's values apply where the caller passes none."""


ERR_UNKNOWN_PRESET = "unknown SynthDerm preset {name!r}; choose one of: {choices}."


def _features(
    rng: np.random.Generator, y: np.ndarray, g: np.ndarray, difficulty: float
) -> dict[str, np.ndarray]:
    """Per-image lesion features; class-conditional with overlap set by ``difficulty``.

    On dark skin malignancy shows in colour variegation rather than in shape (border, asymmetry,
    size): a presentation the light-skinned majority of the training data never shows, so a
    model must spend capacity on it, and a pruned model is tempted to drop it.
    """
    n = len(y)
    m = y.astype(np.float32)  # 1 = malignant
    shift = 1.0 - difficulty  # 1: well separated, 0: identical distributions
    shape = np.where(g == 2, DARK_SHAPE_GAIN, 1.0).astype(np.float32)
    colour = np.where(g == 2, DARK_VARIEGATION_GAIN, 1.0).astype(np.float32)
    return {
        # border irregularity amplitude (A/B of ABCD)
        "irregularity": np.clip(rng.normal(0.08 + 0.12 * shift * m * shape, 0.05, n), 0.0, 0.45),
        # colour variegation: mix of a second, bluish-red tone (C)
        "variegation": np.clip(rng.normal(0.15 + 0.35 * shift * m * colour, 0.15, n), 0.0, 1.0),
        # diameter as a fraction of the image side (D)
        "radius": np.clip(rng.normal(0.20 + 0.05 * shift * m * shape, 0.035, n), 0.10, 0.40),
        # asymmetry: elongation of the lesion ellipse
        "elongation": np.clip(rng.normal(1.05 + 0.25 * shift * m * shape, 0.12, n), 0.8, 1.9),
    }


def _render(
    rng: np.random.Generator,
    y: np.ndarray,
    g: np.ndarray,
    size: int,
    difficulty: float,
    darkening: np.ndarray = LESION_DARKENING,
) -> np.ndarray:
    """Render images (N, 3, S, S) uint8."""
    n = len(y)
    f = _features(rng, y, g, difficulty)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size  # (S,)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (S, S)
    cx = rng.uniform(0.38, 0.62, n).astype(np.float32)[:, None, None]
    cy = rng.uniform(0.38, 0.62, n).astype(np.float32)[:, None, None]
    rot = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    dx, dy = xx[None] - cx, yy[None] - cy  # (N, S, S)
    # rotate, stretch one axis (asymmetry)
    u = dx * np.cos(rot) + dy * np.sin(rot)
    v = -dx * np.sin(rot) + dy * np.cos(rot)
    u = u / f["elongation"][:, None, None]
    r = np.sqrt(u**2 + v**2)
    theta = np.arctan2(v, u)
    # irregular border: radius modulated by a few random harmonics
    border = np.ones_like(r)
    for k in (3, 5, 7):
        phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
        amp = (f["irregularity"] * rng.uniform(0.5, 1.0, n)).astype(np.float32)[:, None, None]
        border = border + amp * np.sin(k * theta + phase) / 1.5
    radius = f["radius"].astype(np.float32)[:, None, None] * border
    edge = 1.5 / size  # soft edge, about one pixel
    mask = np.clip((radius - r) / edge + 0.5, 0.0, 1.0)  # (N, S, S) lesion coverage

    # skin: group base colour, per-image jitter, lighting gradient, fine texture
    skin = SKIN_RGB[g][:, :, None, None] * rng.normal(1.0, 0.05, (n, 1, 1, 1)).astype(np.float32)
    light_dir = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    lighting = 1.0 + 0.12 * (
        (xx[None] - 0.5) * np.cos(light_dir) + (yy[None] - 0.5) * np.sin(light_dir)
    )
    img = skin * lighting[:, None] * rng.normal(1.0, 0.03, (n, 1, size, size)).astype(np.float32)

    # lesion colour: darkened skin (brown), variegated toward a bluish-red second tone in blotches
    dark = darkening[g][:, None, None, None] * rng.normal(1.0, 0.08, (n, 1, 1, 1)).astype(
        np.float32
    )
    lesion = skin * (1.0 - dark) * np.array([1.0, 0.85, 0.8], dtype=np.float32)[None, :, None, None]
    second = lesion * SECOND_TONE[g][:, :, None, None]
    blotch_phase = rng.uniform(0, 2 * np.pi, (n, 2)).astype(np.float32)
    blotches = 0.5 + 0.5 * np.sin(
        9 * xx[None] + blotch_phase[:, 0, None, None]
    ) * np.sin(7 * yy[None] + blotch_phase[:, 1, None, None])  # fmt: skip
    mix = (f["variegation"].astype(np.float32)[:, None, None] * blotches)[:, None]
    lesion = lesion * (1 - mix) + second * mix
    img = img * (1 - mask[:, None]) + lesion * mask[:, None]

    # a few hair-like dark strokes on some images
    hairy = rng.random(n) < 0.35
    for i in np.flatnonzero(hairy):
        for _ in range(rng.integers(1, 4)):
            a, b = rng.uniform(-1, 1, 2)
            c = rng.uniform(0.2, 0.8)
            dist = np.abs(a * (xx - 0.5) + b * (yy - 0.5) - (c - 0.5)) / np.hypot(a, b)
            stroke = np.clip(1.0 - dist * size / 0.8, 0.0, 1.0)[None]
            img[i] = img[i] * (1 - 0.6 * stroke)

    img = img + rng.normal(0, 4.0, img.shape).astype(np.float32)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def _split(rng, n, proportions, size, difficulty, label_noise, prefix, darkening):
    proportions = np.asarray(proportions, dtype=np.float64)
    proportions = proportions / proportions.sum()
    counts = np.floor(proportions * n).astype(int)
    counts[0] += n - counts.sum()
    g = np.repeat(np.arange(len(counts)), counts)
    y = rng.integers(0, 2, n)
    images = _render(rng, y, g, size, difficulty, darkening)
    flip = rng.random(n) < label_noise  # annotator disagreement: caps any model below 100%
    y = np.where(flip, 1 - y, y)
    order = rng.permutation(n)
    ids = _ids(prefix, n)
    return SplitData(y[order], g[order], ids, size, images=torch.from_numpy(images[order]))


def _ids(prefix: str, n: int) -> list[str]:
    return [f"synthderm-{prefix}-{i:05d}" for i in range(n)]


def cache_dir() -> Path | None:
    """Where generated splits are cached (``FAIRPRUNE_CACHE``; None when it is ``off``)."""
    value = os.environ.get("FAIRPRUNE_CACHE", "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home directory: generate every time
        return None
    return Path(base) / "fairprune"


def _cache_file(options: dict) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    key = stable_hash({**options, "code": code, "numpy": np.__version__}, 20)
    return folder / f"synthderm-{key}.safetensors"


def _read_cache(path: Path | None, sizes: dict, size: int) -> dict[str, SplitData] | None:
    """The cached splits, or None when absent or not exactly what these options make."""
    if path is None or not path.is_file() or path.is_symlink():
        return None
    try:
        arrays = load_file(str(path))
        splits = {}
        for name, n in sizes.items():
            y, g, x = (arrays[f"{name}.{k}"] for k in ("labels", "groups", "images"))
            if (
                y.shape != (n,)
                or g.shape != (n,)
                or x.shape != (n, 3, size, size)
                or x.dtype != np.uint8
                or y.dtype != np.int64
                or g.dtype != np.int64
            ):
                return None
            splits[name] = SplitData(y, g, _ids(name, n), size, images=torch.from_numpy(x))
        return splits
    except Exception:  # noqa: BLE001 - a damaged cache is regenerated, never trusted
        log.debug("ignoring unreadable cache %s", path, exc_info=True)
        return None


def _write_cache(path: Path | None, splits: dict[str, SplitData]) -> None:
    """Keep the splits for the next process (atomically; a read-only cache is simply skipped)."""
    if path is None:
        return
    arrays = {}
    for name, split in splits.items():
        arrays[f"{name}.labels"] = split.labels
        arrays[f"{name}.groups"] = split.groups
        arrays[f"{name}.images"] = split.images.numpy()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file(arrays, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        log.debug("cannot write the cache %s", path, exc_info=True)


def load_synthderm(
    *,
    seed: int = 0,
    image_size: int = 32,
    n_train: int = 6000,
    n_val: int = 900,
    n_test: int = 6000,
    preset: str = CONTROL_PRESET,
    train_proportions: tuple[float, float, float] | None = None,
    difficulty: float = 0.25,
    label_noise: float = 0.03,
    lesion_darkening: tuple[float, float, float] = tuple(LESION_DARKENING.tolist()),
    limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetBundle:
    """Generate SynthDerm.

    Parameters
    ----------
    seed : int, default 0
        Same seed, same bytes.
    image_size : int, default 32
        Square side, 32 to 64 px.
    n_train, n_val, n_test : int
        Split sizes; val and test are balanced over the three skin tones.
    preset : {"control", "biased"}, default "control"
        Named setting of the training split (``PRESETS``): ``control`` keeps every tone well
        represented, ``biased`` makes dark skin rare in training.
    train_proportions : (float, float, float), optional
        Light / medium / dark shares of the training split; default: the preset's.
    difficulty : float in [0, 1]
        Overlap of the benign and malignant feature distributions (1 = indistinguishable).
    label_noise : float
        Fraction of labels flipped.
    lesion_darkening : (float, float, float)
        How much a lesion darkens light / medium / dark skin (lower: harder to see).
    limit, test_limit : int, optional
        Shrink the training / test splits (tests and quick runs).

    Returns
    -------
    DatasetBundle
    """
    if preset not in PRESETS:
        raise FairpruneError(ERR_UNKNOWN_PRESET.format(name=preset, choices=", ".join(PRESETS)))
    if train_proportions is None:
        train_proportions = PRESETS[preset]["train_proportions"]
    if limit is not None:
        n_train = min(n_train, int(limit))
    if test_limit is not None:
        n_test = min(n_test, int(test_limit))
    # what the data is made from: the preset only names values, so the control's fingerprint (and
    # its cache file) are those of the same options given one by one
    options = {
        "seed": seed,
        "image_size": image_size,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "train_proportions": list(train_proportions),
        "difficulty": difficulty,
        "label_noise": label_noise,
        "lesion_darkening": [float(v) for v in lesion_darkening],
        "version": GENERATOR_VERSION,
    }
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    cache = _cache_file(options)
    splits = _read_cache(cache, sizes, image_size)
    if splits is None:
        rng = np.random.default_rng([seed, 0x5D])
        darkening = np.asarray(lesion_darkening, dtype=np.float32)
        args = (image_size, difficulty, label_noise)
        splits = {
            "train": _split(rng, n_train, train_proportions, *args, "train", darkening),
            "val": _split(rng, n_val, (1, 1, 1), *args, "val", darkening),
            "test": _split(rng, n_test, (1, 1, 1), *args, "test", darkening),
        }
        _write_cache(cache, splits)
    shares = "/".join(f"{p:.0%}" for p in np.asarray(train_proportions) / sum(train_proportions))
    return DatasetBundle(
        name="synthderm",
        title="SynthDerm (synthetic)",
        class_names=list(CLASS_NAMES),
        group_names=list(GROUP_NAMES),
        group_attribute="skin tone",
        input_size=image_size,
        splits=splits,
        synthetic=True,
        description=(
            "SYNTHETIC data generated on the spot from a seed: dermatology-like 'lesions' "
            "(benign vs malignant by border irregularity, colour variegation, asymmetry and size) "
            "on light, medium and dark 'skin'. No real patients. Training split "
            f"{shares} light/medium/dark{_preset_note(preset, train_proportions)}; validation "
            "and test balanced per skin tone."
        ),
        fingerprint="synthderm-" + stable_hash(options),
    )


def _preset_note(preset: str, train_proportions) -> str:
    """The description's words for the preset (nothing when explicit shares replaced it)."""
    if tuple(train_proportions) != tuple(PRESETS[preset]["train_proportions"]):
        return " (shares given explicitly)"
    if preset == BIASED_PRESET:
        return " (preset 'biased': dark skin rare in training, as in the paper's settings)"
    return " (preset 'control': every tone well represented)"
