"""Iterative Taylor: scores by hand, the FLOPs target within one point."""

import pytest
import torch
import torch.nn.functional as F

from fairprune.config import PruneConfig
from fairprune.nets.architectures import build_model
from fairprune.prune.groups import build_graph, channel_groups
from fairprune.prune.objective import task_loss
from fairprune.prune.registry import prune_model
from fairprune.prune.taylor import taylor_scores
from tests.prune.test_pruning import Tiny, _calib, tiny_macs


def test_scores_are_normalised_abs_mean_activation_times_gradient():
    torch.manual_seed(0)
    model = Tiny().eval()
    groups = channel_groups(model, build_graph(model, 8))
    assert len(groups) == 1  # the residual ties c1 and c2 outputs together
    x = torch.rand(4, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 0])
    scores = taylor_scores(model, groups, (x, y, None), lambda z, t, d: F.cross_entropy(z, t),
                           torch.device("cpu"))  # fmt: skip
    # by hand: the group's activations are the outputs of b1 and b2
    h1 = model.b1(model.c1(x))
    h1.retain_grad()
    a1 = F.relu(h1)
    h2 = model.b2(model.c2(a1))
    h2.retain_grad()
    out = model.fc(F.relu(a1 + h2).mean(dim=(2, 3)))
    F.cross_entropy(out, y).backward()
    s = (h1 * h1.grad).mean(dim=(0, 2, 3)).abs() + (h2 * h2.grad).mean(dim=(0, 2, 3)).abs()
    torch.testing.assert_close(scores[0], (s / s.norm()).detach())


def test_iterative_taylor_reaches_target():
    torch.manual_seed(0)
    model = build_model("demo_cnn", 3, 16).eval()
    calib = _calib(model)
    for crit in ("iter_taylor", "pw_iter_taylor"):
        cfg = PruneConfig(criterion=crit, target_reduction=0.7, taylor_step_batches=1)
        res = prune_model(model, cfg, input_size=16, calib=calib)
        assert abs(res.flops_reduction - 0.7) <= 0.01
        assert res.model(torch.rand(2, 3, 16, 16)).shape == (2, 3)


def test_one_step_removes_the_lowest_scoring_channel():
    # target: exactly one of Tiny's 8 coupled channels; no training between steps, so the channel
    # removed must be the argmin of the scores computed on the first calibration batch
    torch.manual_seed(1)
    model = Tiny().eval()
    calib = _calib(model, size=8)
    groups = channel_groups(model, build_graph(model, 8))
    loss = task_loss(False, PruneConfig())
    worst = int(taylor_scores(model, groups, calib[0], loss, torch.device("cpu"))[0].argmin())
    target = 1 - tiny_macs(7) / tiny_macs(8)
    cfg = PruneConfig(criterion="iter_taylor", target_reduction=target, taylor_step_batches=0)
    res = prune_model(model, cfg, input_size=8, calib=calib)
    assert res.flops_reduction == pytest.approx(target, abs=1e-12)
    keep = [c for c in range(8) if c != worst]
    assert torch.equal(res.model.c1.weight, model.c1.weight[keep])
    assert torch.equal(res.model.c2.weight, model.c2.weight[keep][:, keep])
