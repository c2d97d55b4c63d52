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
    from ddgd.data import FASHION_FILES

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
