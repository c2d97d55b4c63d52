"""Measurements behind the walk-through notebooks of the book (book page: The method).

The walk-throughs (latent encoding, memory initialisation, minimax losses, adaptive update, full
run) stay thin: what they compute beyond calling the pipeline lives here and in the page modules
`memory_initialisation`, `minimax_losses` and `adaptive_update`, as small functions that can be
tested exactly. This module holds what several walk-throughs share and the pages "Latent
encoding" and "Full run":

* real data and latents: `walkthrough_config`, `real_images`, `encode_subset`, `fresh_latents`,
  `channel_moments`, `psnr`;
* the page "Latent encoding" (eq-forward): `shape_table`, `latent_moments`, `reconstruction_table`,
  `cache_comparison`, `largest_gap` and its sentences `describe_posterior_width`,
  `describe_latent_scale`, `describe_mean_decoding`, `describe_cache_gap`;
* memories and clocks: `label_stream`, `decode_items`, `time_call`;
* the page "Full run": `FINE_TUNED`, `loss_history`, `loss_windows`, `distilled_set`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ddgd.config import RunConfig, resolve
from ddgd.experiments.runs import GENERATIVE
from ddgd.method.checkpoints import read_checkpoint
from ddgd.method.finetune import batch_indices
from ddgd.method.latents import LatentCache, build_cache, decode, encode, to_model_range, to_uint8
from ddgd.method.models import load_vae
from ddgd.protocol.imagenet import ImageNetSubset, diffusion_transform, is_imagenet, subset_classes


FINE_TUNED = ("finetune", "minimax", "ddgd")  # the methods whose run has a loss history (not dit, random)


# ------------------------------------------------------------------------------- data and latents
def walkthrough_config(preset: str, train_per_class: int | None, imagenet_root: str | None = None,
                       overrides: Mapping | None = None) -> RunConfig:
    """The config of a walk-through: a preset on the first `train_per_class` real images per class.

    `imagenet_root` is the data root of the ImageNet subset presets; `overrides` are further
    ``section.field`` values (applied last, validated by `resolve`).
    """
    values = {"data.train_per_class": train_per_class, **({"data.root": imagenet_root} if imagenet_root else {})}
    return resolve(preset, {**values, **(overrides or {})})


def first_indices_per_class(labels: torch.Tensor, k: int | None) -> torch.Tensor:
    """Indices of the first `k` items of every class (all items when k is None), in dataset order."""
    if k is None:
        return torch.arange(len(labels))
    keep = [torch.nonzero(labels == c).squeeze(1)[:k] for c in labels.unique(sorted=True)]
    return torch.cat(keep).sort().values


def real_images(cfg: RunConfig, data, classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images float [N, C, H, W] in [-1, 1] at the diffusion resolution, and labels [N].

    The first `cfg.data.train_per_class` images of each class (of `classes` only, when given):
    in-memory sets come subset already from `ddgd.experiments.pipeline.load_data`; ImageNet subsets are read from
    disk (ADM crop, no flip), only the images asked for.
    """
    d = cfg.data
    imagenet = is_imagenet(d.dataset)
    if imagenet:
        subset = ImageNetSubset(d.root, subset_classes(d), "train", transform=diffusion_transform(d.resolution, flip=False))
        labels = torch.tensor(subset.targets)
    else:
        labels = data.train_y
    idx = first_indices_per_class(labels, d.train_per_class if imagenet else None)
    if classes is not None:
        idx = idx[torch.isin(labels[idx], torch.as_tensor(list(classes)))]
    if imagenet:
        return torch.stack([subset[i][0] for i in idx.tolist()]), labels[idx]
    return to_model_range(data.train_x[idx]), labels[idx].clone()


def encode_subset(cfg: RunConfig, data, classes: Sequence[int] | None = None, progress: bool = False) -> LatentCache:
    """The latent cache of `real_images` under the config's encoder (nothing written to disk)."""
    x, y = real_images(cfg, data, classes)
    return build_cache(load_vae(cfg.model.vae_encode), list(x), y, progress=progress)


