# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Walk-through: latent encoding
#
# DDGD never touches pixels while it distils: the diffusion model, the loss and both memories all
# work on the latents of a VAE. This page shows what those latents are, how well the decoder turns
# them back into images, and why the package encodes the real images once, into a *latent cache*,
# instead of at every fine-tuning step. Everything below is computed when the page is built, with
# the preset and the number of real images given in the parameters cell.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
train_per_class = 200  # the first N real training images of each class (None: all of them)
n_show = 8  # images shown with their reconstructions
n_recon = 256  # images whose reconstruction error is measured
timing_repeats = 10  # timed calls per measurement (the best one counts)
seed = 0
imagenet_root = None  # data root of the ImageNet subset presets (train/ and val/ wnid folders)
overrides = {}  # further config values, e.g. {"model.vae_encode": "data/fashion-ldm/vae"}
output_dir = "runs/reproduce/latent-encoding"

# %% tags=["remove-output"]
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
from myst_nb import glue

from ddgd.experiments.pipeline import load_data
from ddgd.method.latents import build_cache, decode, encode, scaling_factor
from ddgd.method.models import load_vae
from ddgd.pages.figures import glue_values, image_grid, save_figure, write_csv
from ddgd.pages.walkthrough import (cache_comparison, describe_cache_gap, describe_latent_scale,
                                    describe_mean_decoding, describe_posterior_width, fresh_latents,
                                    largest_gap, latent_moments, psnr, real_images, reconstruction_table,
                                    shape_table, time_call, walkthrough_config)

cfg = walkthrough_config(preset, train_per_class, imagenet_root, overrides)
data = load_data(cfg)
x, y = real_images(cfg, data)  # [N, C, H, W] in [-1, 1]
vae = load_vae(cfg.model.vae_encode)
s = scaling_factor(vae)
g = torch.Generator().manual_seed(seed)

# %% tags=["remove-cell"]
glue_values("le", {"preset": cfg.name, "dataset": cfg.data.dataset, "n-images": len(x),
                   "per-class": cfg.data.train_per_class or "all"})

# %% [markdown]
# ## What a latent is
#
# The walk-through runs on the preset {glue:text}`le-preset` (dataset {glue:text}`le-dataset`),
# on the first {glue:text}`le-per-class` training images of each class, {glue:text}`le-n-images`
# images in all. An image $x$, scaled to $[-1, 1]$, goes through the encoder $E$, which returns the
# mean and standard deviation of a Gaussian posterior; a sample from it, multiplied by the VAE's
# scaling factor $s$, is the clean latent $z_0 = s\,E(x)$ of {eq}`eq-forward`. The table gives the
# shapes.

# %% tags=["remove-output"]
cache_start = time.perf_counter()
cache = build_cache(vae, list(x), y, progress=False)  # posterior mean and std of both flip views, times s
build_s = time.perf_counter() - cache_start
z_mean = cache.mean[:, 0].float()  # [N, c, h, w]: s * posterior mean of the unflipped images
z_std = cache.std[:, 0].float()  # [N, c, h, w]: s * posterior std
shapes = shape_table(x, z_mean, s)
shapes

# %% tags=["remove-cell"]
glue_values("le", {"shapes": shapes.set_index("quantity"), "s": s, "compression": x[0].numel() / z_mean[0].numel()})

# %% [markdown]
# ```{glue:} le-shapes
# ```
#
# *Table.* Shapes of an image and of its latent, and the VAE's scaling factor (from the VAE's
# config).
#
# An image holds {glue:text}`le-compression:.1f` times as many numbers as its latent. The scaling
# factor is $s$ = {glue:text}`le-s:.5g`. It is not learned with the VAE: Stable Diffusion's
# VAEs use 0.18215, and the shipped Fashion-MNIST VAE stores one over the standard deviation of the
# posterior means of its training images, so that $z_0$ has about unit variance, the scale the
# noise of {eq}`eq-forward` assumes.

