"""Differentiable Siamese Augmentation (DSA) as an evaluation augmentation (book page "Parity").

DSA is the augmentation of Zhao and Bilen, "Dataset Condensation with Differentiable Siamese
Augmentation" (ICML 2021), with which DC, DSA, DM, MTT and IDC's ``--dsa`` train their evaluation
networks. Its strategy ``color_crop_cutout_flip_scale_rotate`` names six transforms of a float
batch [B, C, H, W], with the ratios of the reference code (DC's `ParamDiffAug`, IDC's `DiffAug`):

* color: brightness x + (u - 0.5), then saturation (x - channel mean) * 2u + channel mean, then
  contrast (x - image mean) * (u + 0.5) + image mean, a fresh u ~ U(0, 1) for each, unclamped;
* crop: translation by an integer t ~ U{-s..s} per axis, s = round(side / 8), zero padding;
* cutout: a hole of half the side (rounded) centred at a uniform position, set to zero;
* flip: horizontal mirror with probability 0.5;
* scale: the sampling grid stretched by s_x, s_y ~ U(1/1.2, 1.2) (zero padding, bilinear);
* rotate: by an angle ~ U(-15, 15) degrees (zero padding, bilinear).

Two compositions are in use. IDC (`DiffAug(strategy, batch=False)`, ``mode="idc"``) applies flip,
color and cutout to every batch and one of the remaining transforms, drawn per batch; DC, DM and
MTT (`DiffAugment` with ``aug_mode='S'``, ``mode="single"``) apply one transform of the six, drawn
per batch. Both draw the parameters per image at evaluation time; ``siamese=True`` shares one draw
across the batch, the "siamese" use of DSA when matching real and synthetic batches. Both apply
DSA to normalised images, so the zero of the padding and the hole is the mean colour.

Each transform is a pure function of its parameters (`translate`, `cutout`, ...); `dsa_augment`
draws them from the `torch.Generator` it is given (on the CPU), so a seed fixes the augmentation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

STRATEGY = "color_crop_cutout_flip_scale_rotate"
# The ratios of the reference code (ParamDiffAug / DiffAug).
PROB_FLIP = 0.5
RATIO_SCALE = 1.2
RATIO_ROTATE = 15.0  # degrees
RATIO_CROP_PAD = 0.125
RATIO_CUTOUT = 0.5
BRIGHTNESS, SATURATION, CONTRAST = 1.0, 2.0, 0.5
MODES = ("idc", "single")


def _per_image(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Parameters [B] as [B, 1, 1, 1] on x's device and dtype."""
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def flip(x: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
    """Mirror the images where `mirror` [B] (bool) is true, along the width."""
    return torch.where(mirror.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)


def brightness(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x + (u - 0.5) * 1.0 per image (u [B] in [0, 1))."""
    return x + (_per_image(u, x) - 0.5) * BRIGHTNESS


def saturation(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Blend with the per-pixel channel mean: (x - mean_c) * 2u + mean_c (one channel: unchanged)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_per_image(u, x) * SATURATION) + mean


def contrast(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean over channels and pixels: (x - mean) * (u + 0.5) + mean."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_image(u, x) + CONTRAST) + mean


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """out[b, :, i, j] = x[b, :, i + dy_b, j + dx_b] where that pixel exists, else 0 (integer shifts [B])."""
    b, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] + dy.to(x.device).long().view(-1, 1)  # [B, H] source rows
    cols = torch.arange(w, device=x.device)[None, :] + dx.to(x.device).long().view(-1, 1)  # [B, W]
    out = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # [B, H, W]
    return torch.where(inside[:, None], out, torch.zeros((), dtype=x.dtype, device=x.device))


def cutout_size(h: int, w: int) -> tuple[int, int]:
    """The hole's height and width: half the image side, rounded half up."""
    return int(h * RATIO_CUTOUT + 0.5), int(w * RATIO_CUTOUT + 0.5)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """Zero rows [cy - sh // 2, cy - sh // 2 + sh) x columns [cx - sw // 2, ...), clipped to the image (centres [B])."""
    _, _, h, w = x.shape
    sh, sw = cutout_size(h, w)
    top = (cy.to(x.device).long() - sh // 2).view(-1, 1)
    left = (cx.to(x.device).long() - sw // 2).view(-1, 1)
    r, c = torch.arange(h, device=x.device)[None, :], torch.arange(w, device=x.device)[None, :]
    hole = ((r >= top) & (r < top + sh))[:, :, None] & ((c >= left) & (c < left + sw))[:, None, :]  # [B, H, W]
    return torch.where(hole[:, None], torch.zeros((), dtype=x.dtype, device=x.device), x)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample x on the grid of the affine maps theta [B, 2, 3] (output -> input, zero padding)."""
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def scale(x: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Sample input x at s_x times the output's x and s_y times its y (s > 1 shrinks the image)."""
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)  # [B, 2, 3]
    return _affine(x, theta)


def rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate by `angle` [B] (radians): the output at (x, y) samples the input at R(angle) (x, y)."""
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine(x, theta)


# ----------------------------------------------------------------------------- the random draws
class _Draw:
    """Parameters of one batch: one per image, or one for the whole batch (siamese), from `generator`."""

    def __init__(self, b: int, generator: torch.Generator | None, siamese: bool):
        self.b, self.g, self.n = b, generator, 1 if siamese else b

    def uniform(self) -> torch.Tensor:
        return torch.rand(self.n, generator=self.g).expand(self.b)

    def integer(self, low: int, high: int) -> torch.Tensor:
        """Uniform integers in [low, high)."""
        return torch.randint(low, high, (self.n,), generator=self.g).expand(self.b)


def _colour(x, d):
    x = brightness(x, d.uniform())
    x = saturation(x, d.uniform())
    return contrast(x, d.uniform())


def _crop(x, d):
    sy, sx = int(x.shape[2] * RATIO_CROP_PAD + 0.5), int(x.shape[3] * RATIO_CROP_PAD + 0.5)
    dy = d.integer(-sy, sy + 1)
    return translate(x, dy, d.integer(-sx, sx + 1))


def _cutout(x, d):
    sh, sw = cutout_size(x.shape[2], x.shape[3])
    # the reference's range: an even hole may be centred one pixel past the last row or column
    cy = d.integer(0, x.shape[2] + (1 - sh % 2))
    return cutout(x, cy, d.integer(0, x.shape[3] + (1 - sw % 2)))


def _flip(x, d):
    return flip(x, d.uniform() < PROB_FLIP)


def _scale(x, d):
    sx = d.uniform() * (RATIO_SCALE - 1 / RATIO_SCALE) + 1 / RATIO_SCALE
    return scale(x, sx, d.uniform() * (RATIO_SCALE - 1 / RATIO_SCALE) + 1 / RATIO_SCALE)


def _rotate(x, d):
    return rotate(x, (d.uniform() - 0.5) * 2 * RATIO_ROTATE / 180 * math.pi)


TRANSFORMS = {"color": _colour, "crop": _crop, "cutout": _cutout, "flip": _flip, "scale": _scale, "rotate": _rotate}
# What IDC applies to every batch (in this order: flip, color, the drawn one, cutout).
_ALWAYS = ("flip", "color", "cutout")


def without(strategy: str, name: str) -> str:
    """`strategy` less one transform (IDC drops cutout when CutMix is on: its argument.py, `remove_aug`)."""
    return "_".join(t for t in strategy.split("_") if t and t != name)


def dsa_augment(x: torch.Tensor, generator: torch.Generator | None = None, strategy: str = STRATEGY,
                mode: str = "idc", siamese: bool = False) -> torch.Tensor:
    """DSA on a float batch [B, C, H, W] (same shape out), every draw from `generator`.

    `mode` "idc": flip, color, one of the other transforms of `strategy` (drawn per batch), cutout;
    "single": one transform of `strategy`, drawn per batch. `siamese` shares every parameter across
    the batch. An empty strategy or "none" returns x.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"DSA expects a float batch [B, C, H, W], got {tuple(x.shape)} {x.dtype}: "
                         "convert uint8 images with x.float() / 255")
    if mode not in MODES:
        raise ValueError(f"unknown DSA mode {mode!r}: choose 'idc' (IDC's DiffAug) or 'single' (DC, DM, MTT)")
    names = [t for t in strategy.lower().split("_") if t and t != "none"]
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown DSA transform(s) {', '.join(unknown)} in {strategy!r}: "
                         f"choose from {', '.join(TRANSFORMS)}, joined by '_'")
    if not names:
        return x
    d = _Draw(x.shape[0], generator, siamese)
    if mode == "single":
        return TRANSFORMS[names[int(torch.randint(len(names), (1,), generator=generator))]](x, d).contiguous()
    for name in ("flip", "color"):
        if name in names:
            x = TRANSFORMS[name](x, d)
    drawn = [t for t in names if t not in _ALWAYS]
    if drawn:
        x = TRANSFORMS[drawn[int(torch.randint(len(drawn), (1,), generator=generator))]](x, d)
    if "cutout" in names:
        x = _cutout(x, d)
    return x.contiguous()
