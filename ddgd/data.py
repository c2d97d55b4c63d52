"""Real data: the ImageNet subsets, Fashion-MNIST, sklearn's digits, and the real-image baselines.

ImageNet subsets (SPEC section 4): the local label 0..9 of a class is its position in `SUBSETS`;
the label DiT is conditioned on is the ImageNet-1k index of its wnid, i.e. its position in the
canonical sorted list of the 1000 wnids shipped with the package (`imagenet_wnids.txt`). The
released code lists the train folder instead, which gives wrong indices when the folder holds only
the subset's classes; here only the subset's folders are ever listed.

Fashion-MNIST is read from its four idx files (Debian's `dataset-fashion-mnist` package or
torchvision's download); sklearn's 8x8 digits serve the seconds-long tests. All in-memory images are
uint8 tensors [N, C, H, W] with int64 labels [N].
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATASETS = (*SUBSETS, "fashion-mnist", "digits")

WNID_FILE = Path(__file__).with_name("imagenet_wnids.txt")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # where `apt-get install dataset-fashion-mnist` puts it
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
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


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def class_indices(dataset: str) -> list[int]:
    """Label the diffusion model is conditioned on, per local class 0..9."""
    _check_dataset(dataset)
    if dataset in SUBSETS:
        wnids = imagenet_wnids()
        return [wnids.index(w) for w in SUBSETS[dataset]]
    return list(range(10))  # our own small models are trained on the local labels


def class_names(dataset: str) -> list[str]:
    """Class names per local label: wnids for ImageNet subsets."""
    _check_dataset(dataset)
    if dataset in SUBSETS:
        return list(SUBSETS[dataset])
    return list(FASHION_NAMES) if dataset == "fashion-mnist" else [str(d) for d in range(10)]


# ----------------------------------------------------------------------------- ImageNet subsets
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
        raise DataError(f"no ImageNet root given (data.root / --imagenet-root): {need}")
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
    """The files of one subset and split, labelled by the local class 0..9 (SPEC section 4).

    Only the subset's wnid folders are listed, in `SUBSETS` order, so other folders may be present
    or absent. Items are (transform(PIL RGB image), local label); `targets` holds all labels.
    """

    def __init__(self, root, dataset: str, split: str, transform=None):
        root = check_imagenet_root(root, dataset, (split,))
        folder = root / _split_dir(split)
        self.samples: list[tuple[Path, int]] = []
        for label, wnid in enumerate(SUBSETS[dataset]):
            files = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"{folder / wnid} holds no images (.JPEG/.jpg/.png): copy the class's images there")
            self.samples += [(p, label) for p in files]
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
    """Real image -> float [C, size, size] in [-1, 1]: ADM crop, random flip (SPEC section 1).

    `flip=False` for the latent cache, which encodes both flip views itself.
    """
    steps = [ADMCrop(size)] + ([transforms.RandomHorizontalFlip()] if flip else [])
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])


def eval_transform(size: int) -> transforms.Compose:
    """Test image -> uint8 [C, size, size]: resize the short side to size // 7 * 8, centre crop.

    The test transform of IDC and Minimax (256 -> 224 at paper scale); divide by 255 for [0, 1].
    """
    return transforms.Compose([transforms.Resize(max(size, size // 7 * 8)), transforms.CenterCrop(size),
                               transforms.PILToTensor()])


# ----------------------------------------------------------------------------- Fashion-MNIST
def fashion_cache() -> Path:
    """torchvision's download folder: $DDGD_DATA/fashion-mnist, else ~/.cache/ddgd/fashion-mnist."""
    base = os.environ.get("DDGD_DATA")
    return (Path(base) if base else Path.home() / ".cache" / "ddgd").expanduser() / "fashion-mnist"


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _find_fashion(places: list[Path], split: str) -> tuple[Path, Path] | None:
    """(images file, labels file) of the first place holding both, or None."""
    for place in places:
        images_file, labels_file = (_idx_file(place, stem) for stem in FASHION_FILES[split])
        if images_file and labels_file:
            return images_file, labels_file
    return None


def read_idx(path) -> np.ndarray:
    """An idx file (gzip or plain) as a uint8 array, after checking its magic number and size."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # truncated or not gzip at all
        raise DataError(f"{path} is corrupt ({err}): delete it and install or download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{path} is not an idx file of unsigned bytes (bad magic number {raw[:4].hex()}): "
                        "delete it and install or download it again")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    header = 4 + 4 * ndim
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path} holds {len(raw) - header} bytes of data, its header promises {int(np.prod(shape))} "
                        f"(shape {shape}): the file is truncated; delete it and install or download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(split: str = "train", root=None, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images uint8 [N, 1, 28, 28] and labels int64 [N] (60000 train, 10000 test).

    Looks in `root` if given, else in Debian's package folder, else in torchvision's download
    folder (`fashion_cache()`); `download=True` fetches into that folder (or `root`).
    """
    split = "test" if split == "val" else split
    if split not in FASHION_FILES:
        raise DataError(f"unknown Fashion-MNIST split {split!r}: choose 'train' or 'test'")
    home = Path(root).expanduser() if root is not None else fashion_cache()
    places = [home] if root is not None else [DEBIAN_FASHION_MNIST, home]
    places.append(home / "FashionMNIST" / "raw")  # torchvision's own layout below its root
    found = _find_fashion(places, split)
    if found is None and download:
        from torchvision.datasets import FashionMNIST  # only when downloading

        FashionMNIST(root=str(home), train=split == "train", download=True)
        found = _find_fashion(places, split)
    if found is None:
        raise DataError(
            f"Fashion-MNIST {split} files ({', '.join(s + '.gz' for s in FASHION_FILES[split])}) not found in "
            f"{', '.join(str(p) for p in places)}. Fix: install Debian's package (`apt-get install "
            "dataset-fashion-mnist`), or pass download=True (`data.download=true`) to fetch them through "
            "torchvision.datasets.FashionMNIST, or point data.root at a folder holding the four idx files.")
    images_file, labels_file = found
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_file} and {labels_file} do not match (images {images.shape}, labels "
                        f"{labels.shape}; expected [N, 28, 28] and [N]): replace them with the original files")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_file} holds label {labels.max()}: Fashion-MNIST labels are 0..9")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


