"""AutoBot: gates reach the FLOPs target; the differentiable count matches the real one."""

import pytest
import torch

from fairprune.config import PruneConfig
from fairprune.nets.architectures import build_model
from fairprune.nets.flops import count_macs_params
from fairprune.prune.autobot import _flops, _flops_terms
from fairprune.prune.groups import build_graph, channel_groups
from fairprune.prune.registry import prune_model
from tests.prune.test_pruning import Tiny, _calib, tiny_macs


def test_differentiable_flops_with_all_gates_open_is_the_conv_and_linear_macs():
    model = Tiny().eval()
    groups = channel_groups(model, build_graph(model, 8))
    terms = _flops_terms(model, groups, 8, torch.device("cpu"))
    f0 = _flops(terms, [torch.tensor(float(g.size)) for g in groups])
    assert float(f0) == 8 * 3 * 9 * 64 + 8 * 8 * 9 * 64 + 8 * 3
    # half the channels open: both convs' outputs and c2's input shrink
    half = _flops(terms, [torch.tensor(4.0) for _ in groups])
    assert float(half) == 4 * 3 * 9 * 64 + 4 * 4 * 9 * 64 + 4 * 3


def test_autobot_reaches_target_and_keeps_weights_frozen():
    torch.manual_seed(0)
    model = build_model("demo_cnn", 3, 16).eval()
    calib = _calib(model)
    for crit in ("autobot", "pw_autobot"):
        cfg = PruneConfig(criterion=crit, target_reduction=0.8, autobot_iters=40)
        res = prune_model(model, cfg, input_size=16, calib=calib)
        assert abs(res.flops_reduction - 0.8) <= 0.01
        assert res.flops_reduction == 1 - count_macs_params(res.model, 16)[0] / res.macs_before
        # frozen weights: each kept stem filter equals one of the dense filters
        dense_w = model.stem[0].weight
        for w in res.model.stem[0].weight:
            assert any(torch.equal(w, d) for d in dense_w)
        assert res.model.fc.out_features == 3


def test_autobot_prunes_residual_coupled_channels_together():
    # c1 and c2 outputs meet in a residual add: one gate vector, pruned as one group; the target
    # is exactly 4 of 8 channels (hand-counted MACs), which the gate threshold must land on
    torch.manual_seed(0)
    model = Tiny().eval()
    target = 1 - tiny_macs(4) / tiny_macs(8)
    cfg = PruneConfig(criterion="autobot", target_reduction=target, autobot_iters=20)
    res = prune_model(model, cfg, input_size=8, calib=_calib(model, size=8))
    assert res.flops_reduction == pytest.approx(target, abs=1e-12)
    assert (res.model.c1.out_channels, res.model.c2.out_channels, res.model.fc.in_features) == (
        4, 4, 4,
    )  # fmt: skip
    assert res.model.c2.in_channels == 4 and res.model.fc.out_features == 3
