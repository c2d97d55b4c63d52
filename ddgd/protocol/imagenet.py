"""The ImageNet subsets: their classes, their files on disk, and the transforms of the paper's protocol.

A subset is one of the fixed lists of `SUBSETS` (the paper's three), or, with
``data.dataset=imagenet``, a list of wnids given in ``data.classes`` or drawn with a seed
(``data.class_draw``, ``data.class_seed``; `draw_classes`). `subset_classes` is the one place that
turns a data config into its list of wnids, and `check_classes` refuses a bad list before any work
(book page: Parity with the reference code).

The local label 0..K-1 of a class is its position in that list (book page: The method); the label
DiT is conditioned on is the ImageNet-1k index of its wnid, i.e. its position in the canonical
sorted list of the 1000 wnids shipped with the package (`imagenet_wnids.txt`). The released code
lists the train folder instead, which gives wrong indices when the folder holds only the subset's
classes; here only the subset's folders are ever listed. `ClassFolders` reads labelled image files of
any folder of class folders: `ImageNetSubset` finds a subset's, `ddgd.protocol.folders` an image folder's.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from ddgd.config import ConfigError, DataConfig, shown_path

SUBSETS: dict[str, list[str]] = {
    "imagewoof": ["n02096294", "n02093754", "n02111889", "n02088364", "n02086240",
                  "n02089973", "n02087394", "n02115641", "n02099601", "n02105641"],
    "imagenette": ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
                   "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"],
    # the first ten classes of IDC's ImageNet-100 list
    "imageidc": ["n02869837", "n01749939", "n02488291", "n02107142", "n13037406",
                 "n02091831", "n04517823", "n04589890", "n03062245", "n01773797"],
}
# `data.dataset` of a subset whose classes are listed (`data.classes`) or drawn (`data.class_draw`).
IMAGENET = "imagenet"
WNID_FILE = Path(__file__).with_name("imagenet_wnids.txt")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# A subset as the functions below take it: the name of a fixed subset, or its wnids in label order.
Classes = str | Sequence[str]


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


def is_imagenet(dataset: str) -> bool:
    """Whether `data.dataset` names an ImageNet subset (a fixed one, or `imagenet` with its own classes)."""
    return dataset == IMAGENET or dataset in SUBSETS


def draw_classes(k: int, seed: int) -> list[str]:
    """`k` ImageNet-1k wnids drawn with `seed`, in the order drawn: IDC's class draw.

    IDC (`data.py`, `ImageFolder.find_subclasses`, with ``--nclass k --dseed seed``) seeds NumPy's
    global generator and keeps the first k of a permutation of the sorted class folders; the same is
    `RandomState(seed).permutation(1000)[:k]` over the sorted wnids. NumPy keeps RandomState's
    stream frozen, so a seed names the same classes on every NumPy version, and the draw of k
    classes is a prefix of the draw of k + 1. (IDC's seed 0 reads its ImageNet-100 list instead,
    whose first ten classes are `SUBSETS["imageidc"]`; here seed 0 is a draw like any other.)
    """
    wnids = imagenet_wnids()
    return [wnids[i] for i in np.random.RandomState(seed).permutation(len(wnids))[:k]]


def _class_fields(data: DataConfig) -> str:
    return f"data.classes={data.classes!r}, data.class_draw={data.class_draw!r}, data.class_seed={data.class_seed!r}"


def check_classes(data: DataConfig) -> None:
    """Refuse, before any work, class fields of `data` that do not name one list of distinct ImageNet classes.

    ``data.dataset=imagenet`` takes exactly one of ``data.classes`` (wnids, in the order of the local
    labels) and ``data.class_draw`` (K classes drawn with ``data.class_seed``); every other dataset,
    the fixed subsets included, takes neither. Raises `ConfigError` naming the field and the fix.
    """
    ds, classes, k, seed = data.dataset, data.classes, data.class_draw, data.class_seed
    if not is_imagenet(ds) or ds in SUBSETS:
        if classes is not None or k is not None:
            kind = "a fixed list of classes (ddgd.protocol.imagenet.SUBSETS)" if ds in SUBSETS else "not ImageNet"
            raise ConfigError(f"data.dataset={ds!r} is {kind}, so it takes no data.classes or data.class_draw "
                              f"({_class_fields(data)}): set -o data.dataset=imagenet to choose the classes, "
                              "or drop data.classes and data.class_draw")
    elif classes is not None and k is not None:
        raise ConfigError(f"data.classes and data.class_draw are both set ({_class_fields(data)}): keep one, "
                          "a list of wnids or a seeded draw of K classes")
    elif classes is None and k is None:
        raise ConfigError("data.dataset=imagenet needs its classes: list their wnids, in label order "
                          "(-o data.classes=n01440764,n02102040,...), or draw K of the 1000 with a seed "
                          "(-o data.class_draw=K -o data.class_seed=S)")
    if k is None and seed != 0:
        raise ConfigError(f"data.class_seed={seed!r} seeds data.class_draw, which is not set: "
                          "set -o data.class_draw=K or drop data.class_seed")
    if classes is not None:
        if isinstance(classes, str) or not all(isinstance(w, str) for w in classes):
            raise ConfigError(f"data.classes={classes!r} must be a tuple of wnid strings: "
                              "write -o data.classes=n01440764,n02102040")
        known = set(imagenet_wnids())
        unknown = [w for w in classes if w not in known]
        if unknown:
            raise ConfigError(f"data.classes holds {', '.join(map(repr, unknown))}, not among the 1000 ImageNet-1k "
                              f"wnids (listed one per line in {shown_path(WNID_FILE)}): correct or drop "
                              f"{'it' if len(unknown) == 1 else 'them'}")
        twice = [w for w, n in Counter(classes).items() if n > 1]
        if twice:
            raise ConfigError(f"data.classes lists {', '.join(twice)} more than once: name each class once")
        if len(classes) < 2:
            raise ConfigError(f"data.classes={classes!r} names {len(classes)} class: a classifier needs two or more")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 1000):
        raise ConfigError(f"data.class_draw={k!r}: draw between 2 and 1000 classes (ImageNet-1k has 1000)")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"data.class_seed={seed!r} must be an integer in [0, 2**32) (NumPy's RandomState seeds)")


def subset_classes(data: DataConfig) -> list[str]:
    """The wnids of the ImageNet subset a data config names, in the order of the local labels 0..K-1.

    The one place that turns ``data.dataset``, ``data.classes``, ``data.class_draw`` and
    ``data.class_seed`` into a class list (checked first by `check_classes`).
    """
    check_classes(data)
    if data.dataset in SUBSETS:
        return list(SUBSETS[data.dataset])
    if data.dataset != IMAGENET:
        raise DataError(f"data.dataset={data.dataset!r} is not an ImageNet subset: it has no wnids")
    return list(data.classes) if data.classes is not None else draw_classes(data.class_draw, data.class_seed)


def subset_name(data: DataConfig) -> str:
    """A file-name-safe name of the subset: the fixed subset's name, else `imagenet<K>-` and a digest of its wnids."""
    wnids = subset_classes(data)
    if data.dataset in SUBSETS:
        return data.dataset
    return f"{IMAGENET}{len(wnids)}-{hashlib.sha256(','.join(wnids).encode()).hexdigest()[:10]}"


