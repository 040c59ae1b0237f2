"""Structured pruning to a FLOPs target, criteria, MAC counting, unstructured pruning."""

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fairprune.config import PruneConfig
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import build_model
from fairprune.nets.flops import count_macs_params
from fairprune.prune.context import PruneContext
from fairprune.prune.registry import CRITERIA, ERR_UNKNOWN, is_unstructured, prune_model
from fairprune.prune.targeting import (
    ERR_NEEDS_DATA,
    ERR_TARGET_RANGE,
    ERR_TOLERANCE,
    _refine_aligned,
    unreachable,
)
from fairprune.prune.unstructured import ERR_AMOUNT, unstructured_prune


class Tiny(nn.Module):
    """conv(3→8) → conv(8→8) + residual → pool → linear(8→3)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = F.relu(h + self.b2(self.c2(h)))
        return self.fc(h.mean(dim=(2, 3)))


def tiny_macs(k: int) -> int:
    """Torch-Pruning's MAC count of ``Tiny`` at 8 px with ``k`` channels in its one group.

    c1: k·3·9 per pixel; c2: k·k·9 per pixel; two affine BNs: 2 per element each; the head:
    k·3 + 3 (bias). 64 pixels. ReLU and the mean are functional calls, not counted.
    """
    return 64 * (k * 3 * 9 + k * k * 9 + 2 * 2 * k) + k * 3 + 3


def _calib(model, n=2, size=16, classes=3):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.rand(8, 3, size, size, generator=g)
        y = torch.randint(0, classes, (8,), generator=g)
        with torch.no_grad():
            out.append((x, y, model(x)))
    return out


def test_macs_match_a_hand_count():
    model = Tiny()
    macs, params = count_macs_params(model, 8)
    assert tiny_macs(8) == 52_763
    assert macs == 52_763
    assert params == 3 * 8 * 9 + 8 * 8 * 9 + 4 * 8 + 8 * 3 + 3 == 851


def test_tiny_residual_prunes_to_a_hand_counted_level():
    # the residual add ties c1 and c2 outputs: one group; 4 of 8 channels left is 67.46%
    model = Tiny().eval()
    target = 1 - tiny_macs(4) / tiny_macs(8)
    res = prune_model(model, PruneConfig(criterion="l1", target_reduction=target), input_size=8)
    assert res.flops_reduction == pytest.approx(target, abs=1e-12)
    assert (res.macs_before, res.macs_after) == (52_763, 17_167)
    assert (res.model.c1.out_channels, res.model.c2.out_channels) == (4, 4)
    assert (res.model.fc.in_features, res.model.fc.out_features) == (4, 3)  # head outputs kept
    assert res.channel_ratio == pytest.approx(0.5, abs=0.07)
    assert model.c1.out_channels == 8  # the argument is untouched


@pytest.mark.parametrize("criterion", ["random", "l1", "l2", "taylor", "pw_taylor"])
@pytest.mark.parametrize("target", [0.5, 0.9])
def test_reaches_target_within_one_point(criterion, target):
    torch.manual_seed(0)
    model = build_model("demo_cnn", 3, 16).eval()  # residual block inside
    before = copy.deepcopy(model.state_dict())
    calib = _calib(model) if CRITERIA[criterion].needs_data else None
    res = prune_model(model, PruneConfig(criterion=criterion, target_reduction=target),
                      input_size=16, calib=calib)  # fmt: skip
    assert abs(res.flops_reduction - target) <= 0.01
    macs, params = count_macs_params(res.model, 16)
    assert res.macs_after == macs and res.params_after == params
    assert res.flops_reduction == pytest.approx(1 - macs / res.macs_before)
    assert res.macs_before == count_macs_params(model, 16)[0]
    assert res.model.fc.out_features == 3  # head never pruned
    assert res.model(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    for k, v in model.state_dict().items():  # the argument is untouched
        assert torch.equal(v, before[k])


def test_single_logit_binary_taylor():
    torch.manual_seed(0)
    model = build_model("demo_cnn", 1, 16).eval()
    calib = _calib(model, classes=2)
    for crit in ("taylor", "pw_taylor"):
        res = prune_model(model, PruneConfig(criterion=crit, target_reduction=0.6),
                          input_size=16, calib=calib)  # fmt: skip
        assert abs(res.flops_reduction - 0.6) <= 0.01
        assert res.model(torch.rand(2, 3, 16, 16)).shape == (2, 1)


def test_resnet18_small_input():
    torch.manual_seed(0)
    model = build_model("resnet18", 2, 32).eval()
    res = prune_model(model, PruneConfig(criterion="l1", target_reduction=0.75), input_size=32)
    assert abs(res.flops_reduction - 0.75) <= 0.01
    assert res.model.fc.out_features == 2
    assert res.model(torch.rand(1, 3, 32, 32)).shape == (1, 2)


def test_pw_taylor_gradients_are_those_of_the_pw_loss():
    from fairprune.loss import performance_weighted_loss
    from fairprune.prune.objective import accumulate_gradients, task_loss

    torch.manual_seed(3)
    model = Tiny().eval()
    g = torch.Generator().manual_seed(5)
    x = torch.rand(32, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (32,), generator=g)
    dense = torch.randn(32, 3, generator=g) * 4
    cfg = PruneConfig(criterion="pw_taylor", min_weight=0.1, gamma=3.0)
    accumulate_gradients(model, [(x, y, dense)], task_loss(True, cfg), torch.device("cpu"))
    pw_grad = model.c1.weight.grad.clone()
    ref = copy.deepcopy(model)
    ref.zero_grad()
    performance_weighted_loss(ref(x), y, dense, min_weight=0.1, gamma=3.0).backward()
    torch.testing.assert_close(pw_grad, ref.c1.weight.grad)
    accumulate_gradients(model, [(x, y, dense)], task_loss(False, cfg), torch.device("cpu"))
    ref.zero_grad()
    F.cross_entropy(ref(x), y).backward()
    torch.testing.assert_close(model.c1.weight.grad, ref.c1.weight.grad)
    assert not torch.allclose(pw_grad, model.c1.weight.grad)


class TwoPaths(nn.Module):
    """Channels 0-1 read input channel 0 (class-0 evidence), channels 2-3 read input channel 1."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 1, bias=False)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.c1.weight.zero_()
            self.c1.weight[0:2, 0, 0, 0] = torch.tensor([1.0, 1.1])
            self.c1.weight[2:4, 1, 0, 0] = torch.tensor([1.0, 1.1])
            self.fc.weight.copy_(torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.3, 0.3]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(F.relu(self.c1(x)).mean(dim=(2, 3)))


