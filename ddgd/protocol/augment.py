"""Batched training augmentation of the hard-label protocol (IDC's recipe; book page "Parity").

IDC and Minimax train the evaluation networks with per-image transforms: RandomResizedCrop (scale
0.5-1), RandomHorizontalFlip, IDC's own ColorJitter (brightness, contrast and saturation, each a
blend `img.lerp(target, a)` with a ~ U(-0.4, 0.4), in an order shuffled per image, unclamped), PCA
lighting (0.1, ImageNet eigenvectors, unclamped), and CutMix (beta 1) on every batch. Applied one
image at a time in Python, they cost more than the small ConvNet they feed on a CPU. Here each
transform acts on a whole batch [B, C, H, W] (float in [0, 1]) with per-image random parameters
drawn as tensors:

* crop and flip are one affine map per image, applied by a single `grid_sample` call;
* colour jitter and lighting are per-image factors broadcast over the batch; the jitter's
  per-image order is applied in three rounds, each picking every image's op of that round.

One difference from the reference remains, small and documented: a crop whose sampled aspect ratio
does not fit is clipped to the image instead of being re-drawn up to 10 times. The ``legacy``
style (`style="legacy"`, the committed CPU results) draws one op order per batch and clips every
colour operation to [0, 1].

All randomness comes from the `torch.Generator` passed in (on the CPU, whatever the images'
device), so a seed fixes the augmentation exactly.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ddgd.base.accel import torch_threads

# ImageNet PCA of RGB pixel values (AlexNet; the constants IDC's `Lighting` uses).
IMAGENET_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]])
# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _check(x: torch.Tensor) -> None:
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"augmentation expects a float batch [B, C, H, W] in [0, 1], got {tuple(x.shape)} "
                         f"{x.dtype}: convert uint8 images with x.float() / 255")


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float] = (0.5, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image random resized crop (and horizontal flip), output [B, C, size, size].

    Each image gets a crop of area fraction a ~ U(scale) and aspect ratio r (log-uniform in
    `ratio`), i.e. width sqrt(a r) and height sqrt(a / r) of the image side, clipped to 1, at a
    uniform position inside the image; a flip negates the horizontal axis of the same affine map.
    """
    _check(x)
    b = x.shape[0]
    area = _uniform(b, scale[0], scale[1], generator)  # [B]
    log_r = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), generator)  # [B]
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # crop width / image width, [B]
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    # Crop centre in affine_grid's [-1, 1] coordinates, keeping the crop inside the image.
    cx = (2 * torch.rand(b, generator=generator) - 1) * (1 - w)
    cy = (2 * torch.rand(b, generator=generator) - 1) * (1 - h)
    sign = torch.ones(b)
    if flip:
        sign = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    # The affine map has no rotation or shear, so its sampling grid is an outer sum of two axes
    # (the same grid as F.affine_grid with align_corners=False, which is much slower on a CPU).
    base = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1  # pixel centres in [-1, 1], [S]
    gx = (w * sign)[:, None] * base[None, :] + cx[:, None]  # [B, S] input x of each output column
    gy = h[:, None] * base[None, :] + cy[:, None]  # [B, S] input y of each output row
    grid = torch.stack([gx[:, None, :].expand(b, size, size), gy[:, :, None].expand(b, size, size)], dim=-1)
    grid = grid.to(device=x.device, dtype=x.dtype)  # [B, S, S, 2]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luma [B, 1, H, W] of RGB images (the image itself for one channel)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _jitter_op(x: torch.Tensor, op: int, f: torch.Tensor) -> torch.Tensor:
    """One blend f * x + (1 - f) * target: 0 brightness (black), 1 contrast (mean grey), 2 saturation (grey)."""
    if op == 0:
        return x * f
    if op == 1:
        return f * x + (1 - f) * _grey(x).mean(dim=(1, 2, 3), keepdim=True)
    return f * x + (1 - f) * _grey(x) if x.shape[1] == 3 else x  # no saturation for one channel


