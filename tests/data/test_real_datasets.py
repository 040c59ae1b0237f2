"""Real-dataset loaders against tiny fixtures written in each dataset's exact on-disk format."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fairprune.data import cifar, fitzpatrick
from fairprune.data import load_dataset as registry_load
from fairprune.data.base import ERR_EMPTY_GROUP, summarize
from fairprune.data.celeba import (
    CELEBA_EXPECTS,
    ERR_ALPHA_BETA,
    ERR_CELEBA_ATTRIBUTE,
    ERR_CELEBA_COUNT,
    ERR_CELEBA_HEADER,
    ERR_CELEBA_MISMATCH,
    ERR_CELEBA_PARTITION,
    ERR_CELEBA_ROWS,
    ERR_CELL_TOO_SMALL,
    alpha_beta_subsample,
    load_celeba,
)
from fairprune.data.cifar import (
    CIFAR_MD5,
    ERR_CIFAR_BATCH,
    ERR_CIFAR_CLASSES,
    ERR_CIFAR_LABELS,
    ERR_CIFAR_VARIANT,
    REFUSED_GLOBAL,
    load_cifar10,
)
from fairprune.data.files import ERR_FILES_MISSING, ERR_IMAGE_UNREADABLE, ERR_IMAGES_MISSING
from fairprune.data.fitzpatrick import (
    ERR_FITZ_COLUMNS,
    ERR_FITZ_LABEL,
    ERR_FITZ_SKIN,
    ERR_SPLIT_FILE,
    _split_cache_dir,
    _write_split,
    fitzpatrick_assignment,
    load_fitzpatrick17k,
)
from fairprune.errors import FairpruneError


def _jpeg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path, "JPEG")


# ------------------------------------------------------------------------------------- CelebA

# (image, partition, Blond_Hair, Male). Training cells (male, blond): (0,1)=3, (0,0)=4,
# (1,1)=1 (smallest), (1,0)=2; val 2; test 4 (2 female, 2 male).
CELEBA_ROWS = [
    ("000001.jpg", 0, 1, -1),
    ("000002.jpg", 0, 1, -1),
    ("000003.jpg", 0, 1, -1),
    ("000004.jpg", 0, -1, -1),
    ("000005.jpg", 0, -1, -1),
    ("000006.jpg", 0, -1, -1),
    ("000007.jpg", 0, -1, -1),
    ("000008.jpg", 0, 1, 1),
    ("000009.jpg", 0, -1, 1),
    ("000010.jpg", 0, -1, 1),
    ("000011.jpg", 1, 1, -1),
    ("000012.jpg", 1, -1, 1),
    ("000013.jpg", 2, 1, -1),
    ("000014.jpg", 2, -1, -1),
    ("000015.jpg", 2, 1, 1),
    ("000016.jpg", 2, -1, 1),
]


def _celeba(root: Path, rows=CELEBA_ROWS, count=None) -> Path:
    for i, (name, *_rest) in enumerate(rows):
        _jpeg(root / "img_align_celeba" / name, 10 * i)
    lines = [str(len(rows) if count is None else count), "Blond_Hair Eyeglasses Male "]
    lines += [f"{n} {b:2d} -1 {m:2d}" for n, _p, b, m in rows]  # the real file pads with spaces
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p, *_ in rows))
    return root


def _counts(bundle) -> dict:
    return {(r.split, r.group, r.label): r.n for r in summarize(bundle).itertuples()}


def test_celeba_splits_groups_and_labels(tmp_path):
    bundle = registry_load("celeba", _celeba(tmp_path), verify="all")
    assert bundle.class_names == ["not blond hair", "blond hair"]
    assert bundle.group_names == ["female", "male"]
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 10, "val": 2, "test": 4}
    counts = _counts(bundle)
    assert counts[("train", "female", "blond hair")] == 3
    assert counts[("train", "female", "not blond hair")] == 4
    assert counts[("train", "male", "blond hair")] == 1
    assert counts[("train", "male", "not blond hair")] == 2
    assert bundle.splits["test"].ids == ["000013.jpg", "000014.jpg", "000015.jpg", "000016.jpg"]
    assert bundle.splits["test"].labels.tolist() == [1, 0, 1, 0]
    assert bundle.splits["test"].groups.tolist() == [0, 0, 1, 1]
    x, y, g, idx = next(bundle.splits["test"].batches(4))
    assert tuple(x.shape) == (4, 3, 64, 64)
    # JPEG of a constant 8x8 patch of value 10 * 12 decodes to within a few levels of it
    assert abs(float(x[0].mean()) * 255 - 120) < 3


def test_celeba_alpha_beta_subset_sizes(tmp_path):
    bundle = load_celeba(_celeba(tmp_path), alpha=2, beta=2)
    # n = 1 (male blond); alpha*n = 2 female blond; beta*n = 2 male non-blond; alpha*beta*n = 4
    counts = _counts(bundle)
    assert counts[("train", "male", "blond hair")] == 1
    assert counts[("train", "female", "blond hair")] == 2
    assert counts[("train", "male", "not blond hair")] == 2
    assert counts[("train", "female", "not blond hair")] == 4
    assert len(bundle.splits["train"]) == 9
    assert len(bundle.splits["test"]) == 4  # only the training split is subsampled
    again = load_celeba(tmp_path, alpha=2, beta=2)
    assert again.splits["train"].ids == bundle.splits["train"].ids  # seeded


def test_celeba_alpha_beta_too_large(tmp_path):
    # n = 1; cells are drawn in (group, label) order, and female × not blond (4 held) needs
    # alpha * beta * n = 6 before female blond (3 of 3 wanted) is reached
    with pytest.raises(FairpruneError) as err:
        load_celeba(_celeba(tmp_path), alpha=3, beta=2)
    assert str(err.value) == ERR_CELL_TOO_SMALL.format(
        cell="female × not blond hair", have=4, alpha=3, beta=2, need=6
    )


def _raises(fn, message):
    with pytest.raises(FairpruneError) as err:
        fn()
    assert str(err.value) == message


@pytest.mark.parametrize(
    "alpha,beta", [(2, None), (None, 1.5), (0, 1)], ids=["no-beta", "no-alpha", "zero"]
)
def test_celeba_alpha_beta_both_or_neither(tmp_path, alpha, beta):
    _raises(
        lambda: load_celeba(_celeba(tmp_path), alpha=alpha, beta=beta),
        ERR_ALPHA_BETA.format(alpha=alpha, beta=beta),
    )


def test_celeba_missing_files(tmp_path):
    (tmp_path / "list_attr_celeba.txt").write_text("0\nMale\n")
    _raises(
        lambda: load_celeba(tmp_path),
        ERR_FILES_MISSING.format(
            dataset="CelebA",
            missing="img_align_celeba/, list_eval_partition.txt",
            where=tmp_path,
            expects=CELEBA_EXPECTS,
        ),
    )


def test_celeba_unknown_attribute(tmp_path):
    _raises(
        lambda: load_celeba(_celeba(tmp_path), target="Bald"),
        ERR_CELEBA_ATTRIBUTE.format(
            path=tmp_path / "list_attr_celeba.txt",
            attr="Bald",
            choices="Blond_Hair, Eyeglasses, Male",
        ),
    )


def test_celeba_malformed_rows(tmp_path):
    rows = list(CELEBA_ROWS)
    rows[2] = ("000003.jpg", 0, 0, -1)  # value 0 on file line 5
    _celeba(tmp_path, rows)
    path = tmp_path / "list_attr_celeba.txt"
    _raises(lambda: load_celeba(tmp_path), ERR_CELEBA_ROWS.format(path=path, lines="5", k=3))
    text = path.read_text().replace("000007.jpg -1 -1 -1", "000007.jpg -1 -1")
    path.write_text(text)  # now line 9 also lacks a value; wrong lengths are reported first
    _raises(lambda: load_celeba(tmp_path), ERR_CELEBA_ROWS.format(path=path, lines="9", k=3))


def test_celeba_count_and_header(tmp_path):
    _celeba(tmp_path, count=17)
    path = tmp_path / "list_attr_celeba.txt"
    _raises(
        lambda: load_celeba(tmp_path),
        ERR_CELEBA_COUNT.format(path=path, expected=17, found=16),
    )
    path.write_text("Blond_Hair Male\n")
    _raises(lambda: load_celeba(tmp_path), ERR_CELEBA_HEADER.format(path=path))


def test_celeba_partition_errors(tmp_path):
    _celeba(tmp_path)
    path = tmp_path / "list_eval_partition.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "000002.jpg 3", *lines[2:]]) + "\n")
    _raises(lambda: load_celeba(tmp_path), ERR_CELEBA_PARTITION.format(path=path, lines="2"))
    path.write_text("\n".join(lines[:-1]) + "\n")  # 000016.jpg has no partition
    _raises(
        lambda: load_celeba(tmp_path),
        ERR_CELEBA_MISMATCH.format(
            partition=path.name, attrs="list_attr_celeba.txt", count=1, first="000016.jpg"
        ),
    )


def test_celeba_missing_and_unreadable_images(tmp_path):
    _celeba(tmp_path)
    img_dir = tmp_path / "img_align_celeba"
    (img_dir / "000007.jpg").unlink()
    (img_dir / "000009.jpg").unlink()
    _raises(
        lambda: load_celeba(tmp_path),
        ERR_IMAGES_MISSING.format(
            count=2, source="list_attr_celeba.txt", root=img_dir, first="000007.jpg"
        ),
    )
    _jpeg(img_dir / "000007.jpg", 1)
    _jpeg(img_dir / "000009.jpg", 1)
    bad = img_dir / "000009.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(OSError) as pil_err:
        Image.open(bad)
    _raises(
        lambda: load_celeba(tmp_path, verify="all"),
        ERR_IMAGE_UNREADABLE.format(path=bad, reason=pil_err.value),
    )
    assert load_celeba(tmp_path, verify=0).splits["train"].ids[8] == "000009.jpg"  # unchecked


def test_celeba_empty_group(tmp_path):
    rows = [r if r[1] != 2 else (r[0], 2, r[2], -1) for r in CELEBA_ROWS]  # test: only women
    _raises(
        lambda: load_celeba(_celeba(tmp_path, rows)),
        ERR_EMPTY_GROUP.format(split="test", group="male"),
    )


def test_celeba_kaggle_nested_folder(tmp_path):
    _celeba(tmp_path)
    nested = tmp_path / "img_align_celeba" / "img_align_celeba"
    nested.mkdir()
    for p in sorted((tmp_path / "img_align_celeba").glob("*.jpg")):
        p.rename(nested / p.name)
    bundle = load_celeba(tmp_path, target="Male", group="Blond_Hair")
    assert bundle.splits["train"].paths[0] == nested / "000001.jpg"
    assert bundle.group_names == ["not blond hair", "blond hair"]
    assert bundle.class_names == ["not male", "male"]
    assert bundle.splits["test"].groups.tolist() == [1, 0, 1, 0]
    _raises(
        lambda: load_celeba(tmp_path, group="Eyeglasses"),  # nobody wears glasses
        ERR_EMPTY_GROUP.format(split="train", group="eyeglasses"),
    )


# ----------------------------------------------------------------------------- Fitzpatrick17k


def _fitz(root: Path, skin_column: str = "fitzpatrick_scale", extra_rows=()) -> Path:
    """25 usable rows + 2 unknown skin type + 1 repeated md5hash + 1 missing image.

    light: 5 benign + 5 malignant; medium: 5 benign + 5 non-neoplastic; dark: 5 malignant.
    """
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    spec = [(1, "benign"), (2, "malignant"), (3, "benign"), (4, "non-neoplastic"), (6, "malignant")]
    k = 0
    for skin, label in spec:
        for _ in range(5):
            rows.append({"md5hash": f"h{k:02d}", skin_column: skin, "three_partition_label": label})
            k += 1
    rows.append({"md5hash": "u1", skin_column: -1, "three_partition_label": "benign"})
    rows.append({"md5hash": "u2", skin_column: -1, "three_partition_label": "malignant"})
    rows.append({"md5hash": "h00", skin_column: 1, "three_partition_label": "benign"})  # repeat
    rows.append({"md5hash": "gone", skin_column: 3, "three_partition_label": "benign"})
    rows.extend(extra_rows)
    df = pd.DataFrame(rows)
    df["label"] = "some diagnosis"
    df["nine_partition_label"] = "x"
    df["url"] = "https://example.invalid/img"
    df.to_csv(root / "fitzpatrick17k.csv", index=False)
    for i, h in enumerate(df["md5hash"]):
        if h != "gone":
            _jpeg(root / "images" / f"{h}.jpg", i)
    return root


def test_fitzpatrick_counts_split_and_skipped(tmp_path):
    bundle = registry_load("fitzpatrick17k", _fitz(tmp_path), image_size=16)
    assert bundle.skipped == {"unknown skin type": 2, "duplicate md5hash": 1, "missing image": 1}
    assert "2 unknown skin type, 1 duplicate md5hash, 1 missing image" in bundle.description
    # light cells of 5: 4 train, the held-out 1 -> round(0.2) = 0 val, 1 test
    # medium and dark cells of 5: round(5 * 0.2) = 1 val, 4 test
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 8, "val": 3, "test": 14}
    counts = _counts(bundle)
    assert counts[("train", "light (1-2)", "benign")] == 4
    assert counts[("train", "light (1-2)", "malignant")] == 4
    assert set(summarize(bundle).query("split == 'train'")["group"]) == {"light (1-2)"}
    assert counts[("test", "light (1-2)", "benign")] == 1
    assert counts[("test", "medium (3-4)", "non-neoplastic")] == 4
    assert counts[("test", "dark (5-6)", "malignant")] == 4
    assert counts[("val", "dark (5-6)", "malignant")] == 1
    saved = pd.read_csv(tmp_path / "fairprune_split_seed0.csv")
    assert len(saved) == 25
    assert saved["split"].value_counts().to_dict() == {"test": 14, "train": 8, "val": 3}
    x, y, g, _ = next(bundle.splits["test"].batches(32))
    assert tuple(x.shape) == (14, 3, 16, 16)


def test_fitzpatrick_reuses_saved_split(tmp_path):
    first = load_fitzpatrick17k(_fitz(tmp_path))
    path = tmp_path / "fairprune_split_seed0.csv"
    saved = pd.read_csv(path)
    train_hash = first.splits["train"].ids[0]
    saved.loc[saved["md5hash"] == train_hash, "split"] = "test"  # an edit the loader must honour
    saved.to_csv(path, index=False)
    second = load_fitzpatrick17k(tmp_path)
    assert len(second.splits["train"]) == 7
    assert train_hash in second.splits["test"].ids
    assert second.fingerprint != first.fingerprint
    path.write_text("md5hash,split\nh00,holdout\n")
    _raises(
        lambda: load_fitzpatrick17k(tmp_path),
        ERR_SPLIT_FILE.format(path=path, reason="unknown split in row(s) 2"),
    )


def test_fitzpatrick_read_only_root_falls_back_to_cache(tmp_path, monkeypatch):
    root = _fitz(tmp_path / "data")
    monkeypatch.setenv("FAIRPRUNE_DATA_DIR", str(tmp_path / "cache"))
    real_write = _write_split

    def write(path, frame):
        if path.parent == root:
            raise PermissionError(13, "Permission denied")
        real_write(path, frame)

    monkeypatch.setattr(fitzpatrick, "_write_split", write)
    bundle = load_fitzpatrick17k(root)
    cached = _split_cache_dir(root) / "fairprune_split_seed0.csv"
    assert not (root / "fairprune_split_seed0.csv").exists()
    assert len(pd.read_csv(cached)) == 25
    assert f"Split saved to {cached}." in bundle.description
    assert load_fitzpatrick17k(root).splits["test"].ids == bundle.splits["test"].ids


def test_fitzpatrick_original_column_name(tmp_path):
    bundle = load_fitzpatrick17k(_fitz(tmp_path, skin_column="fitzpatrick"))
    assert sum(len(s) for s in bundle.splits.values()) == 25


def test_fitzpatrick_validation_errors(tmp_path):
    _fitz(tmp_path)
    path = tmp_path / "fitzpatrick17k.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[3, "fitzpatrick_scale"] = "7"
    df.to_csv(path, index=False)
    _raises(
        lambda: load_fitzpatrick17k(tmp_path),
        ERR_FITZ_SKIN.format(path=path, rows="5", values="7"),
    )
    df.loc[3, "fitzpatrick_scale"] = "1"
    df.loc[[6, 8], "three_partition_label"] = "cancer"
    df.to_csv(path, index=False)
    _raises(
        lambda: load_fitzpatrick17k(tmp_path),
        ERR_FITZ_LABEL.format(path=path, values="cancer", rows="8, 10"),
    )
    df.drop(columns=["three_partition_label", "fitzpatrick_scale"]).to_csv(path, index=False)
    _raises(
        lambda: load_fitzpatrick17k(tmp_path),
        ERR_FITZ_COLUMNS.format(
            path=path, missing="three_partition_label, fitzpatrick_scale or fitzpatrick"
        ),
    )


def test_fitzpatrick_missing_folder_and_empty_group(tmp_path):
    (tmp_path / "fitzpatrick17k.csv").write_text("md5hash\n")
    _raises(
        lambda: load_fitzpatrick17k(tmp_path),
        ERR_FILES_MISSING.format(
            dataset="Fitzpatrick17k",
            missing="images/",
            where=tmp_path,
            expects="fitzpatrick17k.csv and images/",
        ),
    )
    (tmp_path / "fitzpatrick17k.csv").unlink()
    _fitz(tmp_path)
    path = tmp_path / "fitzpatrick17k.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[df["fitzpatrick_scale"] == "6", "fitzpatrick_scale"] = "4"  # no dark skin left
    df.to_csv(path, index=False)
    _raises(
        lambda: load_fitzpatrick17k(tmp_path),
        ERR_EMPTY_GROUP.format(split="test", group="dark (5-6)"),
    )


def test_fitzpatrick_assignment_hand_counts():
    groups = np.array([0] * 10 + [1] * 10)
    labels = np.array([0] * 20)
    out = fitzpatrick_assignment(groups, labels, seed=3, light_train_fraction=0.6)
    # light: 6 train, held-out 4 -> round(0.8) = 1 val, 3 test; medium: 2 val, 8 test
    assert (out[:10] == "train").sum() == 6 and (out[:10] == "val").sum() == 1
    assert (out[10:] == "val").sum() == 2 and (out[10:] == "test").sum() == 8


# --------------------------------------------------------------------------------- CIFAR-10

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR_NAMES += ["dog", "frog", "horse", "ship", "truck"]


def _cifar(root: Path, *, labels_override=None) -> Path:
    """5 training batches of 20 (every class twice: 10 per class in all) + a test batch of 30."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    # random pixels in 0..200: no pixel can be the magenta square (255, 0, 255) by chance
    for name, n in [*((f"data_batch_{i}", 20) for i in range(1, 6)), ("test_batch", 30)]:
        labels = [i % 10 for i in range(n)]
        if labels_override and name in labels_override:
            labels = labels_override[name]
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": rng.integers(0, 200, (n, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    meta = {b"label_names": [c.encode() for c in CIFAR_NAMES], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return root


