"""sweep_form: the Sparsity sweep page's form as plain functions (URL defaults, the config)."""

import pytest

from fairprune.app import sweep_form
from fairprune.config import FinetuneConfig, SweepConfig
from fairprune.errors import FairpruneError


def test_the_form_builds_the_sweep_it_shows():
    config = sweep_form.build_sweep_config(
        dataset_choice=("csv", "/data/x", "/data/x/d.csv", {"image_size": 32}),
        dense_path="/models/d.safetensors", criteria=["l1", "taylor"], losses=["ce", "pw"],
        levels=[0.9, 0.5], seeds="0, 2,", min_weight=0.75, gamma=5, paired=True, epochs=4,
    )  # fmt: skip
    assert config == SweepConfig(
        dataset="csv", data_root="/data/x", csv="/data/x/d.csv",
        dataset_options={"image_size": 32}, dense_model="/models/d.safetensors",
        criteria=("l1", "taylor"), losses=("ce", "pw"), reductions=(0.5, 0.9), seeds=(0, 2),
        min_weight=0.75, gamma=5.0, paired=True, finetune=FinetuneConfig(epochs=4),
        name="csv l1/taylor ce/pw",
    )  # fmt: skip


@pytest.mark.parametrize("seeds", ["0,one", "1.5", "0;1"])
def test_seeds_that_are_not_whole_numbers_are_one_line(seeds):
    with pytest.raises(FairpruneError) as err:
        sweep_form.parse_seeds(seeds)
    assert str(err.value) == sweep_form.ERR_SEEDS
    assert sweep_form.ERR_SEEDS == "Seeds must be whole numbers separated by commas, e.g. 0,1,2."


def test_url_parameters_set_the_defaults_and_a_bad_one_falls_back():
    qp = {"levels": "0.5,0.9", "epochs": "x", "criteria": "l1,,taylor"}
    assert sweep_form.query_list(qp, "levels", [0.75], float) == [0.5, 0.9]
    assert sweep_form.query_list(qp, "epochs", [3], int) == [3]
    assert sweep_form.query_list(qp, "criteria", ["l2"]) == ["l1", "taylor"]
    assert sweep_form.query_list(qp, "losses", ("ce", "pw")) == ["ce", "pw"]