def fresh_latents(vae, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """z0 encoded afresh (book page: The method): a random horizontal flip per image, then a posterior sample. [N, c, h, w]."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return encode(vae, x, generator)


def channel_moments(z: torch.Tensor) -> pd.DataFrame:
    """Mean and standard deviation of latents [N, c, h, w] per channel (over images and positions)."""
    flat = z.float().transpose(0, 1).reshape(z.shape[1], -1)  # [c, N * h * w]
    return pd.DataFrame({"channel": range(z.shape[1]), "mean": flat.mean(1).numpy(), "std": flat.std(1).numpy()})


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), one value per image. [N]."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse)


# ------------------------------------------------------------------------------- the page "Latent encoding"
def shape_table(x: torch.Tensor, z: torch.Tensor, s: float) -> pd.DataFrame:
    """Shapes of an image x [N, C, H, W] and of its latent z [N, c, h, w], numbers per each, and s (eq-forward)."""
    nx, nz = x[0].numel(), z[0].numel()
    return pd.DataFrame({
        "quantity": ["image x", "latent z0", "numbers per image / per latent", "scaling factor s"],
        "value": [" x ".join(map(str, x.shape[1:])), " x ".join(map(str, z.shape[1:])),
                  f"{nx} / {nz} ({nx / nz:.1f} : 1)", f"{s:.5g}"],
    })


def latent_moments(z0: torch.Tensor, z_mean: torch.Tensor, z_std: torch.Tensor) -> pd.DataFrame:
    """Per channel: mean and std of the samples z0, spread of the posterior means, mean posterior std.

    All [N, c, h, w], scaled by s: z0 one posterior sample per image, z_mean and z_std the posterior.
    """
    moments = channel_moments(z0).rename(columns={"mean": "z0 mean", "std": "z0 std"})
    moments["spread of posterior means"] = channel_moments(z_mean)["std"]
    moments["mean posterior std"] = z_std.transpose(0, 1).reshape(z_std.shape[1], -1).mean(1).numpy()
    return moments


def describe_posterior_width(noise_ratio: float) -> str:
    """The page's sentence on the mean posterior std over the spread of the posterior means (narrow below 0.5)."""
    if noise_ratio < 0.5:
        return ("The posterior is narrow: two samples of the same image are much closer to each other than to "
                "another image's latent.")
    return ("The posterior is wide: the sampling noise is as large as the differences between images, as in an "
            "untrained VAE.")


def describe_latent_scale(overall_std: float) -> str:
    """The page's sentence on the std of z0 over all channels: close to one (0.7 to 1.4) is what s is for."""
    if 0.7 < overall_std < 1.4:
        return "This is close to one, which is what the scaling factor is for."
    return ("This is not close to one: this VAE's scaling factor was not fitted to these images "
            "(a random test VAE keeps the default 0.18215).")


def reconstruction_table(psnr_sample: torch.Tensor, psnr_mean: torch.Tensor) -> pd.DataFrame:
    """Mean and worst PSNR [N] of decoding a posterior sample and the posterior mean."""
    return pd.DataFrame({"latent decoded": ["posterior sample", "posterior mean"],
                         "mean PSNR (dB)": [float(psnr_sample.mean()), float(psnr_mean.mean())],
                         "worst PSNR (dB)": [float(psnr_sample.min()), float(psnr_mean.min())]})


def describe_mean_decoding(psnr_mean: float, psnr_sample: float) -> str:
    """How decoding the posterior mean compares with a sample, by mean PSNR: "better" or "no better"."""
    return "better" if psnr_mean > psnr_sample else "no better"


def cache_comparison(moments: pd.DataFrame, z0_cache: torch.Tensor, z0_again: torch.Tensor) -> pd.DataFrame:
    """Per channel: mean and std of z0 from the encoder (`latent_moments`), the cache and the encoder again."""
    cache, again = channel_moments(z0_cache), channel_moments(z0_again)
    return pd.DataFrame({"channel": moments["channel"], "mean (encoder)": moments["z0 mean"],
                         "mean (cache)": cache["mean"], "mean (encoder again)": again["mean"],
                         "std (encoder)": moments["z0 std"], "std (cache)": cache["std"],
                         "std (encoder again)": again["std"]})


def largest_gap(compare: pd.DataFrame, way: str) -> float:
    """Largest difference of a channel's mean or std between `way` ("cache", "encoder again") and the encoder."""
    return float(max((compare[f"mean ({way})"] - compare["mean (encoder)"]).abs().max(),
                     (compare[f"std ({way})"] - compare["std (encoder)"]).abs().max()))


def describe_cache_gap(gap_cache: float, gap_again: float) -> str:
    """Whether the cache matches the encoder: within twice the gap between two fresh encodings."""
    if gap_cache <= 2 * gap_again:
        return "within the difference between two fresh encodings"
    return "more than two fresh encodings differ: the cache does not match the encoder"


# ------------------------------------------------------------------------------- memories
def label_stream(labels: torch.Tensor, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The labels of each fine-tuning batch, drawn as `ddgd.method.finetune` draws them."""
    return [labels[batch_indices(len(labels), batch_size, k, seed)] for k in range(steps)]


def decode_items(vae, items: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Flattened latents [m, d] (memory items) -> uint8 images [m, C, H, W] through the decoder."""
    return to_uint8(decode(vae, items.reshape(len(items), *shape).float()))


def time_call(fn: Callable[[], object], repeats: int = 5) -> float:
    """Best wall time in seconds of fn() over `repeats` calls, after one warm-up call (one-off costs)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loss_history(run_dir: str | Path) -> pd.DataFrame:
    """The per-step loss terms (step, loss, l_diff, l_vb, l_real, l_gen) of a fine-tuning run."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the fine-tuning first (ddgd.experiments.pipeline.distill)")
    return pd.DataFrame(read_checkpoint(path, keys=("history",))["history"])


def loss_windows(history: pd.DataFrame | None, window: int) -> dict[str, float]:
    """Mean loss terms over the first and the last `window` steps; NaN for a run without fine-tuning (None).

    Keys as the page "Full run" glues them: l-diff-first, l-diff-last, l-real-last, l-gen-last.
    """
    if history is None:
        return dict.fromkeys(("l-diff-first", "l-diff-last", "l-real-last", "l-gen-last"), float("nan"))
    first, last = history.iloc[:window].mean(), history.iloc[-window:].mean()
    return {"l-diff-first": float(first.l_diff), "l-diff-last": float(last.l_diff),
            "l-real-last": float(last.l_real), "l-gen-last": float(last.l_gen)}


def distilled_set(cfg: RunConfig, data, method: str, root: str | Path, ipc: int, progress: bool = False):
    """The distilled set of one method: (images uint8, labels, run folder or None for `random`).

    Generative methods fine-tune (`distill`, resumed or reused when done), sample the pool and keep
    its first `ipc` images per class; `random` draws `ipc` real training images per class.
    `cfg` is the run's config (`ddgd.experiments.runs.with_seed`).
    """
    from ddgd.experiments.pipeline import distill, real_set, sample_pool  # deferred: the pipeline imports much
    from ddgd.method.sample import ipc_subset

    if method == "random":
        return (*real_set(cfg, data, "random", ipc, cfg.finetune.seed), None)
    if method not in GENERATIVE:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(GENERATIVE)} or random")
    out = distill(cfg, Path(root), data, progress)
    pool_x, pool_y = sample_pool(cfg, out, data, progress)
    return (*ipc_subset(pool_x, pool_y, ipc), out)
