"""The evaluation networks of the hard-label protocol (SPEC section 5; IDC and Minimax).

Every network uses instance normalisation, written as ``nn.GroupNorm(C, C, affine=True)`` (one
group per channel), as in IDC (Kim et al., ICML 2022) and Minimax (Gu et al., CVPR 2024).

* ``convnet-3``, ``convnet-6``: ConvNet-D, D blocks of conv 3x3 (width 128, padding 1, bias)
  -> norm -> ReLU -> avg-pool 2x2, then one linear layer on the flattened features.
* ``resnetap-10``: IDC's ResNetAP. Every convolution has stride 1; a downsampling block pools 2x2
  after its first convolution, and its shortcut is conv 1x1 -> avg-pool 2x2 -> norm. The stem is
  conv 7x7 (64 channels, stride 1) -> norm -> ReLU, followed by a 4x4 average pooling only for
  inputs larger than 128 px. One basic block per stage (64/128/256/512), global average pooling,
  linear.
* ``resnetap-10-w32``: the same network at half width (32/64/128/256 channels, a quarter of the
  compute). Not in the paper: the embedded CPU preset evaluates with it because the full-width
  ResNetAP-10 tests at about 100 images/s on one CPU core at 32 px, which alone would exceed the
  preset's time budget (issue 3; listed on the book's deviations page).
* ``resnet-18``: torchvision's ResNet-18 layout with instance norm.

Parameter counts for 10 classes and RGB inputs (SPEC section 5, checked by the tests):
ResNetAP-10 4,910,922 (at half width 1,232,810); ResNet-18 11,181,642; ConvNet-6 754,570 at 224 px; ConvNet-3 320,010 at 32 px.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def instance_norm(channels: int) -> nn.Module:
    """Instance normalisation as IDC writes it: GroupNorm with one group per channel, affine."""
    return nn.GroupNorm(channels, channels, affine=True)


class ConvNet(nn.Module):
    """ConvNet-D of the dataset-distillation literature (DC, DSA, IDC): D conv blocks, then linear."""

    def __init__(self, depth: int, num_classes: int, channels: int, image_size: int, width: int = 128):
        super().__init__()
        layers: list[nn.Module] = []
        size, cin = image_size, channels
        for d in range(depth):
            if size < 2:
                raise ValueError(f"convnet-{depth} needs images of at least {2 ** depth} px "
                                 f"(got {image_size} px): raise eval.image_size or use a shallower network")
            layers += [nn.Conv2d(cin, width, 3, padding=1, bias=True), instance_norm(width), nn.ReLU(inplace=True),
                       nn.AvgPool2d(2, 2)]
            size, cin = size // 2, width  # avg-pool floors odd sizes (28 -> 14 -> 7 -> 3)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> features [B, width, H / 2^D, W / 2^D] -> logits [B, num_classes]
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlockAP(nn.Module):
    """IDC's basic block: stride-1 convolutions, downsampling by 2x2 average pooling."""

    def __init__(self, cin: int, cout: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=False)
        self.norm1 = instance_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.norm2 = instance_norm(cout)
        if downsample or cin != cout:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, stride=1, bias=False)]
            if downsample:
                layers.append(nn.AvgPool2d(2, 2))
            layers.append(instance_norm(cout))
            self.shortcut: nn.Module = nn.Sequential(*layers)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.downsample:
            out = F.avg_pool2d(out, 2, 2)  # pool after conv1, before the norm (IDC's order)
        out = F.relu(self.norm1(out))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetAP(nn.Module):
    """ResNetAP-10 of IDC: one basic block per stage, widths 64/128/256/512."""

    def __init__(self, num_classes: int, channels: int, image_size: int, widths=(64, 128, 256, 512)):
        super().__init__()
        stem: list[nn.Module] = [nn.Conv2d(channels, widths[0], 7, stride=1, padding=3, bias=False),
                                 instance_norm(widths[0]), nn.ReLU(inplace=True)]
        if image_size > 128:
            stem.append(nn.AvgPool2d(4, 4))  # ImageNet-sized inputs: 224 -> 56 before the stages
        self.stem = nn.Sequential(*stem)
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlockAP(cin, w, downsample=i > 0))
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> [B, widths[-1], H', W'] -> global average pool [B, widths[-1]] -> logits
        out = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def _convnet(depth: int) -> Callable[[int, int, int], nn.Module]:
    def make(num_classes: int, channels: int, image_size: int) -> nn.Module:
        return ConvNet(depth, num_classes, channels, image_size)

    return make


def _resnetap10(widths: tuple[int, int, int, int]) -> Callable[[int, int, int], nn.Module]:
    def make(num_classes: int, channels: int, image_size: int) -> nn.Module:
        if image_size < 8:
            raise ValueError(f"resnetap-10 needs images of at least 8 px (got {image_size} px): "
                             f"raise eval.image_size")
        return ResNetAP(num_classes, channels, image_size, widths)

    return make


def _resnet18(num_classes: int, channels: int, image_size: int) -> nn.Module:
    if image_size < 64:
        # Stride-2 stem, max-pool and three strided stages leave 1x1 maps below 64 px, where instance
        # norm maps every activation to its bias: the network can still train but barely learns.
        warnings.warn(f"resnet-18 at {image_size} px ends with feature maps of 1x1, where instance norm "
                      f"removes the signal; prefer resnetap-10 or convnet-3 for small images", stacklevel=3)
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes, norm_layer=instance_norm)
    if channels != 3:
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


NETWORKS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "convnet-3": _convnet(3),
    "convnet-6": _convnet(6),
    "resnetap-10": _resnetap10((64, 128, 256, 512)),
    "resnetap-10-w32": _resnetap10((32, 64, 128, 256)),
    "resnet-18": _resnet18,
}


def build(name: str, num_classes: int, channels: int, image_size: int) -> nn.Module:
    """A freshly initialised network `name` for `num_classes` classes and [channels, image_size^2] inputs."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}: choose one of {', '.join(NETWORKS)}")
    for label, value in (("num_classes", num_classes), ("channels", channels), ("image_size", image_size)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{label}={value!r} must be a positive integer")
    return NETWORKS[name](num_classes, channels, image_size)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
