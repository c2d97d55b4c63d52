"""Any image dataset as a folder of class folders: ``data.dataset=imagefolder`` (book page: deviations).

``data.root`` holds ``train/`` and ``val/`` (the test set), each with one folder per class, as
torchvision's `ImageFolder` reads them: the classes are the sorted folder names (`find_classes`),
the files any image of torchvision's extensions, found below each class folder (`make_dataset`).
The local label 0..K-1 of a class is its position in that order, and the label the DiT is
conditioned on (a fresh class table, `ddgd.method.class_table`). The files go through the same
transforms as an ImageNet subset's (`ddgd.protocol.imagenet.ClassFolders`): the ADM crop at
``data.resolution`` for the latent cache, the test transform at ``eval.image_size``.

`check_image_folder` refuses, before any work, a root that cannot be read this way, naming the
problem and the fix.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from ddgd.config import ConfigError, DataConfig
from ddgd.protocol.imagenet import (Classes, ClassFolders, DataError, ImageNetSubset, is_imagenet, split_dir,
                                    subset_name)

IMAGEFOLDER = "imagefolder"
SPLITS = ("train", "val")
LAYOUT = ("the layout is train/<class>/<images> and val/<class>/<images>, the same class folders in both "
          f"(torchvision's ImageFolder; images: {', '.join(IMG_EXTENSIONS)})")


@dataclass(frozen=True)
class FolderClasses:
    """The classes of an image folder, in label order (its sorted folder names): what `data_classes` returns."""

    names: tuple[str, ...]


def _class_folders(folder: Path) -> list[str]:
    try:
        return find_classes(str(folder))[0]  # torchvision's order: sorted folder names
    except FileNotFoundError:
        return []


def _has_image(folder: Path) -> bool:
    """Whether any file below `folder` has an image extension (make_dataset walks the whole tree)."""
    for _, _, files in os.walk(folder, followlinks=True):
        if any(f.lower().endswith(IMG_EXTENSIONS) for f in files):
            return True
    return False


def check_image_folder(root) -> list[str]:
    """The class names of the image folder at `root`; a `ConfigError` naming the problem and the fix otherwise.

    Refused: no root, a root that is not a folder, a missing train/ or val/, class folders that differ
    between train/ and val/, a class folder without images, fewer than two classes.
    """
    if root is None:
        raise ConfigError(f"data.dataset=imagefolder needs data.root (-o data.root=DIR or --root DIR): {LAYOUT}")
    path = Path(os.path.expanduser(str(root)))  # os.path: an unknown ~user stays as written
    if not path.is_dir():
        raise ConfigError(f"data.root={root!r} is not a folder: point it at the folder that holds train/ and val/; "
                          f"{LAYOUT}")
    missing = [s for s in SPLITS if not (path / s).is_dir()]
    if missing:
        raise ConfigError(f"data.root={root} has no {' and no '.join(s + '/' for s in missing)}: create "
                          f"{'them' if len(missing) > 1 else 'it'}, with one folder of images per class; {LAYOUT}")
    train, val = (_class_folders(path / s) for s in SPLITS)
    if set(train) != set(val):
        only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
        parts = [f"only train/ has {', '.join(only_train)}" if only_train else "",
                 f"only val/ has {', '.join(only_val)}" if only_val else ""]
        raise ConfigError(f"data.root={root}: the class folders of train/ and val/ differ ("
                          f"{'; '.join(p for p in parts if p)}): give both splits the same class folders")
    empty = [f"{s}/{c}" for s in SPLITS for c in train if not _has_image(path / s / c)]
    if empty:
        raise ConfigError(f"data.root={root}: {', '.join(empty)} hold{'s' if len(empty) == 1 else ''} no images "
                          f"({', '.join(IMG_EXTENSIONS)}): add images of the class, or remove the class folder "
                          "from both splits")
    if len(train) < 2:
        raise ConfigError(f"data.root={root} holds {len(train)} class folder{'' if len(train) == 1 else 's'} "
                          f"({', '.join(train) or 'none'}): a classifier needs two or more; {LAYOUT}")
    return train


def check_data_root(data: DataConfig) -> None:
    """`check_image_folder` for ``data.dataset=imagefolder`` with a root (validation of a config).

    A config without a root passes: the command line may still give one (``--root``); reading the
    data (`ddgd.protocol.data.data_classes`) refuses it then. Other datasets pass.
    """
    if data.dataset == IMAGEFOLDER and data.root is not None:
        check_image_folder(data.root)


def folder_split(root, classes: FolderClasses, split: str, transform=None,
                 per_class: int | None = None) -> ClassFolders:
    """The files of one split of an image folder, labelled by the position of their class in `classes`."""
    names = check_image_folder(root)
    if tuple(names) != classes.names:
        raise DataError(f"the class folders of {root} changed since its classes were read ({list(classes.names)} "
                        f"then, {names} now): read the data config again (data_classes)")
    folder = Path(os.path.expanduser(str(root))) / split_dir(split)
    samples = make_dataset(str(folder), {c: i for i, c in enumerate(names)}, IMG_EXTENSIONS)
    return ClassFolders(samples, transform, per_class)  # make_dataset: class by class, files sorted


def class_files(root, dataset: Classes | FolderClasses, split: str, transform=None,
                per_class: int | None = None) -> ClassFolders:
    """The files of a dataset read from disk: an image folder's (`FolderClasses`), else an ImageNet subset's."""
    if isinstance(dataset, FolderClasses):
        return folder_split(root, dataset, split, transform, per_class)
    return ImageNetSubset(root, dataset, split, transform, per_class)


def reads_from_disk(dataset: str) -> bool:
    """Whether `data.dataset` is read from disk file by file (ImageNet subsets, image folders), not held in memory."""
    return dataset == IMAGEFOLDER or is_imagenet(dataset)


def train_set_name(data: DataConfig, files: ClassFolders | None = None) -> str:
    """A file-name-safe name of the training set (the latent cache's): the subset's name, or for an image
    folder `imagefolder<K>-` and a digest of its class names, file names and sizes (two folders never
    share a cache; a copy of one folder elsewhere does). `files`: the folder's training files."""
    if data.dataset != IMAGEFOLDER:
        return subset_name(data) if is_imagenet(data.dataset) else data.dataset
    if files is None:
        raise ValueError("an image folder's training set is named by its files: pass them (folder_split)")
    root = Path(os.path.expanduser(str(data.root))) / "train"
    names = check_image_folder(data.root)
    h = hashlib.sha256("\n".join(names).encode())
    for path, label in files.samples:
        h.update(f"\n{label}:{path.relative_to(root).as_posix()}:{path.stat().st_size}".encode())
    return f"{IMAGEFOLDER}{len(names)}-{h.hexdigest()[:10]}"
