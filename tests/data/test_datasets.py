"""Dataset layer: SplitData batching, the registry, summarize, and the generic CSV loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fairprune.data import (
    DATASETS,
    ERR_NEEDS_ROOT,
    ERR_ROOT_MISSING,
    ERR_UNKNOWN_DATASET,
    ERR_UNKNOWN_OPTION,
    load_dataset,
)
from fairprune.data.base import ERR_EMPTY_GROUP, DatasetBundle, SplitData, subset, summarize
from fairprune.data.csv_table import (
    ERR_BAD_SPLIT,
    ERR_CSV_COLUMNS,
    ERR_CSV_EMPTY_VALUES,
    ERR_CSV_MISSING,
    ERR_EMPTY_SPLIT,
    ERR_FEW_CLASSES,
    ERR_NO_TEST_FRACTION,
    load_csv_dataset,
)
from fairprune.data.files import ERR_IMAGE_UNREADABLE, ERR_IMAGES_MISSING
from fairprune.errors import FairpruneError


def _raises(fn, message):
    with pytest.raises(FairpruneError) as err:
        fn()
    assert str(err.value) == message


def _memory_split(n=23, size=4, seed=0) -> SplitData:
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8))
    return SplitData(
        rng.integers(0, 3, n), rng.integers(0, 2, n), [f"r{i}" for i in range(n)], size,
        images=images,
    )  # fmt: skip


# ------------------------------------------------------------------------------- SplitData


def test_batches_shapes_dtypes_and_cover_every_row_once():
    split = _memory_split()
    seen = []
    for x, y, g, idx in split.batches(5, shuffle=True, seed=3):
        assert x.dtype == torch.float32 and y.dtype == g.dtype == idx.dtype == torch.int64
        assert tuple(x.shape) == (len(idx), 3, 4, 4)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert (y.numpy() == split.labels[idx.numpy()]).all()
        assert (g.numpy() == split.groups[idx.numpy()]).all()
        assert torch.equal((x * 255).round().to(torch.uint8), split.images[idx])
        seen.extend(idx.tolist())
    assert [len(b[3]) for b in split.batches(5)] == [5, 5, 5, 5, 3]
    assert sorted(seen) == list(range(23))
    assert seen != list(range(23))  # shuffled
    again = [i for *_, idx in split.batches(5, shuffle=True, seed=3) for i in idx.tolist()]
    other = [i for *_, idx in split.batches(5, shuffle=True, seed=4) for i in idx.tolist()]
    assert again == seen and other != seen
    assert [i for *_, idx in split.batches(4) for i in idx.tolist()] == list(range(23))


def test_batches_indices_restrict_rows():
    split = _memory_split()
    rows = [i for *_, idx in split.batches(2, indices=[7, 3, 11]) for i in idx.tolist()]
    assert rows == [7, 3, 11]


def test_augment_flips_deterministically():
    split = _memory_split(n=64)
    plain = torch.cat([b[0] for b in split.batches(16)])
    aug = torch.cat([b[0] for b in split.batches(16, augment=True, seed=5)])
    again = torch.cat([b[0] for b in split.batches(16, augment=True, seed=5)])
    assert torch.equal(aug, again)
    # every augmented image is one of the four flips of its original
    options = torch.stack([plain, plain.flip(-1), plain.flip(-2), plain.flip(-1).flip(-2)])
    match = (options == aug[None]).flatten(2).all(-1)  # (4, N)
    assert match.any(0).all()
    changed = int((~match[0]).sum())
    assert 30 < changed < 62  # 3/4 of 64 images expected flipped at least one way (48)
    assert torch.allclose(aug.sum((1, 2, 3)), plain.sum((1, 2, 3)))


def test_image_and_subset():
    split = _memory_split()
    assert split.image(4).shape == (4, 4, 3)
    assert (split.image(4) == split.images[4].permute(1, 2, 0).numpy()).all()
    sub = subset(split, 10, seed=1)
    expected = np.sort(np.random.default_rng(1).choice(23, 10, replace=False))
    assert sub.ids == [f"r{i}" for i in expected]
    assert (sub.labels == split.labels[expected]).all()
    assert subset(split, None) is split and subset(split, 50) is split


# ------------------------------------------------------------------------- registry, summary


def test_registry_errors(tmp_path):
    _raises(
        lambda: load_dataset("mnist"),
        ERR_UNKNOWN_DATASET.format(
            name="mnist", choices="synthderm, celeba, fitzpatrick17k, cifar10, csv"
        ),
    )
    _raises(lambda: load_dataset("celeba"), ERR_NEEDS_ROOT.format(name="celeba"))
    _raises(
        lambda: load_dataset("cifar10", tmp_path / "nope"),
        ERR_ROOT_MISSING.format(root=tmp_path / "nope", expects=DATASETS["cifar10"].help),
    )
    _raises(
        lambda: load_dataset("cifar10", tmp_path, colour="red"),
        ERR_UNKNOWN_OPTION.format(
            name="cifar10",
            option="colour",
            choices="seed, variant, image_size, drop_fraction, square_fraction, limit, test_limit",
        ),
    )


def test_summarize_counts_names():
    split = SplitData([0, 1, 1, 1, 0], [0, 0, 1, 1, 1], list("abcde"), 4,
                         images=torch.zeros(5, 3, 4, 4, dtype=torch.uint8))  # fmt: skip
    bundle = DatasetBundle(
        name="x", title="X", class_names=["no", "yes"], group_names=["g0", "g1"],
        group_attribute="g", input_size=4, splits={"train": split, "test": split},
    )  # fmt: skip
    df = summarize(bundle)
    assert list(df.columns) == ["split", "group", "label", "n"]
    assert df[df.split == "test"].values.tolist() == [
        ["test", "g0", "no", 1],
        ["test", "g0", "yes", 1],
        ["test", "g1", "no", 1],
        ["test", "g1", "yes", 2],
    ]
    assert df.n.sum() == 10 and bundle.num_classes == 2


# ------------------------------------------------------------------------------ CSV loader


def _png(path: Path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), colour, dtype=np.uint8)).save(path)


def _csv(root: Path, rows: list[dict], name="data.csv") -> Path:
    for i, row in enumerate(rows):
        if not (root / row["path"]).exists():
            _png(root / row["path"], (10 * i, 100, 200))
    path = root / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _intersection_rows():
    rows = []
    for i in range(16):
        sex, age = "FM"[i % 2], ("young", "old")[(i // 2) % 2]
        split = "test" if i >= 12 else ("val" if i >= 10 else "train")
        label = ("nevus", "melanoma")[(i // 4) % 2]
        rows.append({"path": f"img/{i:02d}.png", "label": label, "sex": sex, "age": age,
                     "split": split})  # fmt: skip
    return rows


def test_csv_split_column_and_intersection_groups(tmp_path):
    csv = _csv(tmp_path, _intersection_rows())
    bundle = load_dataset("csv", tmp_path, csv=csv, group_columns=("sex", "age"), image_size=8)
    assert bundle.class_names == ["melanoma", "nevus"]
    assert bundle.group_names == ["F × old", "F × young", "M × old", "M × young"]
    assert bundle.group_attribute == "sex × age"
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 10, "val": 2, "test": 4}
    test = bundle.splits["test"]
    assert test.ids == ["img/12.png", "img/13.png", "img/14.png", "img/15.png"]
    assert test.groups.tolist() == [1, 3, 0, 2] and test.labels.tolist() == [0, 0, 0, 0]
    x, y, g, idx = next(test.batches(8))
    assert tuple(x.shape) == (4, 3, 8, 8) and x.dtype == torch.float32
    # row 13's PNG is the constant colour (130, 100, 200): resizing keeps it
    assert (x[1] * 255).round()[:, 0, 0].tolist() == [130.0, 100.0, 200.0]
    same = load_dataset("csv", tmp_path, csv=csv, group_columns="sex,age", image_size=8)
    assert same.fingerprint == bundle.fingerprint


def test_csv_stratified_split_counts(tmp_path):
    rows = []
    for i in range(40):  # 2 groups x 2 labels, 10 rows per cell
        rows.append({"path": f"i{i}.png", "label": ("2", "10")[i % 2], "group": "ab"[i // 20]})
    csv = _csv(tmp_path, rows)
    bundle = load_csv_dataset(tmp_path, csv, image_size=4)
    assert bundle.class_names == ["2", "10"]  # numbers sort as numbers
    # per cell of 10: test round(2.0) = 2, val round(1.0) = 1, train 7
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 28, "val": 4, "test": 8}
    counts = summarize(bundle).set_index(["split", "group", "label"])["n"]
    assert counts[("test", "a", "10")] == 2 and counts[("val", "b", "2")] == 1
    again = load_csv_dataset(tmp_path, csv, image_size=4)
    other = load_csv_dataset(tmp_path, csv, image_size=4, seed=1)
    assert again.splits["test"].ids == bundle.splits["test"].ids
    assert other.splits["test"].ids != bundle.splits["test"].ids


def test_csv_errors(tmp_path):
    rows = _intersection_rows()
    csv = _csv(tmp_path, rows)
    load = lambda **kw: load_csv_dataset(tmp_path, csv, image_size=4, **kw)  # noqa: E731
    _raises(
        lambda: load_csv_dataset(tmp_path, tmp_path / "x.csv"),
        ERR_CSV_MISSING.format(path=tmp_path / "x.csv"),
    )
    _raises(
        lambda: load(),
        ERR_CSV_COLUMNS.format(path=csv, missing="group", groups="group"),
    )
    bad = [dict(r) for r in rows]
    bad[2]["label"] = ""
    _csv(tmp_path, bad)
    _raises(
        lambda: load(group_columns=("sex",)),
        ERR_CSV_EMPTY_VALUES.format(path=csv, column="label", rows="4"),
    )
    bad[2]["label"] = "nevus"
    bad[5]["split"] = "holdout"
    _csv(tmp_path, bad)
    _raises(
        lambda: load(group_columns=("sex",)),
        ERR_BAD_SPLIT.format(path=csv, values="holdout", rows="7"),
    )
    bad[5]["split"] = "train"
    bad[6]["path"] = "img/missing.png"
    pd.DataFrame(bad).to_csv(csv, index=False)
    _raises(
        lambda: load(group_columns=("sex",)),
        ERR_IMAGES_MISSING.format(
            count=1, source="data.csv", root=tmp_path, first="img/missing.png"
        ),
    )
    bad[6]["path"] = "img/06.png"
    (tmp_path / "img/06.png").write_bytes(b"broken")
    pd.DataFrame(bad).to_csv(csv, index=False)
    with pytest.raises(OSError) as pil_err:
        Image.open(tmp_path / "img/06.png")
    _raises(
        lambda: load(group_columns=("sex",)),
        ERR_IMAGE_UNREADABLE.format(path=tmp_path / "img/06.png", reason=pil_err.value),
    )


def test_csv_label_and_split_errors(tmp_path):
    rows = _intersection_rows()
    single = [dict(r, label="nevus") for r in rows]
    csv = _csv(tmp_path, single)
    load = lambda **kw: load_csv_dataset(tmp_path, csv, group_columns=("sex",), **kw)  # noqa: E731
    _raises(load, ERR_FEW_CLASSES.format(source="data.csv", label="nevus"))
    no_test = [dict(r, split="train" if r["split"] == "test" else r["split"]) for r in rows]
    _csv(tmp_path, no_test)
    _raises(load, "data.csv yields an empty test split; check the split column or fractions.")
    assert ERR_EMPTY_SPLIT.format(source="data.csv", split="test") == (
        "data.csv yields an empty test split; check the split column or fractions."
    )
    only_f = [dict(r, split="train") if r["sex"] == "M" else r for r in rows]  # test: women only
    _csv(tmp_path, only_f)
    _raises(load, ERR_EMPTY_GROUP.format(split="test", group="M"))


@pytest.mark.parametrize("fraction", [0, 0.0])
def test_csv_test_fraction_zero_is_refused_before_reading(tmp_path, fraction):
    """No test split means nothing to audit: refused in one line, before the CSV is read."""
    rows = [{k: v for k, v in r.items() if k != "split"} for r in _intersection_rows()]
    csv = _csv(tmp_path, rows)
    _raises(
        lambda: load_dataset(
            "csv", tmp_path, csv=csv, group_columns=("sex",), test_fraction=fraction
        ),
        ERR_NO_TEST_FRACTION.format(value=fraction),
    )
    assert ERR_NO_TEST_FRACTION.format(value=0) == (
        "test_fraction=0 leaves no test split to audit; use a fraction above 0 (default 0.2)."
    )
    # a fraction that still rounds to one test row per (group, label) cell is kept
    bundle = load_dataset("csv", tmp_path, csv=csv, group_columns=("sex",), test_fraction=0.01,
                          image_size=8)  # fmt: skip
    assert len(bundle.splits["test"]) == 4