def test_pw_taylor_and_ce_taylor_keep_different_channels():
    # 7 samples the dense model gets right (p = 0.74) light up channels 0-1; one it gets wrong
    # (p = 0.35) lights up channels 2-3. CE: the seven unsure-but-right samples give channels 0-1
    # the larger gradients, so 2-3 go. PW: where the dense model is right its soft target equals
    # its own output, the gradient there is exactly 0, so 0-1 score 0 and go.
    model = TwoPaths().eval()
    assert count_macs_params(model, 8)[0] == 64 * 3 * 4 + 4 * 2 + 2 == 778
    x = torch.zeros(8, 3, 8, 8)
    x[:7, 0] = 1.0
    x[7, 1] = 1.0
    y = torch.zeros(8, dtype=torch.long)
    with torch.no_grad():
        dense = model(x)  # (8, 2)
    assert (dense.argmax(1) == y).tolist() == [True] * 7 + [False]
    target = 1 - (64 * 3 * 2 + 2 * 2 + 2) / 778  # two of four channels removed: 49.87%
    kept = {}
    for crit in ("taylor", "pw_taylor"):
        res = prune_model(model, PruneConfig(criterion=crit, target_reduction=target),
                          input_size=8, calib=[(x, y, dense)])  # fmt: skip
        assert res.flops_reduction == pytest.approx(target, abs=1e-12)
        kept[crit] = res.model.c1.weight[:, :2, 0, 0].tolist()
    assert kept["taylor"] == [[1.0, 0.0], [pytest.approx(1.1), 0.0]]  # channels 0, 1
    assert kept["pw_taylor"] == [[0.0, 1.0], [0.0, pytest.approx(1.1)]]  # channels 2, 3


def test_errors():
    model = Tiny()
    with pytest.raises(FairpruneError) as err:
        prune_model(model, PruneConfig(criterion="nope"), input_size=8)
    assert str(err.value) == ERR_UNKNOWN.format(name="nope", choices=", ".join(CRITERIA))
    with pytest.raises(FairpruneError) as err:
        prune_model(model, PruneConfig(target_reduction=1.0), input_size=8)
    assert str(err.value) == ERR_TARGET_RANGE.format(target=1.0)
    with pytest.raises(FairpruneError) as err:
        prune_model(model, PruneConfig(criterion="taylor"), input_size=8)
    assert str(err.value) == ERR_NEEDS_DATA.format(name="taylor")
    with pytest.raises(FairpruneError) as err:
        unstructured_prune(model, 1.0)
    assert str(err.value) == ERR_AMOUNT.format(amount=1.0)