def _squared(x) -> np.ndarray:
    """Which images (float (B, 3, 32, 32)) carry the magenta square."""
    patch = (x[:, :, 2:6, 2:6] * 255).round()
    return (
        (patch[:, 0] == 255).all((1, 2)) & (patch[:, 1] == 0).all((1, 2)) & (patch[:, 2] == 255).all((1, 2))
    ).numpy()  # fmt: skip


def test_cifar_standard(tmp_path):
    bundle = registry_load("cifar10", _cifar(tmp_path))
    assert bundle.class_names == CIFAR_NAMES and bundle.group_names == CIFAR_NAMES
    train = bundle.splits["train"]
    assert len(train) == 100 and len(bundle.splits["test"]) == 30
    assert np.bincount(train.labels).tolist() == [10] * 10
    assert (train.groups == train.labels).all()
    assert train.ids[21] == "data_batch_2_1.png"
    # python batches are channel-first rows: pixel (c, 0, 0) of image 0 is data[0, c * 1024]
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    assert train.image(0)[0, 0].tolist() == [raw[0, 0], raw[0, 1024], raw[0, 2048]]
    assert train.image(0)[5, 7, 1] == raw[0, 1024 + 5 * 32 + 7]
    x, *_ = next(train.batches(100))
    assert _squared(x).sum() == 0