# ----------------------------------------------------------------------------- sklearn digits
def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, C, h, w] -> uint8 [N, C, size, size] by bilinear interpolation."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def load_digits_images(split: str = "train", size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits as uint8 [N, 1, size, size]; every 5th image is the test set (360 images)."""
    from sklearn.datasets import load_digits  # bundled with sklearn: no download

    split = "test" if split == "val" else split
    if split not in ("train", "test"):
        raise DataError(f"unknown digits split {split!r}: choose 'train' or 'test'")
    digits = load_digits()
    x = torch.from_numpy(digits.images).float().mul(255.0 / 16.0).round().to(torch.uint8).unsqueeze(1)  # [1797, 1, 8, 8]
    y = torch.from_numpy(digits.target.astype(np.int64))
    test = torch.arange(len(y)) % 5 == 0
    keep = test if split == "test" else ~test
    return _resize(x[keep], size), y[keep]


# ----------------------------------------------------------------------------- in-memory sets
def load_real(dataset: str, split: str, root=None, resolution: int | None = None,
              download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Real images uint8 [N, C, H, W] and labels int64 [N] of any dataset, held in memory.

    Fashion-MNIST is zero-padded from 28 to 32 px at resolution 32 (the diffusion presets); ImageNet
    subsets go through `eval_transform(resolution)` (default 224), fine for the 500 test images.
    """
    _check_dataset(dataset)
    if dataset == "digits":
        return load_digits_images(split, resolution or 16)
    if dataset == "fashion-mnist":
        x, y = load_fashion_mnist(split, root, download)
        if resolution == 32:
            x = F.pad(x, (2, 2, 2, 2))  # [N, 1, 32, 32], black border like the background
        elif resolution not in (None, 28):
            x = _resize(x, resolution)
        return x, y
    data = ImageNetSubset(root, dataset, split, transform=eval_transform(resolution or 224))
    images = [data[i][0] for i in range(len(data))]
    return torch.stack(images), torch.tensor(data.targets, dtype=torch.int64)


def real_baseline(kind: str, images: torch.Tensor, labels: torch.Tensor, ipc: int,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `random` (ipc real images per class, seeded, class-major) or `full` real-image baseline."""
    if kind == "full":
        return images, labels
    if kind != "random":
        raise ValueError(f"unknown real baseline {kind!r}: choose 'random' or 'full'")
    if ipc <= 0:
        raise ValueError(f"IPC {ipc} must be a positive integer")
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in labels.unique(sorted=True).tolist():
        idx = torch.nonzero(labels == c).squeeze(1)
        if len(idx) < ipc:
            raise ValueError(f"class {c} has {len(idx)} real images, fewer than IPC {ipc}: lower the IPC")
        keep.append(idx[torch.randperm(len(idx), generator=g)[:ipc]])
    keep = torch.cat(keep)
    return images[keep], labels[keep]


def folder_name(class_name: str) -> str:
    """The folder of a class in an exported ImageFolder ("T-shirt/top" -> "T-shirt-top": no nesting)."""
    return class_name.replace("/", "-")


def load_image_folder(path, classes: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """An ImageFolder tree of PNGs -> uint8 [N, C, H, W] and labels (class folder position), files sorted.

    `classes` fixes the folder order (e.g. `class_names(dataset)`); by default the sorted subfolders.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist: pass the folder holding one subfolder per class")
    if classes is None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = [folder_name(c) for c in classes]
    missing = [c for c in classes if not (root / c).is_dir()]
    if not classes or missing:
        raise DataError(f"{root} lacks class folders {', '.join(missing) or '(none found)'}: "
                        "expected one subfolder of PNGs per class")
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted((root / name).glob("*.png"))
        if not files:
            raise DataError(f"{root / name} holds no PNG images")
        for f in files:
            with Image.open(f) as img:
                img = img if img.mode in ("L", "RGB") else img.convert("RGB")
                images.append(torch.from_numpy(np.array(img)))
            labels.append(label)
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root} mixes image shapes {sorted(shapes)}: all images must share size and mode")
    x = torch.stack(images)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # [N, C, H, W]
    return x.contiguous(), torch.tensor(labels, dtype=torch.int64)