def test_unreachable_target_says_how_far_it_can_go():
    # at most half of each layer's channels may go: 4 of 8 left, 17 167 of 52 763 MACs
    cfg = PruneConfig(target_reduction=0.999, max_layer_ratio=0.5)
    with pytest.raises(FairpruneError) as err:
        prune_model(Tiny(), cfg, input_size=8)
    best = 1 - tiny_macs(4) / tiny_macs(8)
    assert str(err.value) == unreachable(0.999, best, 0.5)
    assert str(err.value).startswith("a 99.90% FLOPs reduction is out of reach for this model: "
                                     "at most 67.46% keeps")  # fmt: skip


def demo_cnn_macs(c0: int, c1: int, c2: int, c3: int, size: int = 32, outputs: int = 2) -> int:
    """MACs of ``DemoCNN`` with stem/layer1(+res1)/layer2/layer3 widths c0..c3, by hand: each
    3×3 conv cin·cout·9 per output pixel (stem and res1 at full and half size, layer1 strided to
    half, layer2 to a quarter, layer3 at a quarter), each BN 2 per element, each ``nn.ReLU`` and
    the average pool 1 per input element (the residual's functional relu is not counted), the
    head K·c3 + K."""
    full, half, quarter = size * size, (size // 2) ** 2, (size // 4) ** 2
    convs = (3 * c0 * 9 * full + c0 * c1 * 9 * half + c1 * c1 * 9 * half
             + c1 * c2 * 9 * quarter + c2 * c3 * 9 * quarter)  # fmt: skip
    bns = 2 * (c0 * full + 2 * c1 * half + c2 * quarter + c3 * quarter)
    relus = c0 * full + c1 * half + c2 * quarter + c3 * quarter
    return convs + bns + relus + c3 * quarter + outputs * c3 + outputs


def test_round_to_16_reaches_the_target_in_whole_blocks():
    """AVX-512 holds 16 floats: widths that are multiples of 16 run at full vector width. The
    demo CNN's stem has 24 channels, so a uniform ratio stops at 16 per layer (54%); the aligned
    top-up then takes one group's block of 16 at a time until 75% is reached."""
    torch.manual_seed(0)
    model = build_model("demo_cnn", 2, 32)
    assert count_macs_params(model, 32)[0] == demo_cnn_macs(24, 48, 96, 96)
    cfg = PruneConfig(criterion="l1", target_reduction=0.75, round_to=16)
    result = prune_model(model, cfg, input_size=32)
    widths = [m.out_channels for m in result.model.modules() if isinstance(m, nn.Conv2d)]
    assert all(w % 16 == 0 and w >= 16 for w in widths)
    assert widths[1] == widths[2]  # layer1 and the residual conv stay coupled
    c0, c1, _, c2, c3 = widths
    assert result.macs_after == demo_cnn_macs(c0, c1, c2, c3)
    assert result.flops_reduction == pytest.approx(1 - result.macs_after / result.macs_before)
    assert abs(result.flops_reduction - 0.75) <= 0.01
    assert result.channel_ratio is None  # not a uniform ratio
    x = torch.rand(4, 3, 32, 32)
    assert result.model(x).shape == (4, 2)
    again = prune_model(model, cfg, input_size=32)  # same seed: byte-identical weights
    assert all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                 again.model.state_dict().values(), strict=True))  # fmt: skip


def test_aligned_step_takes_the_block_that_costs_least_importance_per_mac():
    """One aligned step on the dense demo CNN: layer2's channels 80..95 are made near-zero, so
    dropping them costs almost no importance per MAC saved and that step wins over layer3's
    least important block (layer1's block overshoots the target); the other 80 channels of
    layer2 are kept as they were."""
    torch.manual_seed(0)
    model = build_model("demo_cnn", 2, 32).eval()
    with torch.no_grad():
        model.layer2[0].weight[80:] *= 1e-4
        model.layer2[1].weight[80:] *= 1e-4
        model.layer3[0].weight[:, 80:] *= 1e-4
    macs0 = demo_cnn_macs(24, 48, 96, 96)
    target = 1 - demo_cnn_macs(24, 48, 80, 96) / macs0
    cfg = PruneConfig(criterion="l1", target_reduction=target, tolerance=1e-6, round_to=16)
    red, pruned = _refine_aligned(model, CRITERIA["l1"].prune, cfg, 32, macs0, None)
    assert red == pytest.approx(target)
    widths = [m.out_channels for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [24, 48, 48, 80, 96]
    assert torch.equal(pruned.layer2[0].weight, model.layer2[0].weight[:80])
    assert torch.equal(pruned.layer3[0].weight, model.layer3[0].weight[:, :80])
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)][3] == 96


