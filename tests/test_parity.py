"""Parity with the reference code (IDC, Minimax, DiT), against references written here from their semantics.

Each reference below is an independent re-statement of what the reference repositories compute
(IDC `models/`, `misc/utils.py`; Minimax `train.py`, `data.py`; DiT `models.py`,
`diffusion/respace.py`), run with our modules' own weights: identical weights must give identical
outputs.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ddgd.protocol.augment import colour_jitter, lighting
from ddgd.protocol.imagenet import eval_transform
from ddgd.method.diffusion import space_timesteps
from ddgd.protocol.schedule import evaluation_epochs
from ddgd.method.models import load_transformer
from ddgd.protocol.networks import build, count_parameters


# ------------------------------------------------------------------------------------ networks
def _gn(x, norm):
    return F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)


def _conv(x, conv):
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)


def ref_convnet(net, x):
    """IDC convnet.py: conv 3x3 (padding 3 on the first layer of one-channel input) -> norm -> ReLU -> pool 2."""
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in net.features if isinstance(m, nn.GroupNorm)]
    channels = x.shape[1]
    for d, (conv, norm) in enumerate(zip(convs, norms)):
        pad = 3 if channels == 1 and d == 0 else 1
        x = F.avg_pool2d(F.relu(_gn(F.conv2d(x, conv.weight, conv.bias, 1, pad), norm)), 2, 2)
    return F.linear(x.flatten(1), net.classifier.weight, net.classifier.bias)


def ref_resnetap(net, x):
    """IDC resnet_ap.py: size-dependent stem; block conv1 -> norm -> ReLU -> pool -> conv2 -> norm (+ shortcut), ReLU."""
    size = x.shape[-1]
    conv, norm = net.stem[0], net.stem[1]
    k = conv.weight.shape[-1]
    assert k == (7 if size > 128 else 3)  # IDC's IntroBlock: 'large' above 128 px, else 3x3
    x = F.relu(_gn(F.conv2d(x, conv.weight, None, 1, k // 2), norm))
    if size > 128:
        x = F.avg_pool2d(x, 4, 4)
    elif size > 64:
        x = F.avg_pool2d(x, 2, 2)
    for i, b in enumerate(net.layers):
        out = F.relu(_gn(F.conv2d(x, b.conv1.weight, None, 1, 1), b.norm1))
        if i > 0:
            out = F.avg_pool2d(out, 2, 2)
        out = _gn(F.conv2d(out, b.conv2.weight, None, 1, 1), b.norm2)
        if isinstance(b.shortcut, nn.Identity):
            short = x
        else:
            sc_conv, sc_norm = b.shortcut[0], b.shortcut[-1]
            short = _gn(F.avg_pool2d(F.conv2d(x, sc_conv.weight), 2, 2), sc_norm)
        x = F.relu(out + short)
    x = F.avg_pool2d(x, x.shape[-1]).flatten(1)
    return F.linear(x, net.fc.weight, net.fc.bias)


def ref_resnet18(net, x):
    """IDC resnet.py: 7x7/2 stem + max-pool above 128 px, 3x3/1 (+ max-pool for 65-128 px) below; basic blocks."""
    size = x.shape[-1]
    if size > 128:
        x = F.max_pool2d(F.relu(_gn(F.conv2d(x, net.conv1.weight, None, 2, 3), net.bn1)), 3, 2, 1)
    else:
        x = F.relu(_gn(F.conv2d(x, net.conv1.weight, None, 1, 1), net.bn1))
        if size > 64:
            x = F.max_pool2d(x, 3, 2, 1)
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for b in layer:
            stride = b.conv1.stride[0]
            out = F.relu(_gn(F.conv2d(x, b.conv1.weight, None, stride, 1), b.bn1))
            out = _gn(F.conv2d(out, b.conv2.weight, None, 1, 1), b.bn2)
            short = x if b.downsample is None else _gn(F.conv2d(x, b.downsample[0].weight, None, stride), b.downsample[1])
            x = F.relu(out + short)
    return F.linear(F.adaptive_avg_pool2d(x, 1).flatten(1), net.fc.weight, net.fc.bias)


REFERENCES = {"convnet-3": ref_convnet, "convnet-6": ref_convnet, "resnetap-10": ref_resnetap,
              "resnet-18": ref_resnet18}


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("size", [32, 96, 224])
@pytest.mark.parametrize("channels", [1, 3])
def test_logits_match_reference(name, size, channels):
    if name == "convnet-6" and size < 64:
        pytest.skip("convnet-6 needs 64 px")
    torch.manual_seed(0)
    net = build(name, 10, channels, size).eval()
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        torch.testing.assert_close(net(x), REFERENCES[name](net, x), rtol=1e-4, atol=1e-5)


def test_the_legacy_resnetap_block_computes_something_else():
    torch.manual_seed(0)
    net = build("resnetap-10", 10, 3, 224, style="legacy").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (net(x) - ref_resnetap(net, x)).abs().max() > 1e-3  # pool before norm: not IDC's block


@pytest.mark.parametrize("name, size, style, expected", [
    ("resnetap-10", 224, "reference", 4_910_922), ("resnetap-10", 32, "reference", 4_903_242),
    ("resnetap-10", 96, "reference", 4_903_242), ("resnetap-10", 32, "legacy", 4_910_922),
    ("resnet-18", 224, "reference", 11_181_642), ("resnet-18", 32, "reference", 11_173_962),
    ("resnet-18", 32, "legacy", 11_181_642),
    ("convnet-6", 224, "reference", 754_570), ("convnet-3", 32, "reference", 320_010),
])
def test_parameter_counts(name, size, style, expected):
    assert count_parameters(build(name, 10, 3, size, style)) == expected


def test_one_channel_convnet():
    # 32 px, padding 3: 32 + 6 - 2 = 36 -> 18 -> (18) 9 -> (9) 4: classifier 128 * 4 * 4 -> 10
    net = build("convnet-3", 10, 1, 32)
    assert net.features[0].padding == (3, 3) and net.classifier.in_features == 128 * 16
    assert build("convnet-3", 10, 1, 32, "legacy").classifier.in_features == 128 * 16  # 32 -> 16 -> 8 -> 4 too
    assert build("convnet-3", 10, 1, 28).classifier.in_features == 128 * 16  # 28 px maps as 32 px (IDC)


def test_idc_initialisation():
    torch.manual_seed(0)
    net = build("resnetap-10", 10, 3, 224)
    w = net.layers[0].conv1.weight  # 64 -> 64, 3x3: std sqrt(2 / (9 * 64)) = 0.0589
    assert abs(float(w.detach().std()) - math.sqrt(2 / (9 * 64))) < 0.002
    legacy = build("resnetap-10", 10, 3, 224, "legacy").layers[0].conv1.weight
    assert float(legacy.std()) < 0.03  # PyTorch's default: about 0.024


# ---------------------------------------------------------------------------------- transforms
def test_test_transform():
    # A 500x375 image with 12-px red bands at the top and bottom: Resize(224) -> CenterCrop(224)
    # keeps the whole height (both bands); the 256 -> 224 variant cuts 16 of 256 px (23 of 375 original
    # pixels) off each end, so neither band survives.
    img = Image.new("RGB", (500, 375), (0, 0, 255))
    for y in list(range(12)) + list(range(363, 375)):
        for x in range(500):
            img.putpixel((x, y), (255, 0, 0))
    minimax = eval_transform(224)(img)
    cropped = eval_transform(224, 256)(img)
    assert minimax.shape == cropped.shape == (3, 224, 224)
    assert minimax[0, 0, 112] > 200 and minimax[0, -1, 112] > 200  # red at the top and the bottom
    assert cropped[0, 0, 112] < 60 and cropped[0, -1, 112] < 60


def test_test_schedule():
    assert evaluation_epochs(2000, 100) == list(range(20, 2001, 20))  # Minimax: epoch % (E // 100) == 0
    assert len(evaluation_epochs(3000, 100)) == len(evaluation_epochs(300, 100)) == 100
    assert evaluation_epochs(150, 100) == list(range(1, 151))  # E // 100 = 1: every epoch
    assert evaluation_epochs(250, 100)[-1] == 250  # the last epoch always counts


# -------------------------------------------------------------------------------- augmentation
def _idc_jitter(img, alphas, order):
    """IDC misc/utils.py ColorJitter on one image: img.lerp(target, alpha) per op, in a shuffled order, unclamped."""
    grey = lambda x: (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]  # noqa: E731
    for op in order:
        target = (torch.zeros_like(img), grey(img).mean().expand_as(img), grey(img).expand_as(img))[op]
        img = img.lerp(target, alphas[op])
    return img


def test_idc_colour_jitter():
    b, s = 16, 0.4
    x = torch.rand(b, 3, 6, 6)
    g = torch.Generator().manual_seed(3)
    out = colour_jitter(x, s, g)
    g = torch.Generator().manual_seed(3)  # the same draws, in the same order: factors, then one order per image
    factors = (1 - s + 2 * s * torch.rand(3 * b, generator=g)).view(3, b)
    orders = torch.argsort(torch.rand(b, 3, generator=g), dim=1)
    for i in range(b):
        ref = _idc_jitter(x[i], [1 - float(f) for f in factors[:, i]], orders[i].tolist())
        torch.testing.assert_close(out[i], ref, rtol=1e-5, atol=1e-6)
    assert len({tuple(o) for o in orders.tolist()}) > 1  # orders really differ between images


def test_no_clamping():
    bright = torch.full((64, 3, 4, 4), 0.95)
    assert colour_jitter(bright, 0.4, torch.Generator().manual_seed(0)).max() > 1.0
    assert colour_jitter(bright, 0.4, torch.Generator().manual_seed(0), style="legacy").max() <= 1.0
    assert lighting(torch.ones(64, 3, 4, 4), 0.1, torch.Generator().manual_seed(0)).max() > 1.0
    assert lighting(torch.ones(64, 3, 4, 4), 0.1, torch.Generator().manual_seed(0), style="legacy").max() <= 1.0


# ---------------------------------------------------------------------------------------- DiT
def dit_timestep_embedding(t, dim=256, max_period=10000):
    """DiT models.py TimestepEmbedder.timestep_embedding: freqs exp(-ln(P) k / half), [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def test_dit_numerics():
    t = torch.tensor([0, 1, 17, 500, 999])
    fixed = load_transformer("tiny", numerics="original")
    plain = load_transformer("tiny")
    emb = lambda m: m.transformer_blocks[0].norm1.emb.time_proj(t)  # noqa: E731
    torch.testing.assert_close(emb(fixed), dit_timestep_embedding(t), rtol=1e-5, atol=1e-5)
    assert (emb(plain) - dit_timestep_embedding(t)).abs().max() > 1e-3  # diffusers' half - 1 spacing
    assert all(b.norm3.eps == 1e-6 for b in fixed.transformer_blocks)  # DiT: LayerNorm(eps=1e-6)
    assert all(b.norm3.eps == 1e-5 for b in plain.transformer_blocks)
    x = torch.randn(3, fixed.inner_dim)
    torch.testing.assert_close(fixed.transformer_blocks[0].norm3(x), F.layer_norm(x, (fixed.inner_dim,), eps=1e-6))


def dit_space_timesteps(num_timesteps, count):
    """DiT diffusion/respace.py space_timesteps(T, [count]): a float stride accumulated, each position rounded."""
    stride = 1 if count <= 1 else (num_timesteps - 1) / (count - 1)
    cur, taken = 0.0, []
    for _ in range(count):
        taken.append(round(cur))
        cur += stride
    return set(taken)


def test_respacing():
    for steps in range(1, 1001):
        assert set(space_timesteps(1000, steps)) == dit_space_timesteps(1000, steps), steps
    # the rule that rounds i * stride instead picks another step at 21 steps:
    assert {round(i * 999 / 20) for i in range(21)} != dit_space_timesteps(1000, 21)
