"""CIFAR-10 and CIFAR-100 through torchvision, held in memory as 32 px RGB (book page: deviations).

`load_cifar` reads torchvision's own files (``cifar-10-batches-py/``, ``cifar-100-python/``) with
`torchvision.datasets.CIFAR10` / `CIFAR100`, which checks their md5 sums; ``data.download=true``
lets torchvision download them on the user's machine. CIFAR-100 is labelled by its 100 fine labels.
The class names are fixed here (they are the files' own `label_names` / `fine_label_names`, which
`load_cifar` checks), so a config names its classes without reading the data.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ddgd.protocol.imagenet import DataError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_NAMES = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle
caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish
forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle
mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine
possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale
willow_tree wolf woman worm""".split()
CIFAR: dict[str, list[str]] = {"cifar10": CIFAR10_NAMES, "cifar100": CIFAR100_NAMES}
CIFAR_SIZE = 32  # every CIFAR image is 32 x 32 RGB


def cifar_cache() -> Path:
    """torchvision's download folder: $DDGD_DATA/cifar, else ~/.cache/ddgd/cifar (both CIFARs side by side)."""
    base = os.environ.get("DDGD_DATA")
    return (Path(base) if base else Path.home() / ".cache" / "ddgd").expanduser() / "cifar"


def _torchvision_class(name: str):
    from torchvision.datasets import CIFAR10, CIFAR100  # torchvision's loader, only when reading

    return {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]


def load_cifar(name: str, split: str = "train", root=None, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR images uint8 [N, 3, 32, 32] and labels int64 [N] (50000 train, 10000 test).

    Read from `root` (the folder that holds ``cifar-10-batches-py/`` or ``cifar-100-python/``), by
    default `cifar_cache()`; `download=True` lets torchvision fetch the archive there first.
    """
    if name not in CIFAR:
        raise DataError(f"unknown CIFAR dataset {name!r}: choose one of {', '.join(CIFAR)}")
    split = "test" if split == "val" else split
    if split not in ("train", "test"):
        raise DataError(f"unknown {name} split {split!r}: choose 'train' or 'test'")
    home = Path(root).expanduser() if root is not None else cifar_cache()
    cls = _torchvision_class(name)
    try:
        data = cls(root=str(home), train=split == "train", download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted" (missing files or wrong md5)
        raise DataError(
            f"{name} not found or corrupt in {home / cls.base_folder} ({err}). Fix: pass -o data.download=true to let "
            f"torchvision.datasets.{cls.__name__} download it there, or point data.root at the folder that holds "
            f"{cls.base_folder}/ (torchvision's download, or the archive {cls.filename} unpacked)") from None
    if list(data.classes) != CIFAR[name]:
        raise DataError(f"{home / cls.base_folder} names its classes {list(data.classes)[:4]}..., not {name}'s "
                        f"{CIFAR[name][:4]}...: replace it with torchvision's download (-o data.download=true)")
    images = torch.from_numpy(np.ascontiguousarray(data.data)).permute(0, 3, 1, 2)  # HWC -> [N, 3, 32, 32]
    return images.contiguous(), torch.as_tensor(data.targets, dtype=torch.int64)