@pytest.mark.parametrize("criterion", ["taylor", "pw_taylor"])
def test_round_to_16_with_a_data_driven_criterion(criterion):
    """Taylor scores read the gradients: every aligned step is taken in place, so the pruned
    gradients stay with the model for the next step's scores."""
    torch.manual_seed(0)
    model = build_model("demo_cnn", 2, 32)
    cfg = PruneConfig(criterion=criterion, target_reduction=0.75, round_to=16)
    result = prune_model(model, cfg, input_size=32, calib=_calib(model, size=32, classes=2))
    widths = [m.out_channels for m in result.model.modules() if isinstance(m, nn.Conv2d)]
    assert all(w % 16 == 0 for w in widths)
    assert abs(result.flops_reduction - 0.75) <= 0.01
    assert all(p.grad is None for p in result.model.parameters())


def test_round_to_16_says_how_far_it_can_go():
    torch.manual_seed(0)
    cfg = PruneConfig(criterion="l1", target_reduction=0.95, round_to=16)
    with pytest.raises(FairpruneError) as err:
        prune_model(build_model("demo_cnn", 2, 32), cfg, input_size=32)
    best = 1 - demo_cnn_macs(16, 16, 16, 16) / demo_cnn_macs(24, 48, 96, 96)
    assert str(err.value) == unreachable(0.95, best, 0.98, 16)
    assert "keeps 16 channels (round_to) in every layer" in str(err.value)
    assert str(err.value).endswith("or lower round_to.")


def test_target_between_two_channel_counts_is_refused():
    # one group of 8 channels: 7 left is 20.14%, 6 left is 38.10%; nothing lands within 1 point
    # of 30%, and the closest is 6 channels
    with pytest.raises(FairpruneError) as err:
        prune_model(Tiny(), PruneConfig(target_reduction=0.3), input_size=8)
    best = 1 - tiny_macs(6) / tiny_macs(8)
    assert str(err.value) == ERR_TOLERANCE.format(target=0.3, tol=1.0, best=best)


def test_unstructured_reaches_sparsity_but_no_flops():
    torch.manual_seed(0)
    model = build_model("demo_cnn", 2, 16)
    pruned, sparsity = unstructured_prune(model, 0.8)
    assert sparsity == pytest.approx(0.8, abs=1e-3)
    assert count_macs_params(pruned, 16)[0] == count_macs_params(model, 16)[0]
    assert not any("_orig" in k for k in pruned.state_dict())  # made permanent
    assert torch.equal(pruned.fc.weight, model.fc.weight)  # head excluded
    assert float((model.stem[0].weight == 0).float().mean()) == 0.0  # argument untouched


def test_every_criterion_is_called_the_same_way():
    # one interface, prune(model, config, context) -> PruneResult, whatever the method
    assert [n for n in CRITERIA if is_unstructured(n)] == ["unstructured", "fairgrape", "fairprune"]
    torch.manual_seed(0)
    model = build_model("demo_cnn", 2, 16)
    cfg = PruneConfig(criterion="unstructured", target_reduction=0.8)
    result = CRITERIA["unstructured"].prune(model, cfg, PruneContext(16))
    pruned, sparsity = unstructured_prune(model, 0.8)
    assert result.weight_sparsity == sparsity == pytest.approx(0.8, abs=1e-3)
    assert torch.equal(result.model.stem[0].weight, pruned.stem[0].weight)
    macs, params = count_macs_params(model, 16)
    assert (result.macs_before, result.macs_after, result.flops_reduction) == (macs, macs, 0.0)
    assert result.params_before == result.params_after == params
    again = prune_model(model, cfg, input_size=16)  # the same call through prune_model
    assert torch.equal(again.model.stem[0].weight, pruned.stem[0].weight)
    with pytest.raises(FairpruneError) as err:
        CRITERIA["taylor"].prune(model, replace(cfg, criterion="taylor"), PruneContext(16))
    assert str(err.value) == ERR_NEEDS_DATA.format(name="taylor")