def test_cifar_imbalanced(tmp_path):
    bundle = load_cifar10(_cifar(tmp_path), variant="imbalanced")
    # cats and dogs: 10 each, 80% dropped -> 2 left; the other eight classes keep 10
    assert np.bincount(bundle.splits["train"].labels).tolist() == [10, 10, 10, 2, 10, 2, 10, 10, 10, 10]  # fmt: skip
    assert len(bundle.splits["test"]) == 30  # the test split stays balanced
    again = load_cifar10(tmp_path, variant="imbalanced")
    assert again.splits["train"].ids == bundle.splits["train"].ids


def test_cifar_shortcut(tmp_path):
    bundle = load_cifar10(_cifar(tmp_path), variant="shortcut", square_fraction=0.5)
    train = bundle.splits["train"]
    x, y, _, _ = next(train.batches(100))
    marked = _squared(x)
    assert marked.sum() == 5 and (y[marked] == 5).all()  # half of the 10 dogs
    xt, *_ = next(bundle.splits["test"].batches(30))
    xs, *_ = next(bundle.splits["test_square"].batches(30))
    assert _squared(xt).sum() == 0 and _squared(xs).sum() == 30
    # outside the square the test_square images are the test images
    assert (xs[:, :, 8:] == xt[:, :, 8:]).all()
    default = load_cifar10(tmp_path, variant="shortcut")
    x, *_ = next(default.splits["train"].batches(100))
    assert _squared(x).sum() == 10  # round(0.98 * 10)


