"""`reproduce`: the paper's presets, and one run end to end on a CIFAR-10 fixture."""

from dataclasses import replace

import pandas as pd

from fairprune import reproduce
from fairprune.cli import main
from fairprune.config import FinetuneConfig, PruneConfig, TrainConfig
from fairprune.sweep.results import ResultsStore
from tests.data.test_real_datasets import _cifar


def test_presets_match_the_paper():
    celeba = reproduce.EXPERIMENTS["celeba"]
    assert celeba.arch == "resnet18"
    assert celeba.reductions == (0.9375, 0.9688, 0.9844, 0.9922, 0.9961)
    assert (celeba.min_weight, celeba.gamma) == (0.3, 1.0)
    assert (celeba.prune.autobot_lr, celeba.prune.autobot_lambda_flops) == (0.85, 2.7)
    assert celeba.prune.autobot_iters == 200
    fitz = reproduce.EXPERIMENTS["fitzpatrick17k"]
    assert fitz.arch == "resnet34"
    assert fitz.reductions == (0.5, 0.75, 0.875, 0.9375, 0.96875)
    assert (fitz.prune.autobot_lr, fitz.prune.autobot_lambda_flops, fitz.prune.autobot_iters) == (
        1.5, 0.5, 400,
    )  # fmt: skip
    cfg = reproduce.sweep_config(fitz, dense_path="d.safetensors", data_root="/data")
    assert cfg.paired and cfg.losses == ("ce", "pw") and cfg.dataset == "fitzpatrick17k"
    quick = reproduce.quick(celeba)
    assert quick.dataset_options["limit"] == reproduce.QUICK_LIMIT
    assert len(quick.reductions) == 2 and quick.finetune.epochs == 1


def test_reproduce_end_to_end_on_a_cifar_fixture(tmp_path, monkeypatch, capsys):
    root = _cifar(tmp_path / "data")
    tiny = replace(
        reproduce.EXPERIMENTS["cifar10-imbalanced"],
        arch="demo_cnn", reductions=(0.5,), criteria=("autobot", "pw_autobot"),
        dataset_options={"variant": "imbalanced", "image_size": 16},
        train=TrainConfig(epochs=1, batch_size=16), finetune=FinetuneConfig(epochs=1, batch_size=16),
        prune=PruneConfig(autobot_iters=10, calib_batch_size=16),
    )  # fmt: skip
    monkeypatch.setitem(reproduce.EXPERIMENTS, "cifar10-imbalanced", tiny)
    results = tmp_path / "r.sqlite"
    argv = ["reproduce", "cifar10-imbalanced", "--data-root", str(root), "--results", str(results),
            "--models-dir", str(tmp_path / "models"), "--out", str(tmp_path / "fig")]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "fig" / "cifar10-imbalanced.html").stat().st_size > 100_000
    long = ResultsStore(results).export_long()
    cells = long.drop_duplicates("cell_key")
    # paired: AutoBot with cross-entropy, PW-AutoBot with the PW loss, plus the dense baseline
    assert set(zip(cells["criterion"], cells["loss"], strict=True)) == {
        ("dense", "dense"), ("autobot", "ce"), ("pw_autobot", "pw"),
    }  # fmt: skip
    pruned = cells[cells["criterion"] != "dense"]
    assert (abs(pruned["flops_reduction"] - 0.5) <= 0.01).all()
    assert set(long["group"]) == {*pd.Index(reproduce_classes()), "overall"}


def reproduce_classes():
    from tests.data.test_real_datasets import CIFAR_NAMES

    return CIFAR_NAMES
