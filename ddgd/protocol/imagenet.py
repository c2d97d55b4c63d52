"""The ImageNet subsets: their classes, their files on disk, and the transforms of the paper's protocol.

The local label 0..9 of a class is its position in `SUBSETS` (book page: The method); the label
DiT is conditioned on is the ImageNet-1k index of its wnid, i.e. its position in the canonical
sorted list of the 1000 wnids shipped with the package (`imagenet_wnids.txt`). The released code
lists the train folder instead, which gives wrong indices when the folder holds only the subset's
classes; here only the subset's folders are ever listed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

SUBSETS: dict[str, list[str]] = {
    "imagewoof": ["n02096294", "n02093754", "n02111889", "n02088364", "n02086240",
                  "n02089973", "n02087394", "n02115641", "n02099601", "n02105641"],
    "imagenette": ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
                   "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"],
    # the first ten classes of IDC's ImageNet-100 list
    "imageidc": ["n02869837", "n01749939", "n02488291", "n02107142", "n13037406",
                 "n02091831", "n04517823", "n04589890", "n03062245", "n01773797"],
}
WNID_FILE = Path(__file__).with_name("imagenet_wnids.txt")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


class DataError(ValueError):
    """Missing or malformed data; the message names the problem and the fix."""


# ----------------------------------------------------------------------------- class labels
def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k wnids, sorted; position = the class index DiT is conditioned on."""
    wnids = WNID_FILE.read_text().split()
    if len(wnids) != 1000:
        raise DataError(f"{WNID_FILE} holds {len(wnids)} wnids instead of 1000: reinstall the package")
    return wnids


def imagenet_index(wnid: str) -> int:
    """ImageNet-1k class index of `wnid` (n01440764 -> 0)."""
    wnids = imagenet_wnids()
    try:
        return wnids.index(wnid)
    except ValueError:
        raise DataError(f"{wnid!r} is not one of the 1000 ImageNet-1k wnids (e.g. 'n01440764')") from None


def _split_dir(split: str) -> str:
    if split not in ("train", "val", "test"):
        raise DataError(f"unknown split {split!r}: choose 'train' or 'val'")
    return "val" if split == "test" else split  # the ImageNet validation images are the test set


def check_imagenet_root(root, dataset: str, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Fail before any work starts unless `root` holds every wnid folder of the subset per split."""
    if dataset not in SUBSETS:
        raise DataError(f"{dataset!r} is not an ImageNet subset: choose one of {', '.join(SUBSETS)}")
    need = ("the root must hold ImageNet-1k (ILSVRC2012) as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG; "
            f"the {dataset} folders suffice; val/ must be sorted into wnid folders (e.g. with the usual "
            "valprep.sh script)")
    if root is None:
        raise DataError(f"no ImageNet root given (pass --root DIR or -o data.root=DIR): {need}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"ImageNet root {root} does not exist: {need}")
    problems = []
    for split in splits:
        folder = root / _split_dir(split)
        if not folder.is_dir():
            problems.append(f"{folder} is missing")
            continue
        missing = [w for w in SUBSETS[dataset] if not (folder / w).is_dir()]
        if missing:
            problems.append(f"{folder} lacks {len(missing)} of the {dataset} wnid folders: {', '.join(missing)}")
    if problems:
        raise DataError(f"incomplete ImageNet root {root}: {'; '.join(problems)}. {need}")
    return root


class ImageNetSubset(Dataset):
    """The files of one subset and split, labelled by the local class 0..9 (book page: The method).

    Only the subset's wnid folders are listed, in `SUBSETS` order, so other folders may be present
    or absent. Items are (transform(PIL RGB image), local label); `targets` holds all labels.
    `per_class` keeps the first N files of each class in sorted order (Minimax's --finetune-ipc).
    """

    def __init__(self, root, dataset: str, split: str, transform=None, per_class: int | None = None):
        root = check_imagenet_root(root, dataset, (split,))
        folder = root / _split_dir(split)
        self.samples: list[tuple[Path, int]] = []
        for label, wnid in enumerate(SUBSETS[dataset]):
            files = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"{folder / wnid} holds no images (.JPEG/.jpg/.png): copy the class's images there")
            self.samples += [(p, label) for p in files[:per_class]]  # the first N in file order (Minimax)
        self.targets = [label for _, label in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        with Image.open(path) as img:
            img = img.convert("RGB")  # a few ImageNet JPEGs are greyscale or CMYK
        return (self.transform(img) if self.transform else img), label


def adm_center_crop(pil_image: Image.Image, size: int) -> Image.Image:
    """ADM's centre crop (used by DiT): halve with BOX while possible, BICUBIC to min side `size`, crop."""
    while min(*pil_image.size) >= 2 * size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return Image.fromarray(arr[top:top + size, left:left + size])


class ADMCrop:
    """`adm_center_crop` as a picklable transform (DataLoader workers)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        return adm_center_crop(img, self.size)


def diffusion_transform(size: int, flip: bool = True) -> transforms.Compose:
    """Real image -> float [C, size, size] in [-1, 1]: ADM crop, random flip (book page: The method).

    `flip=False` for the latent cache, which encodes both flip views itself.
    """
    steps = [ADMCrop(size)] + ([transforms.RandomHorizontalFlip()] if flip else [])
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])


def eval_transform(size: int, resize: int | None = None) -> transforms.Compose:
    """Test image -> uint8 [C, size, size]: resize the shorter side to `resize` (default `size`), centre crop.

    IDC's and Minimax's test transform is Resize(224) -> CenterCrop(224) (their `data.py`);
    `resize=256` gives the common 256 -> 224 variant (`eval.test_resize`). Divide by 255 for [0, 1].
    """
    return transforms.Compose([transforms.Resize(max(size, resize or size)), transforms.CenterCrop(size),
                               transforms.PILToTensor()])


def legacy_test_resize(size: int) -> int:
    """The shorter side this package's 0.1 protocol resized test images to (256 for 224)."""
    return max(size, size // 7 * 8)
