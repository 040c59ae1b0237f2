"""The demo's grid (the paper's protocol on SynthDerm's biased preset) and its dense model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fairprune import demo
from fairprune.cli import build_parser
from fairprune.data.synthderm import ERR_UNKNOWN_PRESET
from fairprune.errors import FairpruneError
from fairprune.sweep.grid import iter_cells

TINY = {"limit": 240, "n_val": 30, "test_limit": 60, "image_size": 16}


def _arms(config) -> set[str]:
    return {f"{c.criterion}:{c.loss}" for c in iter_cells(config)}


def test_the_demo_is_the_papers_protocol_on_the_biased_preset():
    config = demo.demo_sweep_config("dense.safetensors")
    assert config.dataset == "synthderm"
    assert config.dataset_options == {"preset": "biased"}
    assert config.criteria == ("taylor", "pw_taylor")  # baseline first
    assert config.losses == ("ce", "pw") and config.paired
    assert _arms(config) == {"taylor:ce", "pw_taylor:pw"}
    # the reference scripts' levels for the Fitzpatrick17k ResNet-34, 1 - 2^-k
    assert config.reductions == (0.5, 0.75, 0.875, 0.9375, 0.96875)
    assert (config.min_weight, config.gamma) == (0.95, 3.0)
    assert config.seeds == demo.DEMO_SEEDS and len(config.seeds) >= 3
    assert config.finetune == demo.DEMO_FINETUNE and config.finetune.epochs == 3
    assert len(list(iter_cells(config))) == 2 * 5 * len(demo.DEMO_SEEDS)
    assert config.name == "SynthDerm demo"


def test_autobot_all_arms_and_the_control():
    autobot = demo.demo_sweep_config("d", pair="autobot")
    assert autobot.criteria == ("autobot", "pw_autobot")
    assert _arms(autobot) == {"autobot:ce", "pw_autobot:pw"}
    every = demo.demo_sweep_config("d", arms="all")
    assert not every.paired
    assert _arms(every) == {
        f"{c}:{loss}"
        for c in ("taylor", "pw_taylor")
        for loss in ("ce", "pw", "pw_weights", "pw_soft")
    }  # the off-diagonal arms (taylor:pw, pw_taylor:ce) and the ablations
    assert every.name == "SynthDerm demo, all arms"
    control = demo.demo_sweep_config("d", preset="control")
    assert control.dataset_options == {"preset": "control"}
    assert control.name == "SynthDerm demo (control)"
    assert replace(control, dataset_options={"preset": "biased"}, name="SynthDerm demo") == (
        demo.demo_sweep_config("d")
    )  # the control differs in its data only


def test_unknown_pair_arms_or_preset_are_one_line():
    with pytest.raises(FairpruneError) as err:
        demo.demo_sweep_config("d", pair="l1")
    assert str(err.value) == "unknown demo criteria 'l1'; choose one of: taylor, autobot."
    with pytest.raises(FairpruneError) as err:
        demo.demo_sweep_config("d", arms="some")
    assert str(err.value) == "unknown demo arms 'some'; choose one of: paper, all."
    with pytest.raises(FairpruneError) as err:
        demo.demo_sweep_config("d", preset="fair")
    assert str(err.value) == ERR_UNKNOWN_PRESET.format(name="fair", choices="control, biased")


def test_the_methods_comparison_runs_every_method_with_every_loss():
    config = demo.methods_sweep_config("d")
    assert config.criteria == ("unstructured", "fairgrape", "fairprune")
    assert config.losses == ("ce", "pw", "constrained") and not config.paired
    assert config.reductions == (0.5, 0.9) and config.seeds == (0, 1, 2)
    assert len(list(iter_cells(config))) == 3 * 3 * 2 * 3
    assert config.dataset_options == {"preset": "biased"}


def test_the_demo_command_line():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    args = sub.choices["demo"].parse_args([])
    assert (args.criteria, args.arms, args.control, args.only_seeds) == (
        "taylor", "paper", False, None
    )  # fmt: skip
    args = sub.choices["demo"].parse_args(
        ["--criteria", "autobot", "--arms", "all", "--control", "--only-seeds", "0"]
    )
    assert (args.criteria, args.arms, args.control, args.only_seeds) == (
        "autobot", "all", True, [0]
    )  # fmt: skip
    with pytest.raises(SystemExit):
        sub.choices["demo"].parse_args(["--criteria", "l1"])


def test_the_dense_model_is_found_again_for_its_preset_only(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_TRAIN", replace(demo.DEMO_TRAIN, epochs=1, batch_size=64))
    biased = {"preset": "biased", **TINY}
    control = {"preset": "control", **TINY}
    assert demo.find_demo_model(tmp_path, options=biased) is None
    record = demo.ensure_demo_model(tmp_path, options=biased)
    assert record.config["dataset_options"] == biased
    assert record.config["train"]["epochs"] == 1
    assert record.name.startswith("synthderm-biased-demo_cnn-dense-")  # a variant: its own name
    again = demo.find_demo_model(tmp_path, options=biased)
    assert again is not None and again.sha256 == record.sha256
    assert demo.ensure_demo_model(tmp_path, options=biased).path == record.path  # not retrained
    assert demo.find_demo_model(tmp_path, options=control) is None  # another preset, another model
    monkeypatch.setattr(demo, "DEMO_TRAIN", replace(demo.DEMO_TRAIN, epochs=2))
    assert demo.find_demo_model(tmp_path, options=biased) is None  # another training config


def test_a_stopped_dense_model_is_not_saved(tmp_path):
    # stopped at its first step: one line, and nothing in the model store for a later run to reuse
    opts = {"preset": "biased", "limit": 64, "test_limit": 30}
    with pytest.raises(FairpruneError) as err:
        demo.ensure_demo_model(tmp_path, should_stop=lambda: True, options=opts)
    assert str(err.value) == demo.ERR_DENSE_STOPPED
    assert not list(tmp_path.glob("*.safetensors"))
    assert demo.find_demo_model(tmp_path, options=opts) is None
