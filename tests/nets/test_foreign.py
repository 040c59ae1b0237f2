"""State dicts pruned or wrapped by other tools load into our architectures with equal outputs."""

import pytest
import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune as torch_prune

from fairprune.errors import FairpruneError
from fairprune.nets.architectures import build_model
from fairprune.nets.foreign import (
    ERR_DIM,
    ERR_HOLLOW_TENSOR,
    ERR_INPUT_SIZE,
    ERR_MASK_PAIR,
    ERR_WIRING,
    MAX_DIM,
    MAX_INPUT_SIZE,
    model_from_state,
    unwrap_state,
)
from fairprune.nets.imports import import_upload, load_model

SIZE = 32


def _stats(model):
    """Non-default BN running stats, so a buffer that failed to load would change the outputs."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _tp_prune(model, ratio=0.5):
    """What a Torch-Pruning user does: BasePruner, magnitude importance, the head kept."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    tp.pruner.BasePruner(
        model, torch.zeros(1, 3, SIZE, SIZE), importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=ratio, ignored_layers=[head],
    ).step()  # fmt: skip
    return model.eval()


def _params(model):
    return sum(p.numel() for p in model.parameters())


def _max_diff(a, b, x):
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_torch_pruning_state_dict_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    model = _tp_prune(_stats(build_model(arch, 10, SIZE)))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if arch == "resnet18":
        assert model.conv1.out_channels == 32  # the "(32, 3, 7, 7), expected (64, 3, 7, 7)"
    else:  # depthwise convs stay depthwise: in = out = groups, halved
        dw = [m for m in convs if m.groups > 1]
        assert len(dw) == 17 and all(m.groups == m.in_channels == m.out_channels for m in dw)
        assert dw[0].groups == 16  # 32 before pruning
    path = tmp_path / f"{arch}.pt"
    torch.save(model.state_dict(), path)
    loaded, rec = load_model(path, arch=arch, input_size=SIZE)
    x = torch.rand(4, 3, SIZE, SIZE)
    assert _max_diff(model, loaded, x) <= 1e-5
    assert (rec.kind, rec.num_outputs, rec.num_classes) == ("pruned", 10, 10)
    assert rec.params == _params(model) < _params(build_model(arch, 10, SIZE)) * 0.3
    resized = [m for m in loaded.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.groups) for m in resized] == [
        (m.in_channels, m.out_channels, m.groups) for m in convs
    ]


