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
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base.files import atomic_write


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

    def save(self, path: str | Path, meta: dict) -> None:
        # a temporary name of its own: parallel runs of one preset may build the same cache at once
        with atomic_write(path) as tmp:  # readable by all: a shared cache is for every user of the machine
            torch.save({"mean": self.mean, "std": self.std, "labels": self.labels, "meta": meta}, tmp)

    @classmethod
    def load(cls, path: str | Path, meta: dict | None = None) -> "LatentCache":
        state = torch.load(path, weights_only=True)
        if meta is not None and state["meta"] != meta:
            raise ValueError(f"latent cache {path} was built for {state['meta']}, not {meta}: delete it to rebuild")
        return cls(state["mean"], state["std"], state["labels"])


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
def build_cache(vae: AutoencoderKL, images, labels: torch.Tensor, batch_size: int = 64,
                progress: bool = True, workers: int = 0) -> LatentCache:
    """Encode every real image once, as is and flipped.

    `images` is a uint8 tensor [N, C, H, W] already at the diffusion resolution, or a dataset whose
    items are float tensors in [-1, 1], or (image, label) pairs (an ImageNet subset with the ADM
    crop and no random flip), read by a DataLoader with `workers` processes.
    """
    s = scaling_factor(vae)
    device = next(vae.parameters()).device
    means, stds = [], []
    total = -(-len(images) // batch_size)
    for x in tqdm(_batches(images, batch_size, workers), total=total, desc="encoding latents", disable=not progress):
        x = x.to(device, non_blocking=True)
        b = x.shape[0]
        mean, std = (v.cpu() for v in encode_posterior(vae, torch.cat([x, x.flip(-1)])))  # both views in one pass
        means.append(torch.stack([mean[:b], mean[b:]], 1).mul(s).half())
        stds.append(torch.stack([std[:b], std[b:]], 1).mul(s).half())
    return LatentCache(torch.cat(means), torch.cat(stds), torch.as_tensor(labels).clone())


def cache_key(vae_spec: str, dataset: str, resolution: int, n: int) -> dict:
    return {"vae": vae_spec, "dataset": dataset, "resolution": resolution, "n": n}


def cache_path(cache_dir: str | Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"latents-{key['dataset']}-{key['resolution']}-{digest}.pt"


def cached_latents(vae: AutoencoderKL, vae_spec: str, dataset: str, resolution: int, images, labels,
                   cache_dir: str | Path, progress: bool = True, workers: int = 0) -> LatentCache:
    """The latent cache of a real set, built on first use and reused afterwards."""
    key = cache_key(vae_spec, dataset, resolution, len(labels))
    path = cache_path(cache_dir, key)
    if path.is_file():
        return LatentCache.load(path, key)
    cache = build_cache(vae, images, torch.as_tensor(labels), progress=progress, workers=workers)
    cache.save(path, key)
    return cache
