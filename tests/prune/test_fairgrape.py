"""FairGRAPE: the greedy per-layer selection, per-group importance, the iterative schedule."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fairprune.config import PruneConfig
from fairprune.data.base import SplitData
from fairprune.errors import FairpruneError
from fairprune.prune.context import PruneContext
from fairprune.prune.fairgrape import (
    ERR_KEEP,
    _schedule,
    greedy_keep,
    group_importance,
)
from fairprune.prune.objective import calibration_batches
from fairprune.prune.registry import CRITERIA, prune_model
from fairprune.prune.unstructured import ERR_NEEDS_SPLIT, ERR_SPARSITY, weight_sparsity

# a layer of six weights, two groups: importance of each weight for each group
LAYER = np.array(
    [
        [10.0, 0.0],  # w0: only group 0 needs it
        [8.0, 1.0],  # w1
        [0.0, 5.0],  # w2: only group 1 needs it
        [1.0, 4.0],  # w3
        [3.0, 3.0],  # w4
        [0.5, 0.5],  # w5
    ]
)


def test_greedy_selection_matches_a_hand_computed_keep_set():
    # targets: group 0 holds 22.5 / 36 = 0.625 of the layer's importance, group 1 0.375.
    # shares start at 1/2 each: group 0 is furthest below (−0.125) and takes w0 → shares (1, 0);
    # group 1 (−0.375) takes w2 → (10/15, 5/15); group 1 is still below (−0.042) and takes w3.
    assert np.flatnonzero(greedy_keep(LAYER, 3)).tolist() == [0, 2, 3]
    # plain top-3 by summed importance would keep w0, w1, w4 and leave group 1 almost nothing
    assert np.argsort(-LAYER.sum(1), kind="stable")[:3].tolist() == [0, 1, 4]
    # a fourth weight: shares (11/20, 9/20) put group 0 below (−0.075): its next is w1
    assert np.flatnonzero(greedy_keep(LAYER, 4)).tolist() == [0, 1, 2, 3]
    # two weights per deficit check: group 0 takes w0 and w1, then group 1 takes w2
    assert np.flatnonzero(greedy_keep(LAYER, 3, batch=2)).tolist() == [0, 1, 2]
    # w0 pruned in an earlier round: targets come from the candidates (12.5 vs 13.5 of 26);
    # group 1 (−0.019) takes w2 → (0, 1); group 0 takes w1 → (8/14, 6/14); group 1 takes w3
    cand = np.array([False, True, True, True, True, True])
    assert np.flatnonzero(greedy_keep(LAYER, 3, candidates=cand)).tolist() == [1, 2, 3]
    # an explicit target, all to group 1: group 1 takes w2 → shares (0, 1) meet both targets;
    # the tie goes to the lower group index, so group 0 takes w0 → (10/15, 5/15), then group 1 w3
    target = np.array([0.0, 1.0])
    assert np.flatnonzero(greedy_keep(LAYER, 3, target=target)).tolist() == [0, 2, 3]


def test_greedy_ties_and_limits():
    flat = np.ones((4, 2))
    # equal importance: the larger tiebreak (|w|) is kept first
    kept = greedy_keep(flat, 2, tiebreak=np.array([0.1, 0.4, 0.3, 0.2]))
    assert np.flatnonzero(kept).tolist() == [1, 2]
    assert greedy_keep(flat, 4).all() and not greedy_keep(flat, 0).any()
    # zero importance everywhere: uniform targets, index order
    assert np.flatnonzero(greedy_keep(np.zeros((3, 2)), 2)).tolist() == [0, 1]
    with pytest.raises(FairpruneError):
        greedy_keep(flat, 5)


def test_schedule_keeps_ninety_percent_per_round():
    assert _schedule(0.5, 0.9) == pytest.approx([0.1, 0.19, 0.271, 0.3439, 0.40951, 0.468559, 0.5])
    assert _schedule(0.05, 0.9) == [0.05]
    assert len(_schedule(0.9, 0.9)) == 22  # ceil(log 0.1 / log 0.9)


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(h.mean(dim=(2, 3)))


def _split(n=96, groups=3, seed=0):
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(rng.integers(0, 256, size=(n, 3, 6, 6)).astype(np.uint8))
    labels = rng.integers(0, 2, n)
    return SplitData(labels, np.arange(n) % groups, [str(i) for i in range(n)], 6, images=img)


def test_group_importance_is_squared_weight_times_group_gradient():
    torch.manual_seed(0)
    model, split = Small().eval(), _split()
    cfg = PruneConfig(calib_batches=2, calib_batch_size=32)
    batches = calibration_batches(split, cfg)
    before = copy.deepcopy(model.state_dict())
    imp = group_importance(model, batches, 3, torch.device("cpu"))
    for k, v in model.state_dict().items():  # no optimizer step while scoring
        assert torch.equal(v, before[k])
    want = torch.zeros(model.c2.weight.numel(), 3, dtype=torch.float64)
    for x, y, g in batches:
        for gi in range(3):
            sel = g == gi
            grad = torch.autograd.grad(F.cross_entropy(model(x[sel]), y[sel]), model.c2.weight)[0]
            want[:, gi] += ((model.c2.weight * grad).double() ** 2).reshape(-1)
    assert set(imp) == {"c1", "c2"}  # the head is never scored
    assert torch.allclose(imp["c2"], want, rtol=1e-5, atol=1e-12)
    assert (imp["c2"] > 0).float().mean() > 0.5  # not trivially zero (dead ReLUs give zeros)


def test_fairgrape_prunes_every_layer_to_the_target_sparsity():
    torch.manual_seed(0)
    model, split = Small().eval(), _split()
    before = copy.deepcopy(model.state_dict())
    cfg = PruneConfig(criterion="fairgrape", target_reduction=0.5, calib_batches=2,
                      calib_batch_size=32, fairgrape_step_batches=1)  # fmt: skip
    result = CRITERIA["fairgrape"].prune(model, cfg, PruneContext(6, split=split))
    pruned, sparsity = result.model, result.weight_sparsity
    assert result.macs_after == result.macs_before and result.flops_reduction == 0.0
    # c1: 108 weights keep round(54) = 54; c2: 216 keep 108 → 162 zeros of 324
    assert int((pruned.c1.weight == 0).sum()) == 54
    assert int((pruned.c2.weight == 0).sum()) == 108
    assert sparsity == weight_sparsity(pruned) == pytest.approx(162 / 324)
    assert (pruned.fc.weight != 0).all()  # the head is never pruned (it is fine-tuned)
    for k, v in model.state_dict().items():  # the argument is untouched
        assert torch.equal(v, before[k])
    # the kept weights moved in the short fine-tunes between rounds
    kept = pruned.c2.weight != 0
    assert not torch.equal(pruned.c2.weight[kept], model.c2.weight[kept])


def test_fairgrape_errors():
    model, split = Small(), _split()
    prune, context = CRITERIA["fairgrape"].prune, PruneContext(6, split=split)
    with pytest.raises(FairpruneError) as err:
        prune(model, PruneConfig(target_reduction=1.2), context)
    assert str(err.value) == ERR_SPARSITY.format(target=1.2)
    with pytest.raises(FairpruneError) as err:
        prune(model, PruneConfig(target_reduction=0.5, fairgrape_keep_per_iter=1.0), context)
    assert str(err.value) == ERR_KEEP.format(keep=1.0)
    with pytest.raises(FairpruneError) as err:
        prune_model(model, PruneConfig(criterion="fairgrape"), input_size=6)
    assert str(err.value) == ERR_NEEDS_SPLIT.format(name="fairgrape")


def test_prune_model_runs_unstructured_criteria_through_the_same_interface():
    torch.manual_seed(0)
    model, split = Small().eval(), _split()
    cfg = PruneConfig(criterion="fairgrape", target_reduction=0.5, calib_batches=2,
                      calib_batch_size=32, fairgrape_step_batches=1)  # fmt: skip
    direct = CRITERIA["fairgrape"].prune(model, cfg, PruneContext(6, split=split))
    result = prune_model(model, cfg, input_size=6, split=split)
    assert result.weight_sparsity == direct.weight_sparsity == pytest.approx(162 / 324)
    for k, v in direct.model.state_dict().items():  # same seed: the same weights
        assert torch.equal(result.model.state_dict()[k], v)
