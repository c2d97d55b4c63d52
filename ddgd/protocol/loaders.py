"""Datasets read from disk at GPU speed: DataLoaders for the latent cache, the test set and the real baselines.

Decoding and cropping ImageNet JPEGs costs more than a GPU step needs, so every read of an
ImageNet subset goes through a `torch.utils.data.DataLoader` with `workers` processes (the
config's `data.workers`) and pinned memory when a GPU is there:

* `read_images` loads a whole split (or chosen files) into one uint8 tensor: the 500 test images,
  and the `random` baseline's IPC images per class;
* `StreamedSet` is the `full` baseline: the ~13,000 training images of a subset are never held in
  memory at once; each epoch streams its shuffled batches from disk.

Real training images are prepared as the generator's images are: the ADM centre crop at the
diffusion resolution (256 px at paper scale), so that `random` and `full` meet the evaluation's
resizing and augmentation exactly as distilled images do. A dataset (`dataset`) is named as
`folders.class_files` takes it: a fixed subset's name, its wnids (`imagenet.subset_classes`), or an
image folder's classes (`folders.FolderClasses`); the same holds for image folders of one's own.
`TensorImages` brings images held in memory at another size (CIFAR's 32 px) to the diffusion
resolution through the same ADM crop, image by image, for the latent cache.
"""
from __future__ import annotations

import torch
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, Dataset
from torchvision import transforms

from ddgd.protocol.data import real_baseline
from ddgd.protocol.folders import FolderClasses, class_files
from ddgd.protocol.imagenet import ADMCrop, Classes, ClassFolders, diffusion_transform, eval_transform


def loader(dataset: Dataset, batch_size: int, workers: int, batch_sampler=None) -> DataLoader:
    """A DataLoader over `dataset` with `workers` processes; pinned memory when a GPU will take the batches."""
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers,
                          pin_memory=torch.cuda.is_available())
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.cuda.is_available())


class _Files(Dataset):
    """The items `indices` of a dataset on disk (all of them when None)."""

    def __init__(self, subset: ClassFolders, indices: list[int] | None = None):
        self.subset = subset
        self.indices = list(range(len(subset))) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.subset[self.indices[i]]


def uint8_transform(size: int) -> transforms.Compose:
    """A real training image as the generator's images are: ADM centre crop to `size`, uint8 [3, size, size]."""
    return transforms.Compose([ADMCrop(size), transforms.PILToTensor()])


def read_images(subset: ClassFolders, workers: int, indices: list[int] | None = None,
                batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Items of `subset` (uint8 tensors from its transform) stacked: images [N, C, H, W] and labels [N]."""
    xs, ys = [], []
    for x, y in loader(_Files(subset, indices), batch_size, workers):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError("no images to read")
    return torch.cat(xs), torch.cat(ys).long()


def test_images(root, dataset: Classes | FolderClasses, image_size: int, resize: int,
                workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation images through the test transform (shorter side to `resize`, centre crop)."""
    return read_images(class_files(root, dataset, "val", transform=eval_transform(image_size, resize)), workers)


def random_baseline(root, dataset: Classes | FolderClasses, resolution: int, ipc: int, seed: int, workers: int,
                    per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`random`: the same seeded draw of `ipc` files per class as `data.real_baseline`, read from disk."""
    subset = class_files(root, dataset, "train", transform=uint8_transform(resolution), per_class=per_class)
    targets = torch.tensor(subset.targets)
    index, _ = real_baseline("random", torch.arange(len(targets)), targets, ipc, seed)
    return read_images(subset, workers, index.tolist())


class StreamedSet:
    """A training set read from disk batch by batch (the `full` baseline on an ImageNet subset or image folder).

    `evaluate.train_and_test` accepts it in place of an image tensor: it needs the labels, the
    channel count, and the batches of an epoch in a given order (`batches`).
    """

    def __init__(self, root, dataset: Classes | FolderClasses, resolution: int, workers: int,
                 per_class: int | None = None):
        self.subset = class_files(root, dataset, "train", transform=uint8_transform(resolution), per_class=per_class)
        self.labels = torch.tensor(self.subset.targets, dtype=torch.int64)
        self.workers = workers
        self.channels = 3  # ClassFolders converts every image to RGB

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, order: torch.Tensor, batch_size: int):
        """(uint8 images [B, 3, H, W], labels [B]) in the order given, `batch_size` at a time."""
        sampler = BatchSampler(order.tolist(), batch_size, drop_last=False)
        for x, y in loader(self.subset, batch_size, self.workers, batch_sampler=sampler):
            yield x, y.long()

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """`n` images drawn with a seed (for statistics of the training set), uint8 [n, 3, H, W]."""
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n]
        return read_images(self.subset, self.workers, idx.tolist())[0]



class TensorImages(Dataset):
    """uint8 RGB images [N, 3, h, w] held in memory, as the latent cache reads a dataset from disk: items are
    (float [3, size, size] in [-1, 1], label) after the ADM crop to `size` (`diffusion_transform`, no flip).

    CIFAR's 32 px images reach DiT-XL/2's 256 px this way (the ADM crop's BICUBIC resize), one image
    at a time in the DataLoader's workers, so the upsampled set is never held in memory.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int):
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"TensorImages takes uint8 RGB images [N, 3, H, W], not {images.dtype} "
                             f"{tuple(images.shape)}")
        self.images, self.labels = images, labels
        self.transform = diffusion_transform(size, flip=False)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i].permute(1, 2, 0).numpy())), int(self.labels[i])