def test_torch_nn_utils_prune_masks_and_dataparallel_prefix(tmp_path):
    torch.manual_seed(0)
    model = _stats(build_model("resnet18", 10, SIZE))
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    torch_prune.global_unstructured(
        [(m, "weight") for m in layers], pruning_method=torch_prune.L1Unstructured, amount=0.6
    )
    torch_prune.l1_unstructured(model.fc, "bias", amount=0.5)
    state = model.state_dict()
    assert "fc.weight" not in state and "fc.weight_orig" in state and "fc.bias_mask" in state
    path = tmp_path / "masked.pth"
    torch.save({"epoch": 9, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded, rec = load_model(path, arch="resnet18", input_size=SIZE)
    x = torch.rand(4, 3, SIZE, SIZE)
    assert _max_diff(model, loaded, x) <= 1e-5
    assert rec.kind == "pruned" and rec.params == 11_181_642  # resnet18 at 10 classes, unresized
    assert not any(hasattr(m, "weight_orig") for m in loaded.modules())  # plain weights
    plain = [m for m in loaded.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    zero = sum(int((m.weight == 0).sum()) for m in plain)
    assert zero == round(0.6 * sum(m.weight.numel() for m in layers))  # global L1 at 60%
    assert int((loaded.fc.bias == 0).sum()) == 5


def test_both_tools_together_on_mobilenet_v2(tmp_path):
    torch.manual_seed(0)
    model = _tp_prune(_stats(build_model("mobilenet_v2", 3, SIZE)), ratio=0.3)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:  # depthwise, masked on top of resized
            torch_prune.l1_unstructured(m, "weight", amount=0.5)
    plain, prefix, masked = unwrap_state(
        {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    )
    assert prefix == "module._orig_mod." and len(masked) == 17
    assert all(name.endswith(".weight") for name in masked)
    f = model_from_state(model.state_dict(), "upload", "mobilenet_v2", num_classes=3,
                         input_size=SIZE)  # fmt: skip
    assert f.kind == "pruned" and len(f.masked) == 17 and len(f.layer_shapes) > 17
    assert _max_diff(model, f.model, torch.rand(2, 3, SIZE, SIZE)) <= 1e-5
    # an upload becomes a stored, rebuildable pruned checkpoint
    torch.save(model.state_dict(), tmp_path / "m.pt")
    rec = import_upload((tmp_path / "m.pt").read_bytes(), "m.pt", tmp_path / "store",
                        arch="mobilenet_v2", num_classes=3, input_size=SIZE)  # fmt: skip
    assert rec.kind == "pruned" and rec.layer_shapes == f.layer_shapes
    again, _ = load_model(rec.path)
    assert _max_diff(model, again, torch.rand(2, 3, SIZE, SIZE)) <= 1e-5


def test_inconsistent_or_hostile_state_dicts(tmp_path):
    good = build_model("demo_cnn", 2, 16).state_dict()

    def error(state, size=16):
        with pytest.raises(FairpruneError) as err:
            model_from_state(state, "f.pt", "demo_cnn", input_size=size)
        return str(err.value)

    # one conv pruned, its BatchNorm not: the layers cannot chain
    assert error({**good, "stem.0.weight": torch.zeros(12, 3, 3, 3)}) == ERR_WIRING.format(
        path="f.pt", arch="demo_cnn",
        detail="layer 'stem.1' (BatchNorm2d) does not fit its input (running_mean should contain "
        "12 elements not 24)",
    )  # fmt: skip
    assert error({**good, "stem.0.weight": torch.zeros(0, 3, 3, 3)}) == ERR_DIM.format(
        path="f.pt", name="stem.0", attr="out_channels", value=0, cap=MAX_DIM, arch="demo_cnn"
    )
    # a zero-stride tensor claims a million values on one float of storage
    hollow = torch.zeros(1).expand(10**6)
    assert error({**good, "stem.1.weight": hollow}) == ERR_HOLLOW_TENSOR.format(
        path="f.pt", key="stem.1.weight", numel=10**6, stored=1
    )
    w = good.pop("fc.weight")
    assert error({**good, "fc.weight_orig": w, "fc.weight_mask": torch.ones(2, 95)}) == (
        ERR_MASK_PAIR.format(path="f.pt", name="fc.weight", detail="shapes (2, 96) and (2, 95)")
    )
    both = {**good, "fc.weight": w, "fc.weight_orig": w, "fc.weight_mask": torch.ones_like(w)}
    assert error(both) == ERR_MASK_PAIR.format(
        path="f.pt", name="fc.weight", detail="'fc.weight' is stored as well"
    )
    assert error({**good, "fc.weight": w}, size=MAX_INPUT_SIZE + 1) == ERR_INPUT_SIZE.format(
        size=MAX_INPUT_SIZE + 1, cap=MAX_INPUT_SIZE
    )


def test_hostile_pt_file_through_load_model(tmp_path):
    state = build_model("demo_cnn", 2, 16).state_dict()
    state["layer3.1.running_var"] = torch.ones(1).expand(96)  # saved as 1 float, stride 0
    path = tmp_path / "h.pt"
    torch.save(state, path)
    with pytest.raises(FairpruneError) as err:
        load_model(path, arch="demo_cnn", input_size=16)
    assert str(err.value) == ERR_HOLLOW_TENSOR.format(
        path=path, key="layer3.1.running_var", numel=96, stored=1
    )
