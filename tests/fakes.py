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