def test_cifar_resize_and_limit(tmp_path):
    bundle = load_cifar10(_cifar(tmp_path), image_size=16, limit=40, test_limit=12)
    x, y, g, idx = next(bundle.splits["train"].batches(64))
    assert tuple(x.shape) == (40, 3, 16, 16) and x.dtype.is_floating_point
    assert len(bundle.splits["test"]) == 12
    assert bundle.splits["train"].image(0).shape == (16, 16, 3)


def test_cifar_errors(tmp_path):
    _cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _raises(
        lambda: load_cifar10(tmp_path, variant="noisy"),
        ERR_CIFAR_VARIANT.format(variant="noisy", choices="standard, imbalanced, shortcut"),
    )
    (folder / "data_batch_3").rename(tmp_path / "moved")
    (folder / "test_batch").unlink()
    _raises(
        lambda: load_cifar10(tmp_path),
        ERR_FILES_MISSING.format(
            dataset="CIFAR-10",
            missing="data_batch_3, test_batch",
            where=folder,
            expects=(
                "cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta "
                "(the python version)"
            ),
        ),
    )


def test_cifar_malformed_batches(tmp_path):
    _cifar(tmp_path, labels_override={"data_batch_2": [0, 1, 2, 10] + [0] * 16})
    folder = tmp_path / "cifar-10-batches-py"
    _raises(
        lambda: load_cifar10(tmp_path),
        ERR_CIFAR_LABELS.format(path=folder / "data_batch_2", last=9, rows="3"),
    )
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 20}, f)
    _raises(
        lambda: load_cifar10(tmp_path),
        ERR_CIFAR_BATCH.format(path=folder / "data_batch_2", reason="missing key(s) b'filenames'"),
    )
    (folder / "data_batch_2").write_bytes(b"\x1f\x8b\x08\x00")  # a gzip file, not a batch
    _raises(
        lambda: load_cifar10(tmp_path),
        ERR_CIFAR_BATCH.format(path=folder / "data_batch_2", reason="invalid load key, '\\x1f'."),
    )
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"a", b"b"]}, f)
    _raises(
        lambda: load_cifar10(tmp_path, variant="shortcut"),
        ERR_CIFAR_CLASSES.format(missing="dog", variant="shortcut"),
    )