# %% tags=["remove-output"]
z0 = fresh_latents(vae, x, g)  # one posterior sample per image, random flip: [N, c, h, w]
moments = latent_moments(z0, z_mean, z_std)
overall_std = float(z0.std())
noise_ratio = float(z_std.mean() / z_mean.std())  # posterior std against the spread of the posterior means
moments

# %% tags=["remove-cell"]
glue_values("le", {"moments": moments.set_index("channel").round(4), "z0-std": overall_std,
                   "noise-ratio": noise_ratio, "noise-sentence": describe_posterior_width(noise_ratio),
                   "std-sentence": describe_latent_scale(overall_std)})

# %% [markdown]
# ```{glue:} le-moments
# ```
#
# *Table.* Per latent channel: mean and standard deviation of $z_0$ over all images and positions
# (one posterior sample per image), the standard deviation of the posterior means across images,
# and the mean posterior standard deviation (all scaled by $s$).
#
# Over all channels, $z_0$ has a standard deviation of {glue:text}`le-z0-std:.3f`.
# {glue:text}`le-std-sentence` The posterior standard deviation is on average
# {glue:text}`le-noise-ratio:.3f` times the spread of the posterior means across images.
# {glue:text}`le-noise-sentence`
#
# ## Reconstructions
#
# The decoder $D$ maps a latent back to an image, $x \approx D(z_0 / s)$. The figure shows real
# images, the decoding of one posterior sample of each, and the absolute error.

# %% tags=["remove-output"]
vae_decode = load_vae(cfg.model.vae_decode)
show = x[:n_show]
z_show = encode(vae, show, g)  # posterior samples of the shown images (no flip)
rec_show = decode(vae_decode, z_show)
fig = image_grid([show, rec_show, (rec_show - show).abs() - 1], labels=["original", "D(z0 / s)", "|error|"],
                 title=f"{cfg.data.dataset}: originals, decoded latents, absolute error (bright = large)")
save_figure(fig, output_dir, "reconstructions", formats=("png",))
glue("le-reconstructions", fig, display=False)

x_rec = x[:n_recon]
psnr_sample = psnr(decode(vae_decode, encode(vae, x_rec, g)), x_rec)
psnr_mean = psnr(decode(vae_decode, cache.mean[:n_recon, 0].float()), x_rec)
recon = reconstruction_table(psnr_sample, psnr_mean)
write_csv(recon, f"{output_dir}/reconstruction.csv", cfg)
recon

# %% tags=["remove-cell"]
mean_sample, mean_mean = float(psnr_sample.mean()), float(psnr_mean.mean())
glue_values("le", {"n-recon": len(x_rec), "psnr-sample": mean_sample, "psnr-mean": mean_mean,
                   "psnr-sentence": describe_mean_decoding(mean_mean, mean_sample)})

# %% [markdown]
# ```{glue:figure} le-reconstructions
# :name: fig-latent-encoding-reconstructions
# Top: real images. Middle: the decoding of a posterior sample $z_0$ of each. Bottom: the absolute
# error, from black (none) to white (the whole range).
# ```
#
# Over the first {glue:text}`le-n-recon` images, decoding a posterior sample gives a mean peak
# signal-to-noise ratio of {glue:text}`le-psnr-sample:.1f` dB; decoding the posterior mean does
# {glue:text}`le-psnr-sentence` ({glue:text}`le-psnr-mean:.1f` dB). These errors bound what the
# distilled images can look like: whatever the diffusion model learns, it generates latents, and
# the images are their decodings.
#
# ## The latent cache
#
# Every fine-tuning step needs fresh $z_0$ for a batch: a random horizontal flip and a new
# posterior sample of each image. Encoding the batch each time runs the encoder at
# every step. The posterior, however, depends only on the image and the flip, so
# `ddgd.method.latents.build_cache` encodes every image once in both flip views and stores the scaled
# posterior mean and standard deviation; a step then draws a view and a Gaussian sample,
# $z_0 = s\,\mu + s\,\sigma\,n$, without the encoder. Drawn this way, $z_0$ has exactly the
# distribution of a fresh encoding (up to the float16 storage of the cache). Below, both ways draw
# one $z_0$ per image, and a second fresh encoding shows how much two independent draws differ
# anyway.

