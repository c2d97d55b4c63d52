"""The evaluation networks of the hard-label protocol (book page: "Parity with the reference code").

Every network uses instance normalisation, written as ``nn.GroupNorm(C, C, affine=True)`` (one
group per channel), as in IDC (Kim et al., ICML 2022) and Minimax (Gu et al., CVPR 2024), whose
``models/`` and ``train_models/`` define the same networks. Two styles:

* ``"reference"`` (default): what IDC's code computes, layer for layer.
* ``"legacy"``: this package's 0.1 networks, with which the committed CPU results were computed.
  They differ from IDC's in the ResNetAP block order (pool right after conv1), the ResNetAP and
  ResNet-18 stems below 129 px (always the 7x7 stem), the ConvNet's first-layer padding on
  one-channel images, and PyTorch's default initialisation of the ResNetAP convolutions.

The networks (reference style):

* ``convnet-3``, ``convnet-6``: ConvNet-D, D blocks of conv 3x3 (width 128, bias) -> norm -> ReLU
  -> avg-pool 2x2, then one linear layer on the flattened features. The first convolution pads by
  3 on one-channel images (IDC: a 28 px image then maps as a 32 px one would), else by 1.
* ``resnetap-10``: IDC's ResNetAP. Every convolution has stride 1; a downsampling block runs
  conv1 -> norm -> ReLU -> avg-pool 2x2 -> conv2 -> norm, its shortcut conv 1x1 -> avg-pool 2x2
  -> norm. Stem by input size: above 128 px conv 7x7 (64 channels) -> norm -> ReLU -> avg-pool
  4x4; 65-128 px conv 3x3 -> norm -> ReLU -> avg-pool 2x2; up to 64 px conv 3x3 -> norm -> ReLU.
  One basic block per stage (64/128/256/512), global average pooling, linear. Convolutions are
  drawn from N(0, 2 / (k^2 C_out)).
* ``resnetap-10-w32``: the same network at half width (32/64/128/256 channels, a quarter of the
  compute). Not in the paper: the embedded CPU preset evaluates with it because the full-width
  ResNetAP-10 tests at about 100 images/s on one CPU core at 32 px (book page: deviations).
* ``resnet-18``: torchvision's ResNet-18 with instance norm; IDC's stems below 129 px (conv 3x3,
  stride 1, then a 3x3 max-pool for 65-128 px and none up to 64 px).

Parameter counts for 10 classes and RGB inputs (checked by the tests): ResNetAP-10 4,910,922 at
224 px and 4,903,242 at 32 px; ResNet-18 11,181,642 and 11,173,962; ConvNet-6 754,570 at 224 px;
ConvNet-3 320,010 at 32 px.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

STYLES = ("reference", "legacy")


def instance_norm(channels: int) -> nn.Module:
    """Instance normalisation as IDC writes it: GroupNorm with one group per channel, affine."""
    return nn.GroupNorm(channels, channels, affine=True)


def stem_kind(image_size: int) -> str:
    """IDC's choice of stem by input size: 'small' up to 64 px, 'mid' up to 128 px, 'large' above."""
    return "small" if image_size <= 64 else "mid" if image_size <= 128 else "large"


