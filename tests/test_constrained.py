"""Constrained fine-tuning (Hashemizadeh et al. 2024): ψ_g ≤ ε per group, proxy constraints."""

import math
from collections import deque

import numpy as np
import pytest
import torch
from torch import nn

from fairprune.config import FinetuneConfig, TrainConfig
from fairprune.constrained import (
    ERR_BUFFER,
    ERR_DUAL_LR,
    ERR_TOLERANCE,
    DenseReference,
    ExcessGapProblem,
)
from fairprune.data.base import SplitData
from fairprune.errors import FairpruneError
from fairprune.train import ERR_NO_DENSE_CONSTRAINED, finetune, train_dense

EPS = 0.01  # the paper's tolerance, the default
SLACK = 0.03  # ψ_g is steered by 40-prediction buffers: their sampling noise is a few points


class Net(nn.Module):
    """An MLP (the dense model) or, with ``hidden=0``, a linear model (the 'sparse' one)."""

    def __init__(self, hidden: int):
        super().__init__()
        layers = [nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, 2)] if hidden else [
            nn.Linear(12, 2)]  # fmt: skip
        self.net = nn.Sequential(nn.Flatten(), *layers)

    def forward(self, x):
        return self.net(x - 0.5)


@pytest.fixture(scope="module")
def toy():
    """Two groups, 90% / 10%: the majority's label is pixel a, the minority's pixel b.

    A third pixel says which group a row is in, so an MLP learns both rules (the dense model is
    right on 99.5% of each group), but a linear model cannot switch features by group: it can
    serve the majority (what cross-entropy prefers) or share its accuracy between the groups.
    """
    rng = np.random.default_rng(0)
    n_maj, n_min = 1800, 200
    n = n_maj + n_min
    img = rng.integers(0, 256, size=(n, 3, 2, 2)).astype(np.uint8)
    groups = np.r_[np.zeros(n_maj, np.int64), np.ones(n_min, np.int64)]
    img[:, 2, 1, 1] = np.where(groups == 1, 255, 0)
    labels = np.where(groups == 0, img[:, 0, 0, 0] > 127, img[:, 1, 0, 0] > 127).astype(np.int64)
    split = SplitData(labels, groups, [str(i) for i in range(n)], 2, images=torch.from_numpy(img))
    torch.manual_seed(0)
    dense = Net(32)
    train_dense(dense, split, TrainConfig(epochs=20, batch_size=100, lr=1e-2))
    with torch.no_grad():
        dense_logits = torch.cat([dense(x) for x, *_ in split.batches(500)])  # (N, 2)
    return split, dense_logits


def psi_on(split, dense_logits, model) -> np.ndarray:
    """ψ_g on the whole training split, from scratch (not through the library)."""
    with torch.no_grad():
        logits = torch.cat([model(x) for x, *_ in split.batches(500)])
    right_s = logits.argmax(1).numpy() == split.labels
    right_d = dense_logits.argmax(1).numpy() == split.labels
    overall = right_d.mean() - right_s.mean()
    return np.array(
        [
            right_d[split.groups == k].mean() - right_s[split.groups == k].mean() - overall
            for k in (0, 1)
        ]  # fmt: skip
    )


def test_constrained_brings_the_minoritys_excess_gap_within_tolerance(toy):
    split, dense_logits = toy
    cfg = FinetuneConfig(epochs=15, batch_size=100, lr=2e-2, constrained_dual_lr=0.05)
    assert cfg.constrained_tolerance == EPS
    torch.manual_seed(1)
    ce_model = finetune(Net(0), split, cfg, dense_logits=dense_logits)
    psi_ce = psi_on(split, dense_logits, ce_model)
    assert psi_ce[1] > 0.3  # CE serves the majority: the minority loses ~45 points, overall ~9

    torch.manual_seed(1)
    trace = []
    model = finetune(
        Net(0), split, FinetuneConfig(**{**cfg.__dict__, "loss": "constrained"}),
        dense_logits=dense_logits, trace=trace,
    )  # fmt: skip
    psi = psi_on(split, dense_logits, model)
    assert psi.max() <= EPS + SLACK
    assert len(trace) == 15 * 20  # one record per step: 2000 rows / 100 per batch × 15 epochs

    # the multipliers follow projected SGD ascent on the buffered violations, step by step
    lam = np.array([r.multipliers for r in trace])  # (T, 2)
    seen = np.array([r.psi for r in trace])  # (T, 2), NaN before a buffer is full
    for t in range(1, len(trace)):
        for k in (0, 1):
            if math.isnan(seen[t, k]):
                assert lam[t, k] == lam[t - 1, k]
            else:
                want = max(0.0, lam[t - 1, k] + 0.05 * (seen[t, k] - EPS))
                assert lam[t, k] == pytest.approx(want, abs=1e-6)
    violated = ~np.isnan(seen[1:, 1]) & (seen[1:, 1] > EPS)
    assert violated.sum() > 10
    assert (np.diff(lam[:, 1])[violated] > 0).all()  # rising while the minority is violated
    assert lam[:, 1].max() > 0.1


