"""Differentiable Siamese Augmentation (book page Parity): exact transforms, its draws, and eval.augment=dsa."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ddgd.config import config_hash, resolve
from ddgd.protocol import dsa
from ddgd.protocol import evaluate as ev
from ddgd.protocol.data import load_real, real_baseline
from ddgd.protocol.dsa import STRATEGY, cutout, cutout_size, dsa_augment, flip, translate, without


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# x[r, c] = 4 r + c + 1: every pixel nonzero, so the zero padding shows.
GRID = (torch.arange(16.0) + 1).view(1, 1, 4, 4)


def test_flip_mirrors_exactly_the_chosen_images():
    x = torch.arange(12.0).view(2, 1, 2, 3)  # image 0: [[0 1 2] [3 4 5]], image 1: [[6 7 8] [9 10 11]]
    out = flip(x, torch.tensor([True, False]))
    assert out[0, 0].tolist() == [[2, 1, 0], [5, 4, 3]] and torch.equal(out[1], x[1])


def test_translation_pads_with_zeros():
    # out[i, j] = x[i + 1, j - 1]: the first column and the last row have no source pixel
    out = translate(GRID, torch.tensor([1]), torch.tensor([-1]))
    assert out[0, 0].tolist() == [[0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15], [0, 0, 0, 0]]
    assert torch.equal(translate(GRID, torch.tensor([0]), torch.tensor([0])), GRID)


@pytest.mark.parametrize("dy, dx", [(-2, 1), (2, 2), (0, -1), (1, 0)])
def test_translation_is_the_references_pad_and_index(dy, dx):
    # The reference (DC's rand_crop, IDC's crop_fn): pad one zero pixel, read index i + t + 1 clamped to [0, H + 1].
    x = torch.rand(1, 3, 4, 4, generator=gen(1))
    pad = F.pad(x, [1, 1, 1, 1])
    rows = (torch.arange(4) + dy + 1).clamp(0, 5)
    cols = (torch.arange(4) + dx + 1).clamp(0, 5)
    reference = pad[:, :, rows][:, :, :, cols]
    assert torch.equal(translate(x, torch.tensor([dy]), torch.tensor([dx])), reference)


def test_cutout_mask_is_the_hand_computed_hole():
    assert cutout_size(4, 4) == (2, 2) and cutout_size(5, 7) == (3, 4)  # half the side, rounded half up
    ones = torch.ones(2, 1, 4, 4)
    out = cutout(ones, torch.tensor([0, 2]), torch.tensor([3, 2]))
    # image 0: centre (0, 3) -> rows [-1, 1), columns [2, 4), clipped: row 0, columns 2-3
    assert out[0, 0].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    # image 1: centre (2, 2) -> rows 1-2, columns 1-2
    assert out[1, 0].tolist() == [[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]


def test_colour_transforms_follow_their_formulas():
    x = torch.tensor([0.2, 0.4, 0.9]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()  # one colour, every pixel
    assert torch.allclose(dsa.brightness(x, torch.tensor([0.75])), x + 0.25)  # + (u - 0.5)
    grey = dsa.saturation(x, torch.tensor([0.0]))  # factor 2u = 0: every channel becomes the channel mean 0.5
    assert torch.allclose(grey, torch.full_like(x, 0.5))
    assert torch.allclose(dsa.saturation(x, torch.tensor([0.5])), x)  # factor 1
    assert torch.allclose(dsa.contrast(x, torch.tensor([0.5])), x)  # factor u + 0.5 = 1
    # factor 0.5 halves the distance to the image mean (0.5): 0.2 -> 0.35, 0.4 -> 0.45, 0.9 -> 0.7
    assert torch.allclose(dsa.contrast(x, torch.tensor([0.0]))[0, :, 0, 0], torch.tensor([0.35, 0.45, 0.7]))


def test_rotation_and_scale_are_exact_where_they_map_pixels_to_pixels():
    # 90 degrees maps pixel centres onto pixel centres: out[i, j] = x[j, N - 1 - i], torch.rot90's direction
    assert torch.allclose(dsa.rotate(GRID, torch.tensor([math.pi / 2])), torch.rot90(GRID, 1, [2, 3]), atol=1e-4)
    assert torch.allclose(dsa.rotate(GRID, torch.tensor([0.0])), GRID, atol=1e-5)
    assert torch.allclose(dsa.scale(GRID, torch.tensor([1.0]), torch.tensor([1.0])), GRID, atol=1e-5)
    shrunk = dsa.scale(torch.ones(1, 1, 8, 8), torch.tensor([1.2]), torch.tensor([1.2]))
    assert shrunk[0, 0, 0, 0] < 1 and torch.allclose(shrunk[0, 0, 3:5, 3:5], torch.ones(2, 2))  # zero border


def test_same_seed_same_output_other_seed_other_output():
    x = torch.rand(8, 3, 16, 16, generator=gen(1))
    a = dsa_augment(x, gen(5))
    assert torch.equal(a, dsa_augment(x, gen(5)))
    assert not torch.allclose(a, dsa_augment(x, gen(6)))


def test_siamese_shares_one_draw_across_the_batch():
    x = torch.rand(1, 3, 12, 12, generator=gen(2)).expand(16, 3, 12, 12).contiguous()  # 16 copies of one image
    for seed in range(5):
        for mode in ("idc", "single"):
            shared = dsa_augment(x, gen(seed), mode=mode, siamese=True)
            assert torch.equal(shared, shared[:1].expand_as(shared))  # one parameter set: identical outputs
    own = dsa_augment(x, gen(0))  # the evaluation's default: parameters per image (IDC's batch=False)
    assert not torch.equal(own, own[:1].expand_as(own))


def test_shape_and_range():
    for shape in [(4, 3, 16, 16), (3, 1, 9, 12)]:
        x = torch.rand(*shape, generator=gen(3))
        for seed in range(4):
            assert dsa_augment(x, gen(seed)).shape == shape
            # the geometric transforms only move, interpolate and zero pixels: [0, 1] stays in [0, 1]
            for name in ("crop", "cutout", "flip", "scale", "rotate"):
                out = dsa_augment(x, gen(seed), strategy=name)
                assert out.shape == shape and out.min() >= 0 and out.max() <= 1 + 1e-6
    c = torch.full((6, 3, 8, 8), 0.3)  # a grey image: saturation and contrast leave it, brightness shifts it
    out = dsa_augment(c, gen(0), strategy="color")
    shift = out - c
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.5 and shift.flatten(1)[:, 0].unique().numel() == 6  # one shift per image


def test_the_two_compositions():
    assert without(STRATEGY, "cutout") == "color_crop_flip_scale_rotate"
    ones = torch.ones(4, 1, 8, 8)
    holes = [bool((dsa_augment(ones, gen(s), "flip_cutout", mode="idc") == 0).any(dim=(1, 2, 3)).all())
             for s in range(6)]
    assert all(holes)  # IDC applies flip and cutout to every batch
    single = [bool((dsa_augment(ones, gen(s), "flip_cutout", mode="single") == 0).any()) for s in range(12)]
    assert any(single) and not all(single)  # DC, DM, MTT: one of the two per batch
    assert torch.equal(dsa_augment(ones, gen(), "none"), ones)


def test_refuses_what_it_cannot_augment():
    with pytest.raises(ValueError, match=r"x.float\(\) / 255"):
        dsa_augment(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), gen())
    with pytest.raises(ValueError, match="unknown DSA transform.*zoom"):
        dsa_augment(torch.zeros(2, 1, 4, 4), gen(), "color_zoom")
    with pytest.raises(ValueError, match="'idc'.*'single'"):
        dsa_augment(torch.zeros(2, 1, 4, 4), gen(), mode="multiple")


@pytest.fixture(scope="module")
def digits():
    x, y = load_real("digits", "train", resolution=16)
    tx, ty = load_real("digits", "test", resolution=16)
    sx, sy = real_baseline("random", x, y, 2, seed=0)
    return sx, sy, tx[:100], ty[:100]


@pytest.mark.parametrize("augment, mode, strategy", [("dsa", "idc", "color_crop_flip_scale_rotate"),
                                                     ("dsa-single", "single", "color_crop_flip_scale_rotate"),
                                                     ("none", None, None)])
def test_evaluate_with_dsa_on_digits_tiny(digits, monkeypatch, augment, mode, strategy):
    cfg = resolve("digits-tiny", {"eval.augment": augment})
    assert cfg.eval.cutmix_beta > 0 and cfg.eval.protocol == "legacy"  # cutout left out; DSA keeps the size
    calls = []

    def spy(x, generator, strategy, mode):
        calls.append((tuple(x.shape), strategy, mode))
        return dsa_augment(x, generator, strategy, mode)

    monkeypatch.setattr(ev, "dsa_augment", spy)
    monkeypatch.setattr(ev, "augment_batch", lambda *a, **k: pytest.fail("IDC's augmentation ran"))
    r = ev.train_and_test(*digits, "convnet-3", cfg.eval, seed=0, ipc=2, progress=False)
    assert 0 <= r["best"] <= 100 and r["epochs"] == 2 and len(r["history"]) == 2
    if mode is None:
        assert not calls
    else:
        assert calls and {c[1:] for c in calls} == {(strategy, mode)} and calls[0][0] == (16, 1, 16, 16)
    again = ev.train_and_test(*digits, "convnet-3", cfg.eval, seed=0, ipc=2, progress=False)
    assert again["history"] == r["history"]  # a seed fixes the run on a CPU


def test_dsa_without_cutmix_keeps_cutout_and_is_hashed(digits, monkeypatch):
    cfg = resolve("digits-tiny", {"eval.augment": "dsa", "eval.cutmix_beta": 0})
    seen = []
    monkeypatch.setattr(ev, "dsa_augment", lambda x, g, s, m: seen.append(s) or x)
    ev.train_and_test(*digits, "convnet-3", replace(cfg.eval, epochs=1), seed=0, ipc=2, progress=False)
    assert set(seen) == {STRATEGY}
    base = resolve("digits-tiny")
    assert config_hash(resolve("digits-tiny", {"eval.augment": "idc"})) == config_hash(base)
    assert config_hash(resolve("digits-tiny", {"eval.augment": "dsa"})) != config_hash(base)
    with pytest.raises(ValueError, match="eval.augment='dsb'.*dsa"):
        ev.train_and_test(*digits, "convnet-3", replace(cfg.eval, augment="dsb"), seed=0, ipc=2, progress=False)
