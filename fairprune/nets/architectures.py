"""Architectures by name: built from scratch (no downloads), head sized to the task.

Every entry returns a model whose forward gives (N, num_outputs) logits; ``num_outputs == 1`` is a
single-logit binary head. Torchvision models are always built with ``weights=None``: nothing is
ever downloaded, so every model here starts from random weights.

A torchvision name always means torchvision's exact model with only the last layer sized to the
task: at 1000 outputs ``resnet18`` has 11,689,512 parameters and ``vgg16_bn`` 138,365,992, as in
torchvision, so a state dict saved from a torchvision model loads here (pruned or not, see
``fairprune.nets.foreign``).

``vgg16_slim`` is our own VGG-16: torchvision's ``vgg16_bn`` features (batch norm makes VGG-16
train from scratch and gives Torch-Pruning a per-channel scale), but a global average pool and a
512-512-K classifier instead of the 7×7 pool and 25088-wide classifier, so that small inputs (32 px)
train well and the head stays in proportion (15,498,792 parameters at 1000 outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from fairprune.errors import FairpruneError

ERR_UNKNOWN_ARCH = "unknown architecture {name!r}; choose one of: {choices}."
ERR_OUTPUTS = "num_outputs must be >= 1, got {n}."
ERR_NO_HEAD = "the model has no nn.Linear classifier head; fairprune needs one."


class DemoCNN(nn.Module):
    """A small residual CNN for 32-64 px images that trains in about a minute on 2 CPU cores.

    Four conv-BN-ReLU blocks (``w``, ``2w``, ``4w``, ``4w`` channels; 24-96 at the default width),
    one residual conv at ``2w``, global average pooling and a linear head: 16.8 M MACs and 157 k
    parameters at 32 px. One step of 128 images takes ~0.1 s on 2 CPU cores, so 10 epochs of
    10 000 images take ~80 s. The residual add couples channels (a realistic dependency for the
    pruner) and every layer keeps enough channels to reach 95-99% FLOPs reduction.
    """

    def __init__(self, num_outputs: int, width: int = 24):
        super().__init__()

        def block(cin, cout, stride):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
            )

        w = width
        self.stem = block(3, w, 1)
        self.layer1 = block(w, 2 * w, 2)
        self.res1 = nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * w)
        )
        self.layer2 = block(2 * w, 4 * w, 2)
        self.layer3 = block(4 * w, 4 * w, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, w, S, S)
        x = self.layer1(x)  # (N, 2w, S/2, S/2)
        x = torch.relu(x + self.res1(x))  # residual: coupled channels for the pruner
        x = self.layer2(x)  # (N, 4w, S/4, S/4)
        x = self.layer3(x)
        return self.fc(torch.flatten(self.pool(x), 1))  # (N, num_outputs)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            # option B: a 1x1 projection, so every add has explicit, prunable channels
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs (He et al. 2016, section 4.2): 3 stages of n basic blocks.

    ``depth = 6n + 2``; 56 gives 3 stages × 9 blocks at 16/32/64 channels. Where a block changes
    width or stride its shortcut is a 1×1 conv + BN (option B), not the zero-padding of option A,
    which Torch-Pruning cannot trace as a channel dependency.
    """

    def __init__(self, depth: int, num_outputs: int):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(_BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_outputs)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def _torchvision(name: str) -> Callable[[int, int], nn.Module]:
    """Factory for torchvision's exact classifier ``name`` with a ``num_outputs`` head."""

    def make(num_outputs: int, input_size: int) -> nn.Module:
        # weights=None: random init, never a download; these nets pool adaptively before the head,
        # so any input of at least 32 px works
        return getattr(torchvision.models, name)(weights=None, num_classes=num_outputs)

    return make


def _vgg16_slim(num_outputs: int, input_size: int) -> nn.Module:
    # vgg16_bn: batch norm makes training from scratch reliable; the adaptive pool lets small
    # inputs through, and a slimmer classifier keeps the head proportionate to small images
    model = torchvision.models.vgg16_bn(weights=None)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(
        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(512, num_outputs)
    )
    return model


@dataclass(frozen=True)
class ArchSpec:
    """An architecture: its factory and a one-line description for the UI and CLI."""

    factory: Callable[[int, int], nn.Module]  # (num_outputs, input_size) -> model
    description: str  # shown in select boxes and --help
    default_input_size: int = 224  # input side assumed for a state dict that does not say


ARCHITECTURES: dict[str, ArchSpec] = {
    "demo_cnn": ArchSpec(lambda k, s: DemoCNN(k), "small residual CNN for the SynthDerm demo", 32),
    "resnet18": ArchSpec(_torchvision("resnet18"), "torchvision ResNet-18 (CelebA in the paper)"),
    "resnet34": ArchSpec(_torchvision("resnet34"), "torchvision ResNet-34 (Fitzpatrick17k)"),
    "resnet50": ArchSpec(_torchvision("resnet50"), "torchvision ResNet-50"),
    "vgg16": ArchSpec(_torchvision("vgg16"), "torchvision VGG-16 (no batch norm), exact"),
    "vgg16_bn": ArchSpec(_torchvision("vgg16_bn"), "torchvision VGG-16 with batch norm, exact"),
    "vgg16_slim": ArchSpec(
        _vgg16_slim, "VGG-16 with batch norm, global pool and a compact 512-512 classifier"
    ),
    "efficientnet_v2_s": ArchSpec(_torchvision("efficientnet_v2_s"), "EfficientNetV2-S"),
    "efficientnet_v2_m": ArchSpec(_torchvision("efficientnet_v2_m"), "EfficientNetV2-M"),
    "mobilenet_v2": ArchSpec(_torchvision("mobilenet_v2"), "MobileNetV2"),
    "resnet56": ArchSpec(lambda k, s: CifarResNet(56, k), "CIFAR ResNet-56 (He et al. 2016)", 32),
}


def build_model(arch: str, num_outputs: int, input_size: int) -> nn.Module:
    """Build an architecture from scratch.

    Parameters
    ----------
    arch : str
        Key of ``ARCHITECTURES``.
    num_outputs : int
        Logits per sample (1 = single-logit binary).
    input_size : int
        Square side of the inputs.

    Returns
    -------
    nn.Module
    """
    if arch not in ARCHITECTURES:
        raise FairpruneError(ERR_UNKNOWN_ARCH.format(name=arch, choices=", ".join(ARCHITECTURES)))
    if num_outputs < 1:
        raise FairpruneError(ERR_OUTPUTS.format(n=num_outputs))
    return ARCHITECTURES[arch].factory(int(num_outputs), int(input_size))


def head_of(model: nn.Module) -> nn.Linear:
    """The classifier head: the last ``nn.Linear`` in module order (never pruned).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    nn.Linear
    """
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    if last is None:
        raise FairpruneError(ERR_NO_HEAD)
    return last