# %% tags=["remove-output"]
z0_cache = cache.sample(torch.arange(len(cache)), g)
z0_again = fresh_latents(vae, x, g)
compare = cache_comparison(moments, z0_cache, z0_again)
write_csv(compare, f"{output_dir}/moments.csv", cfg)
gap_cache, gap_again = largest_gap(compare, "cache"), largest_gap(compare, "encoder again")

fig, axes = plt.subplots(1, z0.shape[1], figsize=(3.2 * z0.shape[1], 2.8), squeeze=False)
for c, ax in enumerate(axes[0]):
    ax.hist(z0[:, c].flatten().numpy(), bins=60, density=True, alpha=0.6, label="encoder")
    ax.hist(z0_cache[:, c].flatten().numpy(), bins=60, density=True, histtype="step", color="black", label="cache")
    ax.set(title=f"channel {c}", xlabel="value of $z_0$", ylabel="density" if c == 0 else None)
axes[0][0].legend(fontsize=8)
fig.suptitle("Distribution of $z_0$: fresh encoding against the latent cache")
fig.tight_layout()
save_figure(fig, output_dir, "cache-distribution", formats=("png",))
glue("le-cache-hist", fig, display=False)
plt.close(fig)
compare

# %% tags=["remove-cell"]
glue_values("le", {"compare": compare.set_index("channel").round(4), "gap-cache": gap_cache, "gap-again": gap_again,
                   "gap-sentence": describe_cache_gap(gap_cache, gap_again)})

# %% [markdown]
# ```{glue:} le-compare
# ```
#
# *Table.* Per channel: mean and standard deviation of $z_0$ drawn by the encoder, from the cache,
# and by the encoder a second time.
#
# ```{glue:figure} le-cache-hist
# :name: fig-latent-encoding-cache
# Histograms of $z_0$ per channel, one draw per image: fresh encodings (filled) and samples from
# the latent cache (black outline).
# ```
#
# The largest difference in a channel's mean or standard deviation between the cache and the
# encoder is {glue:text}`le-gap-cache:.4f`, {glue:text}`le-gap-sentence` (largest difference
# {glue:text}`le-gap-again:.4f`).
#
# What the cache saves is time. Both ways are timed below for one fine-tuning batch.

# %% tags=["remove-output"]
batch = torch.arange(cfg.finetune.batch_size) % len(x)
t_encode = time_call(lambda: fresh_latents(vae, x[batch], g), timing_repeats)
t_cache = time_call(lambda: cache.sample(batch, g), timing_repeats)
timing = pd.DataFrame({"way": ["encode the batch", "sample from the cache", "build the cache (once)"],
                       "seconds": [t_encode, t_cache, build_s]})
write_csv(timing, f"{output_dir}/timing.csv", cfg)
timing

# %% tags=["remove-cell"]
glue_values("le", {"batch": cfg.finetune.batch_size, "t-encode-ms": 1000 * t_encode, "t-cache-ms": 1000 * t_cache,
                   "speedup": t_encode / t_cache, "build-s": build_s,
                   "break-even": build_s / max(t_encode - t_cache, 1e-12)})

# %% [markdown]
# For a batch of {glue:text}`le-batch` images, encoding takes {glue:text}`le-t-encode-ms:.2f` ms
# and sampling from the cache {glue:text}`le-t-cache-ms:.3f` ms: encoding takes
# {glue:text}`le-speedup:.0f` times as long per step (best of the timed calls, on the machine
# that built this page). Building the cache for the {glue:text}`le-n-images` images took
# {glue:text}`le-build-s:.1f` s, which fine-tuning earns back after about
# {glue:text}`le-break-even:.0f` steps. At paper scale the encoder is the 256 px Stable Diffusion
# VAE, whose cost per image is far higher, while sampling from the cache costs the same few
# operations per number. The fine-tuning code (`ddgd.method.finetune`) only ever reads the
# cache; the {doc}`memory initialisation <memory_initialisation>` page follows the latents into the
# memories.