def idc_init(model: nn.Module) -> nn.Module:
    """IDC's initialisation: conv weights ~ N(0, 2 / (k^2 C_out)), norms weight 1 and bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


class ConvNet(nn.Module):
    """ConvNet-D of the dataset-distillation literature (DC, DSA, IDC): D conv blocks, then linear."""

    def __init__(self, depth: int, num_classes: int, channels: int, image_size: int, width: int = 128,
                 style: str = "reference"):
        super().__init__()
        layers: list[nn.Module] = []
        size, cin = image_size, channels
        for d in range(depth):
            pad = 3 if style == "reference" and channels == 1 and d == 0 else 1
            size = size + 2 * pad - 2  # a 3x3 convolution
            if size < 2:
                raise ValueError(f"convnet-{depth} needs images of at least {2 ** depth} px "
                                 f"(got {image_size} px): raise eval.image_size or use a shallower network")
            layers += [nn.Conv2d(cin, width, 3, padding=pad, bias=True), instance_norm(width),
                       nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            size, cin = size // 2, width  # avg-pool floors odd sizes (28 -> 14 -> 7 -> 3)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> features [B, width, H', W'] -> logits [B, num_classes]
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlockAP(nn.Module):
    """IDC's basic block: stride-1 convolutions, downsampling by 2x2 average pooling."""

    def __init__(self, cin: int, cout: int, downsample: bool, style: str = "reference"):
        super().__init__()
        self.downsample, self.style = downsample, style
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
        if self.style == "reference":  # IDC: conv1 -> norm -> ReLU -> pool
            out = F.relu(self.norm1(self.conv1(x)))
            if self.downsample:
                out = F.avg_pool2d(out, 2, 2)
        else:  # legacy: pool straight after conv1
            out = self.conv1(x)
            if self.downsample:
                out = F.avg_pool2d(out, 2, 2)
            out = F.relu(self.norm1(out))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _resnetap_stem(channels: int, width: int, image_size: int, style: str) -> nn.Sequential:
    kind = stem_kind(image_size) if style == "reference" else ("large" if image_size > 128 else "legacy")
    k = 7 if kind in ("large", "legacy") else 3
    layers: list[nn.Module] = [nn.Conv2d(channels, width, k, stride=1, padding=k // 2, bias=False),
                               instance_norm(width), nn.ReLU(inplace=True)]
    if kind == "large":
        layers.append(nn.AvgPool2d(4, 4))  # ImageNet-sized inputs: 224 -> 56 before the stages
    elif kind == "mid":
        layers.append(nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


class ResNetAP(nn.Module):
    """ResNetAP-10 of IDC: one basic block per stage, widths 64/128/256/512."""

    def __init__(self, num_classes: int, channels: int, image_size: int, widths=(64, 128, 256, 512),
                 style: str = "reference"):
        super().__init__()
        self.stem = _resnetap_stem(channels, widths[0], image_size, style)
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlockAP(cin, w, downsample=i > 0, style=style))
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[-1], num_classes)
        if style == "reference":
            idc_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> [B, widths[-1], H', W'] -> global average pool [B, widths[-1]] -> logits
        out = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def _convnet(depth: int) -> Callable[..., nn.Module]:
    def make(num_classes: int, channels: int, image_size: int, style: str) -> nn.Module:
        return ConvNet(depth, num_classes, channels, image_size, style=style)

    return make


def _resnetap10(widths: tuple[int, int, int, int]) -> Callable[..., nn.Module]:
    def make(num_classes: int, channels: int, image_size: int, style: str) -> nn.Module:
        if image_size < 8:
            raise ValueError(f"resnetap-10 needs images of at least 8 px (got {image_size} px): "
                             f"raise eval.image_size")
        return ResNetAP(num_classes, channels, image_size, widths, style)

    return make


def _resnet18(num_classes: int, channels: int, image_size: int, style: str) -> nn.Module:
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes, norm_layer=instance_norm)
    kind = stem_kind(image_size) if style == "reference" else "large"
    if kind == "large":
        if image_size < 64:
            # Stride-2 stem, max-pool and three strided stages leave 1x1 maps below 64 px, where instance
            # norm maps every activation to its bias: the network can still train but barely learns.
            warnings.warn(f"resnet-18 at {image_size} px ends with feature maps of 1x1, where instance norm "
                          f"removes the signal; prefer resnetap-10 or convnet-3 for small images", stacklevel=3)
        if channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:  # IDC's stems for small images: conv 3x3 stride 1, a max-pool only for 65-128 px
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        if kind == "small":
            net.maxpool = nn.Identity()
    return idc_init(net) if style == "reference" else net


NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "convnet-3": _convnet(3),
    "convnet-6": _convnet(6),
    "resnetap-10": _resnetap10((64, 128, 256, 512)),
    "resnetap-10-w32": _resnetap10((32, 64, 128, 256)),
    "resnet-18": _resnet18,
}


def build(name: str, num_classes: int, channels: int, image_size: int, style: str = "reference") -> nn.Module:
    """A freshly initialised network `name` for `num_classes` classes and [channels, image_size^2] inputs."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}: choose one of {', '.join(NETWORKS)}")
    if style not in STYLES:
        raise ValueError(f"style={style!r}: choose 'reference' (IDC's networks) or 'legacy'")
    for label, value in (("num_classes", num_classes), ("channels", channels), ("image_size", image_size)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{label}={value!r} must be a positive integer")
    return NETWORKS[name](num_classes, channels, image_size, style)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