class _Payload:
    """Unpickling this with the stock unpickler would run ``exec`` and write ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.mark.parametrize("name", [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                                  "batches.meta"])  # fmt: skip
def test_cifar_payload_never_runs(tmp_path, name):
    _cifar(tmp_path)
    marker = tmp_path / "ran.txt"
    path = tmp_path / "cifar-10-batches-py" / name
    path.write_bytes(pickle.dumps({b"data": _Payload(marker), b"label_names": _Payload(marker)}))
    reason = REFUSED_GLOBAL.format(module="builtins", name="exec")
    _raises(lambda: load_cifar10(tmp_path), ERR_CIFAR_BATCH.format(path=path, reason=reason))
    assert not marker.exists()


def test_cifar_object_arrays_and_other_globals_are_refused(tmp_path):
    _cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.array([object()] * 3, dtype=object)}))
    _raises(
        lambda: load_cifar10(tmp_path), ERR_CIFAR_BATCH.format(path=path, reason="an object array")
    )
    path.write_bytes(pickle.dumps({b"data": Path("x")}))
    reason = REFUSED_GLOBAL.format(module="pathlib", name="PosixPath")
    _raises(lambda: load_cifar10(tmp_path), ERR_CIFAR_BATCH.format(path=path, reason=reason))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_reads_every_pickle_protocol_the_same(tmp_path, protocol):
    # the official files are protocol 2 (Python 2); re-saved copies use later protocols
    _cifar(tmp_path / "ref")
    folder = tmp_path / "ref" / "cifar-10-batches-py"
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
        out = tmp_path / "p" / "cifar-10-batches-py" / f.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(pickle.dumps(obj, protocol=protocol))
    a, b = load_cifar10(tmp_path / "ref"), load_cifar10(tmp_path / "p")
    assert a.splits["train"].ids == b.splits["train"].ids
    assert torch.equal(a.splits["train"].images, b.splits["train"].images)


def test_cifar_official_md5_is_reported(tmp_path, monkeypatch):
    _cifar(tmp_path)
    bundle = load_cifar10(tmp_path)
    assert bundle.description.endswith("not the official release (their MD5s differ).")
    folder = tmp_path / "cifar-10-batches-py"
    md5s = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in CIFAR_MD5}
    monkeypatch.setattr(cifar, "CIFAR_MD5", md5s)
    bundle = load_cifar10(tmp_path, seed=1)
    assert bundle.description.endswith("The files are the official release (MD5 checked).")


def test_alpha_beta_subsample_ratios():
    # cells (group, label): (0,0)=50, (0,1)=40, (1,0)=30, (1,1)=10 -> n = 10 from cell (1,1)
    groups = np.array([0] * 90 + [1] * 40)
    labels = np.array([0] * 50 + [1] * 40 + [0] * 30 + [1] * 10)
    keep = alpha_beta_subsample(labels, groups, alpha=2, beta=2.5, seed=1)
    g, y = groups[keep], labels[keep]
    cells = {(a, b): int(((g == a) & (y == b)).sum()) for a in (0, 1) for b in (0, 1)}
    # (1,1): n = 10; (0,1): alpha*n = 20; (1,0): beta*n = 25; (0,0): alpha*beta*n = 50
    assert cells == {(1, 1): 10, (0, 1): 20, (1, 0): 25, (0, 0): 50}
    assert len(np.unique(keep)) == 105 and (np.diff(keep) > 0).all()
