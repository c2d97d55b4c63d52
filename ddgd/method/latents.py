"""VAE latents and the latent cache (book page: The method).

A real image x in [-1, 1] is encoded as z0 = s * E(x), a sample from the VAE's posterior, with s the
VAE's own scaling factor (0.18215 for the SD VAEs). Fine-tuning needs a fresh posterior sample and a
random horizontal flip every time an image is drawn. Running the encoder at every step costs more
than the DiT step itself at 256 px, so `LatentCache` encodes the real set once (posterior mean and
std of both flip views) and each step samples from the cached posterior instead: the same
distribution of z0, without the encoder.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base.files import shared_dir


def scaling_factor(vae: AutoencoderKL) -> float:
    return float(vae.config.scaling_factor)


@torch.no_grad()
def encode_posterior(vae: AutoencoderKL, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of E(x) for images x in [-1, 1] [B, C, H, W] -> two [B, c, h, w] tensors (unscaled)."""
    dist = vae.encode(x).latent_dist
    return dist.mean, dist.std


def encode(vae: AutoencoderKL, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z0 = s * (mean + std * n), a posterior sample, scaled by the VAE's scaling factor."""
    mean, std = encode_posterior(vae, x)
    noise = torch.randn(mean.shape, generator=generator).to(mean)
    return scaling_factor(vae) * (mean + std * noise)


@torch.no_grad()
def decode(vae: AutoencoderKL, z: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] from scaled latents z: x = D(z / s)."""
    return vae.decode(z / scaling_factor(vae)).sample.clamp(-1, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 [0, 255]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] images -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


@dataclass
class LatentCache:
    """Posterior mean and std of every real image in both flip views, scaled by s.

    mean, std: [N, 2, c, h, w] float16 (view 0: as is, view 1: flipped); labels: [N] local labels.
    A cache read with `load` is memory-mapped: a batch reads its own rows from disk (the page cache
    keeps what is used often), so ImageNet-1k's cache (about 40 GB at 256 px) needs no RAM of its own.
    """

    mean: torch.Tensor
    std: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    def sample(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """z0 for images idx: a random flip view, then a posterior sample. -> [B, c, h, w] float32."""
        flip = torch.randint(0, 2, (idx.shape[0],), generator=generator)
        mean = self.mean[idx, flip].float()
        std = self.std[idx, flip].float()
        return mean + std * torch.randn(mean.shape, generator=generator)

    def save(self, folder: str | Path, meta: dict) -> Path:
        """Write the cache as a folder of .npy arrays (`cache_writer`), complete or not at all."""
        with cache_writer(folder, len(self), tuple(self.mean.shape[2:]), self.labels, meta) as write:
            write(0, self.mean, self.std)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path, meta: dict | None = None) -> "LatentCache":
        """A cache folder, memory-mapped; `meta` (the cache key), when given, must match the one it was built for.

        Plain .npy arrays read with allow_pickle=False: a cache from elsewhere cannot run code.
        """
        folder = Path(folder)
        try:
            stored = json.loads((folder / "meta.json").read_text())
            arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="c", allow_pickle=False) for k in CACHE_ARRAYS}
        except (OSError, ValueError) as err:
            raise ValueError(f"latent cache {folder} is unreadable ({type(err).__name__}: {err}): delete it to "
                             "rebuild it") from None
        if meta is not None and stored != meta:
            raise ValueError(f"latent cache {folder} was built for {stored}, not {meta}: delete it to rebuild")
        # mode "c" (copy-on-write) gives writable arrays, which torch.from_numpy needs; nothing is written back
        return cls(*(torch.from_numpy(arrays[k]) for k in CACHE_ARRAYS))


CACHE_ARRAYS = ("mean", "std", "labels")


@contextmanager
def cache_writer(folder: str | Path, n: int, latent_shape: tuple[int, ...], labels: torch.Tensor, meta: dict):
    """Fill a cache folder batch by batch; yields `write(start, mean, std)` for rows start .. start + b.

    mean.npy and std.npy ([N, 2, c, h, w] float16) are memory-mapped while written, so the whole
    cache never sits in RAM; labels.npy and meta.json complete the folder. It is built in a folder of
    its writer's own and renamed into place when complete (`shared_dir`): an interrupted encoding
    leaves no cache that looks complete, and parallel runs that build one cache do not collide.
    """
    with shared_dir(folder) as tmp:
        arrays = {k: np.lib.format.open_memmap(tmp / f"{k}.npy", mode="w+", dtype=np.float16, shape=(n, 2, *latent_shape))
                  for k in ("mean", "std")}
        np.save(tmp / "labels.npy", torch.as_tensor(labels).numpy())
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))

        def write(start: int, mean: torch.Tensor, std: torch.Tensor) -> None:
            arrays["mean"][start:start + len(mean)] = mean.numpy()
            arrays["std"][start:start + len(std)] = std.numpy()

        yield write
        for array in arrays.values():
            array.flush()
        arrays.clear()  # drop the maps (closing their files) before the folder is renamed
        for f in tmp.iterdir():
            os.chmod(f, 0o644)  # readable by all: a shared cache is for every user of the machine


def _batches(images, batch_size: int, workers: int):
    """Float batches in [-1, 1]: slices of a uint8 tensor, or a DataLoader over a dataset of (image, label)."""
    if isinstance(images, torch.Tensor):
        for start in range(0, len(images), batch_size):
            yield to_model_range(images[start:start + batch_size])
        return
    from torch.utils.data import DataLoader  # ImageNet: JPEG decoding and the ADM crop in worker processes

    for item in DataLoader(images, batch_size=batch_size, num_workers=workers, pin_memory=torch.cuda.is_available()):
        yield item[0] if isinstance(item, (list, tuple)) else item


@torch.no_grad()
def encoded_batches(vae: AutoencoderKL, images, batch_size: int = 64, progress: bool = True, workers: int = 0):
    """(mean, std) of every batch of real images, as is and flipped: two [b, 2, c, h, w] float16 tensors, scaled by s.

    `images` is a uint8 tensor [N, C, H, W] already at the diffusion resolution, or a dataset whose
    items are float tensors in [-1, 1], or (image, label) pairs (an ImageNet subset with the ADM
    crop and no random flip), read by a DataLoader with `workers` processes.
    """
    s = scaling_factor(vae)
    device = next(vae.parameters()).device
    total = -(-len(images) // batch_size)
    for x in tqdm(_batches(images, batch_size, workers), total=total, desc="encoding latents", disable=not progress):
        x = x.to(device, non_blocking=True)
        b = x.shape[0]
        mean, std = (v.cpu() for v in encode_posterior(vae, torch.cat([x, x.flip(-1)])))  # both views in one pass
        yield torch.stack([mean[:b], mean[b:]], 1).mul(s).half(), torch.stack([std[:b], std[b:]], 1).mul(s).half()


def build_cache(vae: AutoencoderKL, images, labels: torch.Tensor, batch_size: int = 64,
                progress: bool = True, workers: int = 0) -> LatentCache:
    """Encode every real image once, as is and flipped, into memory (`encoded_batches`)."""
    means, stds = zip(*encoded_batches(vae, images, batch_size, progress, workers))
    return LatentCache(torch.cat(means), torch.cat(stds), torch.as_tensor(labels).clone())


# 2: the cache is a folder of memory-mapped .npy arrays (1 was one torch.save file, read whole into RAM)
CACHE_FORMAT = 2


def cache_key(vae_spec: str, dataset: str, resolution: int, n: int) -> dict:
    return {"vae": vae_spec, "dataset": dataset, "resolution": resolution, "n": n, "format": CACHE_FORMAT}


def cache_path(cache_dir: str | Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"latents-{key['dataset']}-{key['resolution']}-{digest}"


def cached_latents(vae: AutoencoderKL, vae_spec: str, dataset: str, resolution: int, images, labels,
                   cache_dir: str | Path, progress: bool = True, workers: int = 0) -> LatentCache:
    """The latent cache of a real set, built on first use (written to disk batch by batch) and memory-mapped."""
    key = cache_key(vae_spec, dataset, resolution, len(labels))
    path = cache_path(cache_dir, key)
    if not (path / "meta.json").is_file():
        batches = encoded_batches(vae, images, progress=progress, workers=workers)
        mean, std = next(batches)  # the latent shape is known from the first batch
        with cache_writer(path, len(labels), tuple(mean.shape[2:]), labels, key) as write:
            start = 0
            for mean, std in itertools.chain([(mean, std)], batches):
                write(start, mean, std)
                start += len(mean)
    return LatentCache.load(path, key)
