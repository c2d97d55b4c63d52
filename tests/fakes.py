"""Small stand-ins for real datasets, written by the tests themselves (nothing downloads)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_fake_imagenet(root, wnids: list[str], n_train: int = 3, n_val: int = 2, size: int = 40) -> Path:
    """A fake ImageNet tree: root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG of random images.

    Images are `size` pixels high and a quarter wider (the ADM crop then has work to do); file names
    follow ImageNet's (``<wnid>_<k>.JPEG`` in train, ``ILSVRC2012_val_<k>.JPEG`` in val).
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    k_val = 0
    for wnid in wnids:
        for split, count in (("train", n_train), ("val", n_val)):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                pixels = rng.integers(0, 256, size=(size, size + size // 4, 3), dtype=np.uint8)
                if split == "train":
                    name = f"{wnid}_{k}.JPEG"
                else:
                    k_val += 1
                    name = f"ILSVRC2012_val_{k_val:08d}.JPEG"
                Image.fromarray(pixels).save(folder / name, format="JPEG")
    return root


def write_idx(path, array: np.ndarray, magic: int | None = None) -> None:
    """One gzipped idx file (the MNIST format): magic 0x0800 | ndim, big-endian sizes, uint8 data."""
    import gzip
    import struct

    magic = (0x08 << 8 | array.ndim) if magic is None else magic
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_fake_fashion_mnist(folder, n: int = 5, seed: int = 1, all_classes: bool = False) -> dict:
    """The four Fashion-MNIST idx files of random 28 px images (labels random, or cycling 0..9)."""
    from ddgd.protocol.data import FASHION_FILES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, (img_stem, lab_stem) in FASHION_FILES.items():
        x = rng.integers(0, 256, (n, 28, 28))
        y = np.arange(n) % 10 if all_classes else rng.integers(0, 10, n)
        write_idx(folder / f"{img_stem}.gz", x)
        write_idx(folder / f"{lab_stem}.gz", y)
        out[split] = (x, y)
    return out


def make_varied_imagenet(root, wnids: list[str], n_train: int = 2, n_val: int = 1, seed: int = 0) -> Path:
    """A fake ImageNet tree as ImageNet really is: JPEGs of varied sizes and aspect ratios, some
    greyscale (mode L) and some CMYK, all under real wnid folders (train/<wnid>/, val/<wnid>/)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    k_val = 0
    for i, wnid in enumerate(wnids):
        for split, count in (("train", n_train), ("val", n_val)):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                h = int(rng.integers(48, 200))
                w = int(h * rng.choice([0.5, 0.75, 1.0, 4 / 3, 2.0]))
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                img = Image.fromarray(pixels)
                mode = ("RGB", "L", "CMYK")[(i + k) % 3]
                img = img.convert(mode)
                if split == "train":
                    name = f"{wnid}_{k}.JPEG"
                else:
                    k_val += 1
                    name = f"ILSVRC2012_val_{k_val:08d}.JPEG"
                img.save(folder / name, format="JPEG")
    return root


# DiT-XL/2's width, heads, patch size and label count (1000 classes + the null class), on 4x32x32
# latents; the depth is cut (28 in the real model) to keep CPU tests short.
PAPER_DIT = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=2,
                 sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
# The config of stabilityai/sd-vae-ft-ema and sd-vae-ft-mse (random weights here).
SD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
              layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=256, scaling_factor=0.18215)
# A tiny RGB pair for seconds-long runs of the ImageNet path (16 px images, 4x4 latents).
TINY_RGB_DIT = dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
                    sample_size=4, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
TINY_RGB_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                    up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16), layers_per_block=1,
                    latent_channels=4, norm_num_groups=4, sample_size=16)


def make_standins(root, dit: dict, vae: dict, seed: int = 0) -> dict[str, str]:
    """A DiT in the hub's layout (<root>/dit/transformer/) and a VAE (<root>/vae/), random weights,
    written with save_pretrained; returns the config overrides that point a preset at them."""
    import torch
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    root = Path(root)
    torch.manual_seed(seed)
    DiTTransformer2DModel(**dit).save_pretrained(root / "dit" / "transformer")
    AutoencoderKL(**vae).save_pretrained(root / "vae")
    return {"model.dit": str(root / "dit"), "model.vae_encode": str(root / "vae"), "model.vae_decode": str(root / "vae")}
