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
# # Figure 3: original images next to DiT, Minimax and DDGD samples
#
# The paper's Figure 3 compares, at 50 images per class (IPC 50), original images with the
# distilled images of the pretrained DiT, of Minimax and of DDGD, and reads from the pictures that
# DDGD's images are more diverse. This page shows the same comparison from images the code wrote,
# and checks the claim with a number rather than by eye.
#
# How the images are made: every method is fine-tuned (or, for DiT, left as pretrained) and
# samples its pool with the **same seed** (Minimax and DDGD with the same weights $\lambda_r$ and
# $\lambda_g$ and memory sizes $N_R$ and $N_G$, differing only in the memory update rule),
# so the k-th image of a class starts from the same noise
# in every method and differences between panels come from the models alone. The distilled set of
# a class is the first IPC images of its pool; the figure shows the first few of them. The
# originals are a seeded random draw of IPC real training images per class.
#
# The images are result files: when `images_dir` holds a gallery made with the same settings, it is
# read back; otherwise (with `compute`) the runs go through `ddgd.experiments.pipeline` and the gallery is
# written there, PNGs with a manifest of the config, its hash and the provenance.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
overrides = {"sample.pool": 50}  # the pool holds at least `ipc` images per class
methods = ["dit", "minimax", "ddgd"]  # the panels after the originals
classes = [0, 1, 3, 5, 7, 9]  # class indices shown, one row each
per_class = 8  # images shown per class
ipc = 50  # images per class of the distilled set whose diversity is measured
seed = 0  # fine-tuning and sampling seed of every method
judge_epochs = 2  # training epochs of the judge classifier on the real training images
judge_size = 32  # images are resized to this many pixels for the judge
images_dir = "data/results/figure3-cpu"  # relative to the repository; None: <output_dir>/gallery
compute = True  # fine-tune, sample and write the gallery when images_dir holds none
threads = None  # torch CPU threads; None: torch's default (on a busy shared machine, 1 is much faster)
output_dir = "runs/reproduce/figure3"  # fine-tuning runs, sample pools and figure3.png

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from myst_nb import glue

from ddgd.config import project_path, resolve, shown_path
from ddgd.pages.figures import glue_values, save_figure, settings_note
from ddgd.pages.figure3 import GallerySpec, describe_diversity, diversity_summary, gallery, plot_gallery

if threads:
    torch.set_num_threads(threads)
config = resolve(preset, overrides)
spec = GallerySpec(methods=tuple(methods), classes=tuple(classes), per_class=per_class, ipc=ipc, seed=seed,
                   judge_epochs=judge_epochs, judge_size=judge_size)
folder = project_path(images_dir) if images_dir else Path(output_dir) / "gallery"
sets, rows, manifest, computed = gallery(config, spec, folder, Path(output_dir) / "runs", compute, progress=False)
print(("computed and written to " if computed else "read from ") + shown_path(folder))

# %% tags=["remove-cell"]
glue("fig3-settings", Markdown(settings_note(overrides)), display=False)

# %% [markdown]
# ```{glue:md} fig3-settings
# :format: myst
# ```

# %% [markdown]
# ## The images

# %%
fig = plot_gallery(sets, manifest["class_names"], per_class)
save_figure(fig, output_dir, stem="figure3", formats=("png",))
plt.close(fig)

# %% tags=["remove-cell"]
glue_values("fig3", {"figure": fig, "dataset": config.data.dataset, "preset": preset, "ipc": ipc, "per-class": per_class,
                     "seed": seed, "source": ("computed by this run and written to " if computed else "read from the gallery ")
                     + str(images_dir or "<output_dir>/gallery"), "created": manifest["created"],
                     "commit": manifest["provenance"].get("commit", "unknown"), "hash": manifest["config_hash"]})

# %% [markdown]
# ```{glue:figure} fig3-figure
# :name: fig-figure3
#
# Original images (a random draw of real training images) and the distilled images of the
# pretrained model (DiT), Minimax and DDGD: the first images of each class of the distilled set,
# all methods sampled with the same seed. One row per class.
# ```
#
# Dataset {glue:text}`fig3-dataset` (preset {glue:text}`fig3-preset`), IPC {glue:text}`fig3-ipc`,
# {glue:text}`fig3-per-class` images shown per class, seed {glue:text}`fig3-seed`. The images were
# {glue:text}`fig3-source`, made on {glue:text}`fig3-created` at commit {glue:text}`fig3-commit`
# with the config of hash {glue:text}`fig3-hash`.
#
# At paper scale (ImageWoof, DiT-XL/2 at 256 pixels) the paper's figure shows photographs; on the
# CPU default the model is the project's small latent DiT on Fashion-MNIST, so the images are
# 32-pixel greyscale clothes, and differences between panels are subtler than on ImageNet.

# %% [markdown]
# ## Are DDGD's images more diverse?
#
# Diversity is measured on all IPC images of every class, not only on the ones shown. A small
# classifier (the *judge*, `ddgd.embedded.quality.Judge`) is trained on the real training images; the
# spread of a set is the mean pairwise distance of its images in the judge's penultimate features,
# and the **diversity ratio** divides it by the same spread of real images of the class
# (`ddgd.embedded.quality.diversity_ratio`): 1.0 is as spread out as the real data, lower is more alike. The
# features of a classifier trained on the real data are used rather than pixels because pixel
# distances mostly measure position and brightness; the judge's features measure what tells classes
# apart, which is what a network trained on the distilled set learns from. The judge also reports
# the share of each set it labels with the class the images were made for: diversity bought with
# images that no longer look like their class would show there.

# %%
table = diversity_summary(rows).round(3)
verdict = describe_diversity(rows, "ddgd", tuple(m for m in methods if m != "ddgd"))

# %% tags=["remove-cell"]
glue_values("fig3", {"diversity-table": table, "verdict": verdict, "judge-accuracy": manifest["judge"]["test_accuracy"],
                     "judge-images": manifest["judge"]["train_images"], "classes": int(rows["class_index"].nunique())})

# %% [markdown]
# ```{glue:} fig3-diversity-table
# ```
#
# Per set of images: the diversity ratio averaged over the {glue:text}`fig3-classes` classes, its
# lowest and highest class, and the share (%) of images the judge assigns to their class. The judge
# was trained on {glue:text}`fig3-judge-images` real training images and labels
# {glue:text}`fig3-judge-accuracy:.1f` % of the real test images correctly.
#
# {glue:text}`fig3-verdict`
#
# These are the runs of one seed, so the numbers carry the noise of one fine-tuning and one
# sampling run per method. The comparison pairs the two sets class by class (the tables' bootstrap
# interval, over classes instead of seeds): it says how consistent a difference is across the
# classes of these sets, not whether it would recur with another seed, which the page
# {doc}`diversity` measures over ten seeds.