def colour_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None,
                  style: str = "reference") -> torch.Tensor:
    """Brightness, contrast and saturation jitter with factors ~ U(1 - s, 1 + s) per image.

    The blends of IDC's `ColorJitter` (torchvision's `adjust_*` formulas); saturation is skipped
    for one-channel images. Reference style: the three operations run in an order drawn per image,
    unclamped; legacy style: one order per batch, each operation clipped to [0, 1].
    """
    _check(x)
    if strength <= 0:
        return x
    b = x.shape[0]
    lo, hi = max(0.0, 1 - strength), 1 + strength
    factors = _uniform(3 * b, lo, hi, generator).view(3, b, 1, 1, 1).to(device=x.device, dtype=x.dtype)
    if style == "legacy":
        for op in torch.randperm(3, generator=generator).tolist():
            x = _jitter_op(x, op, factors[op]).clamp(0, 1)
        return x
    order = torch.argsort(torch.rand(b, 3, generator=generator), dim=1).to(x.device)  # [B, 3] a permutation per image
    for r in range(3):  # round r: every image applies its r-th operation
        x = torch.stack([_jitter_op(x, op, factors[op]) for op in range(3)])[order[:, r], torch.arange(b)]
    return x


def lighting(x: torch.Tensor, strength: float, generator: torch.Generator | None = None,
             style: str = "reference") -> torch.Tensor:
    """AlexNet's PCA lighting noise: add eigvec @ (alpha * eigval), alpha ~ N(0, strength^2), per image.

    Only defined for RGB images: one-channel images are returned unchanged. Unclamped as in IDC's
    `Lighting`; the legacy style clips to [0, 1].
    """
    _check(x)
    if strength <= 0 or x.shape[1] != 3:
        return x
    alpha = torch.randn(x.shape[0], 3, generator=generator) * strength  # [B, 3]
    shift = (alpha * IMAGENET_EIGVAL) @ IMAGENET_EIGVEC.T  # [B, 3]: rgb_i = sum_j V_ij alpha_j l_j
    shift = shift.to(device=x.device, dtype=x.dtype).view(-1, 3, 1, 1)
    return (x + shift).clamp(0, 1) if style == "legacy" else x + shift


def cutmix(x: torch.Tensor, y: torch.Tensor, beta: float, generator: torch.Generator | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al., ICCV 2019) as IDC applies it: one box and one permutation per batch.

    lam ~ Beta(beta, beta); a box of side sqrt(1 - lam) times the image side, centred uniformly
    and clipped to the image, is pasted from a permuted batch. Returns (mixed images, labels_a,
    labels_b, lam) with lam recomputed as the kept area fraction, so the loss is
    lam * CE(out, labels_a) + (1 - lam) * CE(out, labels_b).
    """
    _check(x)
    if beta <= 0:
        raise ValueError(f"cutmix needs beta > 0 (got {beta}); set eval.cutmix_beta=0 to train without CutMix")
    b, _, hgt, wid = x.shape
    # torch has no seeded Beta sampler: draw lam from a NumPy generator seeded by the torch one.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(beta, beta))
    perm = torch.randperm(b, generator=generator)
    cut = math.sqrt(1.0 - lam)
    cw, ch = int(wid * cut), int(hgt * cut)
    cx = int(torch.randint(0, wid, (1,), generator=generator))
    cy = int(torch.randint(0, hgt, (1,), generator=generator))
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, wid)
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, hgt)
    mixed = x.clone()
    perm_d = perm.to(x.device)
    mixed[:, :, y1:y2, x1:x2] = x[perm_d, :, y1:y2, x1:x2]
    lam = 1.0 - (x2 - x1) * (y2 - y1) / (wid * hgt)
    return mixed, y, y[perm_d], lam


def single_thread(device: torch.device):
    """Run small CPU tensor ops on one thread, restoring the thread count afterwards.

    A batch of small images is too little work to share: on a busy machine a two-thread
    grid_sample waits for the second thread and took 16 ms where one thread takes 0.2 ms.
    """
    return torch_threads(1 if device.type == "cpu" else None)


def augment_batch(x: torch.Tensor, image_size: int, crop_scale: float = 0.5, jitter: float = 0.4,
                  light: float = 0.1, generator: torch.Generator | None = None,
                  style: str = "reference") -> torch.Tensor:
    """IDC's training transform on a whole batch: crop + flip, colour jitter, lighting. [B, C, s, s]."""
    with single_thread(x.device):
        x = random_resized_crop(x, image_size, scale=(crop_scale, 1.0), generator=generator)
        x = colour_jitter(x, jitter, generator, style)
        return lighting(x, light, generator, style)
