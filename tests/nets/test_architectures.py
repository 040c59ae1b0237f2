"""Every architecture builds from scratch, prunes to a FLOPs target and reloads identically; a
torchvision name is torchvision's exact model."""

import pytest
import torch
import torchvision
from torch import nn

from fairprune.config import PruneConfig
from fairprune.errors import FairpruneError
from fairprune.nets.architectures import (
    ARCHITECTURES,
    ERR_NO_HEAD,
    ERR_OUTPUTS,
    ERR_UNKNOWN_ARCH,
    build_model,
    head_of,
)
from fairprune.nets.checkpoint import save_model
from fairprune.nets.imports import load_model
from fairprune.nets.manifest import ARCHITECTURE_NAMES
from fairprune.prune.registry import prune_model


def test_registry_keys():
    assert sorted(ARCHITECTURES) == [
        "demo_cnn", "efficientnet_v2_m", "efficientnet_v2_s", "mobilenet_v2", "resnet18",
        "resnet34", "resnet50", "resnet56", "vgg16", "vgg16_bn", "vgg16_slim",
    ]  # fmt: skip
    # the manifest reader's torch-free copy of the names (listing the store imports no Torch)
    assert ARCHITECTURE_NAMES == set(ARCHITECTURES)


# torchvision's own counts at 1000 classes (its model docs list the same)
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "efficientnet_v2_s": 21_458_488,
    "efficientnet_v2_m": 54_139_356,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
}


@pytest.mark.parametrize("arch", sorted(TORCHVISION_PARAMS))
def test_torchvision_names_are_torchvision_models(arch):
    with torch.device("meta"):  # layout only: VGG-16 at 1000 classes allocates nothing
        ours = build_model(arch, 1000, 224)
        theirs = getattr(torchvision.models, arch)(weights=None)
    assert _params(ours) == TORCHVISION_PARAMS[arch]
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    with torch.device("meta"):
        assert head_of(build_model(arch, 7, 224)).out_features == 7


def test_the_slim_vgg_keeps_its_own_name():
    with torch.device("meta"):
        slim = build_model("vgg16_slim", 1000, 224)
    assert _params(slim) == 15_498_792
    assert ARCHITECTURES["vgg16"].factory is not ARCHITECTURES["vgg16_slim"].factory


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_build_prune_save_reload(arch, tmp_path):
    torch.manual_seed(0)
    model = build_model(arch, 3, 32).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    assert head_of(model).out_features == 3
    if arch in ("efficientnet_v2_m", "resnet50", "vgg16", "vgg16_bn"):
        return  # same blocks as a smaller entry, several times its pruning time: built and run
    res = prune_model(model, PruneConfig(criterion="l1", target_reduction=0.5), input_size=32)
    assert abs(res.flops_reduction - 0.5) <= 0.01
    rec = save_model(res.model, tmp_path, arch, arch=arch, num_outputs=3, num_classes=3,
                     input_size=32, kind="pruned")  # fmt: skip
    assert rec.layer_shapes  # pruning changed layers, and the manifest says which
    loaded, _ = load_model(rec.path)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(res.model(x), loaded(x))


@pytest.mark.parametrize("target", [0.95, 0.99])
def test_demo_cnn_prunes_to_extreme_targets(target):
    model = build_model("demo_cnn", 2, 32).eval()
    res = prune_model(model, PruneConfig(criterion="l1", target_reduction=target), input_size=32)
    assert abs(res.flops_reduction - target) <= 0.01
    assert res.model(torch.rand(2, 3, 32, 32)).shape == (2, 2)


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_hand_counted_sizes():
    # demo_cnn: convs 3·24·9 + 24·48·9 + 48·48·9 + 48·96·9 + 96·96·9 = 156 168, five BNs
    # 2·(24+48+48+96+96) = 624, head 96·2 + 2 = 194
    assert _params(build_model("demo_cnn", 2, 32)) == 156_986
    # ResNet-56 with option-A shortcuts has 853 018 parameters for 10 classes (He et al. 2016,
    # "0.85M"); option B adds the 1×1 conv + BN projections 16→32 and 32→64: 512 + 64 + 2048 + 128
    r56 = build_model("resnet56", 10, 32)
    assert _params(r56) == 853_018 + 2_752
    blocks = [m for m in r56.layers]
    assert len(blocks) == 27
    assert [b.conv2.out_channels for b in blocks[::9]] == [16, 32, 64]
    assert sum(len(b.shortcut) > 0 for b in blocks) == 2
    vgg = build_model("vgg16_slim", 4, 32)
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and sum(isinstance(m, nn.BatchNorm2d) for m in vgg.modules()) == 13
    assert [m.out_features for m in vgg.classifier if isinstance(m, nn.Linear)] == [512, 4]


def test_single_logit_head_and_errors():
    assert build_model("resnet18", 1, 32).eval()(torch.rand(1, 3, 32, 32)).shape == (1, 1)
    with pytest.raises(FairpruneError) as err:
        build_model("alexnet", 2, 32)
    assert str(err.value) == ERR_UNKNOWN_ARCH.format(
        name="alexnet", choices=", ".join(ARCHITECTURES)
    )
    assert str(err.value).startswith("unknown architecture 'alexnet'; choose one of: demo_cnn, ")
    with pytest.raises(FairpruneError) as err:
        build_model("demo_cnn", 0, 32)
    assert str(err.value) == ERR_OUTPUTS.format(n=0)
    with pytest.raises(FairpruneError) as err:
        head_of(nn.Sequential(nn.Conv2d(3, 4, 1)))
    assert str(err.value) == ERR_NO_HEAD
