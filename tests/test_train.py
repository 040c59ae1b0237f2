"""Fine-tuning: the PW loss reaches the optimiser with the right dense rows, seeded and repeatable."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from fairprune.config import FinetuneConfig, TrainConfig
from fairprune.errors import FairpruneError
from fairprune.loss import performance_weighted_loss
from fairprune.train import ERR_DENSE_ROWS, ERR_NO_DENSE, finetune, train_dense


class TensorSplit:
    """A minimal in-memory split with the SplitData batching contract."""

    def __init__(self, x, y, g):
        self.x, self.labels, self.groups = x, y.numpy(), g.numpy()

    def __len__(self):
        return len(self.x)

    def batches(self, batch_size, *, shuffle=False, seed=0, augment=False, indices=None):
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self))
        for s in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[s : s + batch_size])
            yield (
                self.x[idx],
                torch.from_numpy(self.labels)[idx],
                torch.from_numpy(self.groups)[idx],
                idx,
            )


def _data(n=24, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, 4, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return TensorSplit(x, y, torch.zeros(n, dtype=torch.long))


def _model(classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, classes))


def test_one_pw_step_equals_manual_adamw_step():
    split = _data()
    dense = torch.randn(len(split), 3, generator=torch.Generator().manual_seed(1))
    model = _model()
    ref = copy.deepcopy(model)
    cfg = FinetuneConfig(loss="pw", min_weight=0.4, gamma=2.0, epochs=1, lr=0.05,
                         weight_decay=0.01, batch_size=len(split), device="cpu")  # fmt: skip
    finetune(model, split, cfg, dense_logits=dense)

    # one full batch, shuffled: the loss must use the dense rows of the shuffled indices
    x, y, _g, idx = next(split.batches(len(split), shuffle=True, seed=0))
    opt = torch.optim.AdamW(ref.parameters(), lr=0.05, weight_decay=0.01)
    loss = performance_weighted_loss(ref(x), y, dense[idx], min_weight=0.4, gamma=2.0)
    loss.backward()
    opt.step()
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_pw_with_w_min_one_and_one_hot_matches_ce():
    split = _data()
    dense = torch.randn(len(split), 3)
    a, b = _model(), _model()
    base = FinetuneConfig(epochs=2, lr=0.01, batch_size=8, device="cpu")
    finetune(a, split, FinetuneConfig(**{**base.__dict__, "loss": "ce"}))
    # weights-only ablation with w_min = 1 is exactly cross-entropy
    cfg = FinetuneConfig(**{**base.__dict__, "loss": "pw_weights", "min_weight": 1.0})
    finetune(b, split, cfg, dense_logits=dense)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_training_is_seeded_and_learns():
    split = _data(n=64, classes=2, seed=3)
    # a separable task: the label is the sign of the mean of channel 0
    split.labels = (split.x[:, 0].mean(dim=(1, 2)) > 0).long().numpy()
    cfg = TrainConfig(epochs=30, lr=0.05, batch_size=16, seed=7, device="cpu")
    a = train_dense(_model(2), split, cfg)
    b = train_dense(_model(2), split, cfg)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    with torch.no_grad():
        acc = (a(split.x).argmax(1).numpy() == split.labels).mean()
    assert acc >= 0.95


def test_single_logit_binary_finetune_runs_and_matches_manual_step():
    split = _data(n=16, classes=2)
    dense = torch.randn(len(split), 1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 1))
    ref = copy.deepcopy(model)
    cfg = FinetuneConfig(loss="pw", min_weight=0.3, gamma=1.0, epochs=1, lr=0.1,
                         batch_size=16, device="cpu")  # fmt: skip
    finetune(model, split, cfg, dense_logits=dense)
    x, y, _g, idx = next(split.batches(16, shuffle=True, seed=0))
    opt = torch.optim.AdamW(ref.parameters(), lr=0.1, weight_decay=cfg.weight_decay)
    performance_weighted_loss(ref(x), y, dense[idx], min_weight=0.3, gamma=1.0).backward()
    opt.step()
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_errors():
    split = _data()
    with pytest.raises(FairpruneError) as err:
        finetune(_model(), split, FinetuneConfig(loss="pw", device="cpu"))
    assert str(err.value) == ERR_NO_DENSE.format(loss="pw")
    with pytest.raises(FairpruneError) as err:
        finetune(
            _model(), split, FinetuneConfig(loss="pw", device="cpu"), dense_logits=torch.zeros(5, 3)
        )
    assert str(err.value) == ERR_DENSE_ROWS.format(got=5, want=len(split))


def test_should_stop_ends_early_without_steps():
    split = _data()
    model = _model()
    before = [p.clone() for p in model.parameters()]
    finetune(model, split, FinetuneConfig(device="cpu"), should_stop=lambda: True)
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_zeroed_weights_stay_zero_through_finetuning():
    # unstructured pruning leaves exact zeros; fine-tuning must not revive them
    split = _data(n=48)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.ReLU(), nn.Linear(8, 3))
    torch.manual_seed(0)
    with torch.no_grad():
        model[1].weight[:, ::2] = 0.0  # half of the first layer's weights
    zeros = model[1].weight == 0
    assert int(zeros.sum()) == 8 * 24
    for loss in ("ce", "pw", "constrained"):
        pruned = copy.deepcopy(model)
        dense = torch.randn(len(split), 3, generator=torch.Generator().manual_seed(1))
        cfg = FinetuneConfig(loss=loss, epochs=2, lr=0.05, batch_size=16, device="cpu")
        finetune(pruned, split, cfg, dense_logits=dense)
        w = pruned[1].weight
        assert (w[zeros] == 0).all()
        assert (w[~zeros] != model[1].weight[~zeros]).all()  # the kept weights did train
        assert not pruned[1].weight._backward_hooks  # the gradient masks were removed
    revived = copy.deepcopy(model)
    finetune(revived, split, FinetuneConfig(epochs=2, lr=0.05, batch_size=16, keep_zeros=False,
                                            device="cpu"))  # fmt: skip
    assert int((revived[1].weight == 0).sum()) == 0