def test_dense_reference_and_buffered_psi_by_hand():
    # 4 rows: groups 0, 0, 1, 1; the dense model gets rows 0, 1, 2 right
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [1.0, 0.0]])
    labels, groups = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
    ref = DenseReference.from_outputs(logits, labels, groups, 2)
    assert ref.group_acc.tolist() == [1.0, 0.5]
    assert ref.acc == 0.75
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor(labels), reduction="none")
    assert ref.group_loss.tolist() == pytest.approx([ce[:2].mean().item(), ce[2:].mean().item()])
    assert ref.share.tolist() == [0.5, 0.5]

    problem = ExcessGapProblem(ref, tolerance=0.01, buffer=4, device=torch.device("cpu"))
    problem.buffers = [deque([1, 1, 0, 1], maxlen=4), deque([0, 1], maxlen=4)]
    psi = problem.psi()
    # only group 0's buffer is full: A_sparse,0 = 0.75, and the average runs over group 0 alone
    assert psi[0] == pytest.approx((1.0 - 0.75) - (1.0 - 0.75))
    assert math.isnan(psi[1])
    problem.buffers[1].extend([0, 0])  # group 1 full: [0, 1, 0, 0] → 0.25
    psi = problem.psi()
    overall = (0.5 * 1.0 + 0.5 * 0.5) - (0.5 * 0.75 + 0.5 * 0.25)  # 0.25
    assert psi.tolist() == pytest.approx([(1.0 - 0.75) - overall, (0.5 - 0.25) - overall])


def test_constrained_errors(toy):
    split, dense_logits = toy
    with pytest.raises(FairpruneError) as err:
        finetune(Net(0), split, FinetuneConfig(loss="constrained"), dense_logits=None)
    assert str(err.value) == ERR_NO_DENSE_CONSTRAINED
    for field, value, message in [
        ("constrained_tolerance", -0.1, ERR_TOLERANCE),
        ("constrained_dual_lr", 0.0, ERR_DUAL_LR),
        ("constrained_buffer", 0, ERR_BUFFER),
    ]:
        cfg = FinetuneConfig(loss="constrained", epochs=1, **{field: value})
        with pytest.raises(FairpruneError) as err:
            finetune(Net(0), split, cfg, dense_logits=dense_logits)
        assert str(err.value) == message.format(value=value)


def test_fair_methods_through_the_cli_and_a_sweep_on_synthderm(tmp_path, capsys):
    """FairGRAPE and FairPrune pruning, constrained fine-tuning: CLI commands and one sweep."""
    import json

    from fairprune.cli import main
    from fairprune.nets.imports import load_model
    from fairprune.prune.unstructured import weight_sparsity
    from fairprune.sweep.results import ResultsStore

    opts = ["--option", "limit=240", "--option", "test_limit=90", "--option", "n_val=30",
            "--option", "image_size=16"]  # fmt: skip
    store = ["--models-dir", str(tmp_path / "m"), "--results", str(tmp_path / "r.sqlite")]
    assert main(["train", *store, *opts, "--epochs", "1", "--name", "d"]) == 0
    dense = capsys.readouterr().out.strip().splitlines()[-1]

    # prune: the target is weight sparsity; FLOPs are recorded as unchanged
    assert main(["prune", *store, *opts, "--model", dense, "--criterion", "fairgrape",
                 "--target", "0.5", "--keep-per-iter", "0.5", "--name", "g"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    reached = float(out.split("weight sparsity reached: ")[1].split()[0])
    assert abs(reached - 0.5) < 0.005
    pruned_path = out.strip().splitlines()[-1]
    pruned, rec = load_model(pruned_path)
    assert pruned_path.endswith(".safetensors") and rec.criterion == "fairgrape"
    assert rec.flops_reduction == 0.0 and rec.macs == load_model(dense)[1].macs
    assert weight_sparsity(pruned) == pytest.approx(reached, abs=1e-4)  # zeros in the file

    assert main(["finetune", *store, *opts, "--model", pruned_path, "--dense", dense, "--loss",
                 "constrained", "--epochs", "1", "--name", "gc"]) == 0  # fmt: skip
    tuned, rec = load_model(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec.loss == "constrained"
    assert rec.config["finetune"]["constrained_tolerance"] == EPS
    assert weight_sparsity(tuned) == pytest.approx(reached, abs=1e-4)  # zeros stayed zeros

    # one sweep: both criteria × CE and constrained, at one sparsity
    assert main(["sweep", *store, *opts, "--dense", dense, "--criteria", "fairgrape",
                 "fairprune", "--losses", "ce", "constrained", "--levels", "0.5", "--epochs",
                 "1", "--keep-per-iter", "0.5", "--n-boot", "0"]) == 0  # fmt: skip
    sweep_id = capsys.readouterr().out.split("sweep ")[1].split()[0]
    results = ResultsStore(tmp_path / "r.sqlite")
    cells = results.cells(sweep_id)
    cells = cells[cells["criterion"] != "dense"]
    assert sorted(zip(cells["criterion"], cells["loss"], strict=True)) == [
        ("fairgrape", "ce"), ("fairgrape", "constrained"), ("fairprune", "ce"),
        ("fairprune", "constrained"),
    ]  # fmt: skip
    for _, row in cells.iterrows():
        model, record = load_model(row["model_path"])
        assert record.flops_reduction == 0.0 and row["flops_reduction"] == 0.0
        assert abs(row["weight_sparsity"] - 0.5) < 0.005
        assert weight_sparsity(model) == pytest.approx(row["weight_sparsity"], abs=1e-9)
        config = json.loads(row["config_json"])
        assert config["prune"]["criterion"] == row["criterion"]
        assert config["finetune"]["loss"] == row["loss"]
    # pruning is shared by the two losses of a criterion: the same zeros under both
    for criterion in ("fairgrape", "fairprune"):
        pair = cells[cells["criterion"] == criterion]["model_path"].tolist()
        (a, _), (b, _) = load_model(pair[0]), load_model(pair[1])
        assert torch.equal(a.layer3[0].weight == 0, b.layer3[0].weight == 0)