def _subset(dataset: Classes) -> tuple[list[str], str]:
    """(wnids, how messages call them) of a fixed subset's name or of a list of wnids."""
    if isinstance(dataset, str):
        if dataset not in SUBSETS:
            raise DataError(f"{dataset!r} is not an ImageNet subset: choose one of {', '.join(SUBSETS)}, or pass "
                            "the wnids of the classes (for data.dataset=imagenet: subset_classes(cfg.data))")
        return list(SUBSETS[dataset]), dataset
    return list(dataset), "chosen"


def split_dir(split: str) -> str:
    """The folder of a split: train/, or val/ for the test set (ImageNet's validation images are its test set)."""
    if split not in ("train", "val", "test"):
        raise DataError(f"unknown split {split!r}: choose 'train' or 'val'")
    return "val" if split == "test" else split


def check_imagenet_root(root, dataset: Classes, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Fail before any work starts unless `root` holds every wnid folder of the subset per split.

    `dataset` is a fixed subset's name or the subset's wnids.
    """
    wnids, label = _subset(dataset)
    need = ("the root must hold ImageNet-1k (ILSVRC2012) as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG; "
            f"the {label} classes' folders suffice; val/ must be sorted into wnid folders (e.g. with the usual "
            "valprep.sh script)")
    if root is None:
        raise DataError(f"no ImageNet root given (pass --root DIR or -o data.root=DIR): {need}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"ImageNet root {root} does not exist: {need}")
    problems = []
    for split in splits:
        folder = root / split_dir(split)
        if not folder.is_dir():
            problems.append(f"{folder} is missing")
            continue
        missing = [w for w in wnids if not (folder / w).is_dir()]
        if missing:
            problems.append(f"{folder} lacks {len(missing)} of the {label} wnid folders: {', '.join(missing)}")
    if problems:
        raise DataError(f"incomplete ImageNet root {root}: {'; '.join(problems)}. {need}")
    return root


class ClassFolders(Dataset):
    """Image files labelled by class: items are (transform(PIL RGB image), label); `targets` holds all labels.

    `samples` lists (path, label) pairs, class by class, files in sorted order; `per_class` keeps the
    first N files of each class (Minimax's --finetune-ipc). ImageNet subsets (`ImageNetSubset`) and
    image folders (`ddgd.protocol.folders`) differ only in how their files are found.
    """

    def __init__(self, samples: list[tuple[Path, int]], transform=None, per_class: int | None = None):
        taken: Counter = Counter()
        self.samples: list[tuple[Path, int]] = []
        for path, label in samples:
            if per_class is None or taken[label] < per_class:  # the first N in file order (Minimax)
                self.samples.append((Path(path), label))
                taken[label] += 1
        self.targets = [label for _, label in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        with Image.open(path) as img:
            img = img.convert("RGB")  # a few ImageNet JPEGs are greyscale or CMYK
        return (self.transform(img) if self.transform else img), label


class ImageNetSubset(ClassFolders):
    """The files of one subset and split, labelled by the local class 0..K-1 (book page: The method).

    `dataset` is a fixed subset's name (`SUBSETS`) or the subset's wnids (`subset_classes`). Only
    the subset's wnid folders are listed, in the subset's order, so other folders may be present
    or absent.
    """

    def __init__(self, root, dataset: Classes, split: str, transform=None, per_class: int | None = None):
        folder = check_imagenet_root(root, dataset, (split,)) / split_dir(split)
        samples = []
        for label, wnid in enumerate(_subset(dataset)[0]):
            files = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"{folder / wnid} holds no images (.JPEG/.jpg/.png): copy the class's images there")
            samples += [(p, label) for p in files]
        super().__init__(samples, transform, per_class)


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
