"""Sweeps: every cell lands in the store with its config; an interrupted sweep resumes."""

import json

import numpy as np
import pytest

from fairprune.config import FinetuneConfig, SweepConfig, TrainConfig
from fairprune.data import load_dataset
from fairprune.errors import FairpruneError
from fairprune.evaluate import predict
from fairprune.metrics import group_metrics
from fairprune.nets.architectures import build_model
from fairprune.nets.checkpoint import save_model
from fairprune.nets.flops import count_macs_params
from fairprune.nets.imports import load_model
from fairprune.sweep.grid import ERR_BAD_LEVEL, ERR_EMPTY_GRID, iter_cells, validate_sweep
from fairprune.sweep.results import ResultsStore
from fairprune.sweep.runner import run_sweep, summary_table
from fairprune.train import train_dense

TINY = {"limit": 240, "test_limit": 150, "n_val": 30, "image_size": 16}


@pytest.fixture(scope="module")
def dense_path(tmp_path_factory):
    bundle = load_dataset("synthderm", **TINY)
    model = build_model("demo_cnn", 2, 16)
    train_dense(model, bundle.splits["train"], TrainConfig(epochs=1, batch_size=64))
    macs, params = count_macs_params(model, 16)
    rec = save_model(
        model, tmp_path_factory.mktemp("models"), "dense", arch="demo_cnn", num_outputs=2,
        num_classes=2, input_size=16, dataset="synthderm", dataset_fingerprint=bundle.fingerprint,
        macs=macs, params=params,
    )  # fmt: skip
    return rec.path


def _config(dense_path, **kw):
    base = dict(
        dataset="synthderm", dataset_options=TINY, dense_model=dense_path, criteria=("l1",),
        losses=("ce", "pw"), reductions=(0.5, 0.8), finetune=FinetuneConfig(epochs=1, batch_size=64),
        n_boot=20,
    )  # fmt: skip
    base.update(kw)
    return SweepConfig(**base)


def test_sweep_writes_every_cell_and_resumes(tmp_path, dense_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    cfg = _config(dense_path)
    written = []

    def stop_after_first():
        return len(written) >= 1

    sweep_id = run_sweep(cfg, store=store, models_dir=tmp_path / "m", should_stop=stop_after_first,
                         on_cell=written.append)  # fmt: skip
    cells = store.cells(sweep_id)
    assert len(cells) == 2  # the dense baseline + the one finished cell; the rest was not started
    first_created = cells.set_index("cell_key").loc[written[0], "created"]

    again = []
    assert run_sweep(cfg, store=store, models_dir=tmp_path / "m", on_cell=again.append) == sweep_id
    cells = store.cells(sweep_id).set_index("cell_key")
    assert len(cells) == 5 and len(again) == 3  # 4 pruned cells + dense; 3 new this time
    assert written[0] not in again
    assert cells.loc[written[0], "created"] == first_created  # not recomputed

    # a rerun of a finished sweep computes nothing
    assert run_sweep(cfg, store=store, models_dir=tmp_path / "m", on_cell=again.append) == sweep_id
    assert len(again) == 3

    long = store.export_long(sweep_id)
    pruned = long[long["criterion"] == "l1"]
    assert set(pruned["loss"]) == {"ce", "pw"}
    assert (abs(pruned["flops_reduction"] - pruned["target_reduction"]) <= 0.01).all()
    dense = long[long["criterion"] == "dense"]
    assert (dense["target_reduction"] == 0).all() and set(dense["loss"]) == {"dense"}

    # every stored number is what the backend computes from the saved checkpoint
    row = cells.loc[again[0]]
    model, record = load_model(row["model_path"])
    assert record.sha256 == row["model_hash"]
    bundle = load_dataset("synthderm", **TINY)
    preds = predict(model, bundle.splits["test"])
    names = np.asarray(bundle.group_names, dtype=object)[preds.groups]
    table = group_metrics(preds.y_true, preds.y_pred, sensitive_features=names, n_boot=0)
    stored = long[long["cell_key"] == again[0]].set_index("group")
    for g, acc in table.set_index("group")["accuracy"].items():
        assert stored.loc[g, "accuracy"] == pytest.approx(acc)
    config = json.loads(row["config_json"])
    assert config["finetune"]["loss"] == row["loss"]
    assert config["prune"]["target_reduction"] == row["target_reduction"]

    wide = summary_table(store, sweep_id)
    assert set(wide.columns) >= {"light", "medium", "dark", "gap"}
    assert len(wide) == 5


def test_grid_validation(dense_path):
    cfg = _config(dense_path, criteria=("l1", "pw_taylor"), losses=("ce", "pw"), paired=True)
    cells = list(iter_cells(cfg))
    assert {(c.criterion, c.loss) for c in cells} == {("l1", "ce"), ("pw_taylor", "pw")}
    with pytest.raises(FairpruneError) as err:
        validate_sweep(_config(dense_path, reductions=(1.2,)))
    assert str(err.value) == ERR_BAD_LEVEL.format(value=1.2)
    with pytest.raises(FairpruneError) as err:
        validate_sweep(_config(dense_path, losses=()))
    assert str(err.value) == ERR_EMPTY_GRID
    with pytest.raises(FairpruneError) as err:
        validate_sweep(_config(dense_path, criteria=("pw_taylor",), losses=("ce",), paired=True))
    assert str(err.value) == ERR_EMPTY_GRID
