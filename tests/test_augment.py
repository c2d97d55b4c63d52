"""Batched augmentation (book page Parity): shapes, determinism, value ranges and CutMix's box."""
import pytest
import torch

from ddgd.protocol.augment import augment_batch, colour_jitter, cutmix, lighting, random_resized_crop


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shapes_and_range():
    x = torch.rand(16, 3, 28, 28, generator=gen(1))
    out = augment_batch(x, 32, generator=gen())
    assert out.shape == (16, 3, 32, 32)
    assert out.min() < 0 or out.max() > 1  # IDC's jitter and lighting do not clamp (test_parity.py)
    legacy = augment_batch(x, 32, generator=gen(), style="legacy")
    assert legacy.min() >= 0 and legacy.max() <= 1  # the legacy style clips every colour operation
    assert augment_batch(torch.rand(4, 1, 28, 28), 24, generator=gen()).shape == (4, 1, 24, 24)


def test_same_seed_same_output_other_seed_other_output():
    x = torch.rand(8, 3, 16, 16, generator=gen(1))
    a = augment_batch(x, 16, generator=gen(5))
    assert torch.equal(a, augment_batch(x, 16, generator=gen(5)))
    assert not torch.allclose(a, augment_batch(x, 16, generator=gen(6)))


def test_full_crop_without_flip_is_identity_and_flip_mirrors():
    x = torch.rand(64, 1, 12, 12, generator=gen(2))
    same = random_resized_crop(x, 12, scale=(1, 1), ratio=(1, 1), flip=False, generator=gen())
    assert torch.allclose(same, x, atol=1e-5)
    out = random_resized_crop(x, 12, scale=(1, 1), ratio=(1, 1), flip=True, generator=gen())
    kept = (out - x).flatten(1).abs().amax(1) < 1e-5
    flipped = (out - x.flip(-1)).flatten(1).abs().amax(1) < 1e-5
    assert torch.all(kept ^ flipped)  # every image is either kept or mirrored
    assert kept.any() and flipped.any()


def test_crop_zooms_in():
    # A crop of half the area shows a part of a left-to-right ramp: its range shrinks.
    ramp = torch.linspace(0, 1, 32).expand(4, 1, 32, 32).contiguous()
    out = random_resized_crop(ramp, 32, scale=(0.5, 0.5), ratio=(1, 1), flip=False, generator=gen())
    spread = out[:, 0, 0, :].amax(1) - out[:, 0, 0, :].amin(1)
    assert torch.all(spread < 0.75) and torch.all(spread > 0.6)


def test_colour_jitter_zero_strength_is_identity_and_grey_stays_grey():
    x = torch.rand(8, 3, 8, 8, generator=gen(3))
    assert torch.equal(colour_jitter(x, 0.0, gen()), x)
    grey = torch.rand(8, 1, 8, 8, generator=gen(4)).expand(8, 3, 8, 8)
    out = colour_jitter(grey, 0.4, gen())
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6) and torch.allclose(out[:, 1], out[:, 2], atol=1e-6)
    assert not torch.allclose(out, grey)
    one = colour_jitter(torch.rand(8, 1, 8, 8), 0.4, gen(), style="legacy")  # saturation skipped, no error
    assert one.shape == (8, 1, 8, 8) and one.min() >= 0 and one.max() <= 1


def test_lighting_adds_one_colour_per_image_and_skips_grey():
    x = torch.full((6, 3, 5, 5), 0.5)
    out = lighting(x, 0.1, gen())
    shift = out - x
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift))  # spatially uniform
    assert shift.abs().max() > 0
    grey = torch.rand(6, 1, 5, 5)
    assert torch.equal(lighting(grey, 0.1, gen()), grey)


@pytest.mark.parametrize("seed", range(5))
def test_cutmix_lambda_is_the_kept_area(seed):
    b, s = 16, 20
    y = torch.arange(b)
    x = (y.float() / b).view(b, 1, 1, 1).expand(b, 2, s, s).contiguous()  # image i is constant i / b
    mixed, ya, yb, lam = cutmix(x, y, 1.0, gen(seed))
    assert torch.equal(ya, y) and sorted(yb.tolist()) == y.tolist()
    assert 0 < lam < 1  # these seeds draw a non-empty box
    for i in range(b):
        if yb[i] == ya[i]:
            continue
        pasted = int((mixed[i] == yb[i].float() / b).sum()) / mixed[i].numel()
        assert pasted == pytest.approx(1 - lam, abs=1e-9)
        kept = int((mixed[i] == ya[i].float() / b).sum()) / mixed[i].numel()
        assert kept == pytest.approx(lam, abs=1e-9)


def test_cutmix_is_deterministic_and_checks_beta():
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8)
    a, b = cutmix(x, y, 1.0, gen(3)), cutmix(x, y, 1.0, gen(3))
    assert torch.equal(a[0], b[0]) and a[3] == b[3]
    with pytest.raises(ValueError, match="cutmix_beta=0"):
        cutmix(x, y, 0.0, gen())


def test_uint8_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="255"):
        augment_batch(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), 8, generator=gen())
