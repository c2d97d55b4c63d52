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
# # The embedded model: a small latent diffusion model of Fashion-MNIST
#
# DDGD fine-tunes DiT-XL/2, pretrained on ImageNet, in the latent space of the Stable Diffusion VAE.
# Neither runs in reasonable time on a CPU, so every CPU page of this book uses a stand-in of the
# same kind, made by this package: a diffusers `AutoencoderKL` (1 x 32 x 32 images to 4 x 8 x 8
# latents) and a class-conditional `DiTTransformer2DModel` (ten classes plus the null class for
# guidance), pretrained on the 60,000 Fashion-MNIST training images by `ddgd pretrain` and shipped
# in `data/fashion-ldm` with the model card read below.
#
# Every figure on this page comes from the card that `ddgd pretrain` wrote (`card.json`), or from
# the sample grid it saved beside the weights; nothing is recomputed here.

# %% tags=["parameters"]
model_dir = "data/fashion-ldm"  # relative to the repository: the folder `ddgd pretrain --out` wrote
rebuilt_dir = "data/fashion-ldm/rebuild"  # a second `ddgd pretrain` run with the same command; None: skip
per_class = 10  # samples shown per class
output_dir = "runs/reproduce/embedded-model"  # where the sample grid is written (PNG and PDF)

# %%
import json

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from myst_nb import glue

from ddgd.config import project_path, shown_path
from ddgd.protocol.data import class_names
from ddgd.pages.figures import glue_values, save_figure
from ddgd.pages.figure3 import first_per_class, plot_gallery
from ddgd.embedded.card import QUALITY_SAMPLER, RECONSTRUCTION_IMAGES, compare_cards, load_card, weights_digests

card = load_card(project_path(model_dir))
card["provenance"]

# %% tags=["remove-cell"]
q, r = card["quality"], card["reconstruction"]
glue_values("em", {"command": Markdown(f"```\n{card['command']}\n```"), "accuracy": q["conditional_accuracy"],
                   "judge": q["judge_test_accuracy"], "psnr": r["psnr_db"], "mse": r["mse"],
                   "diversity": q["diversity_ratio_mean"], "samples": card["config"]["eval_per_class"],
                   "judge-epochs": card["config"]["judge_epochs"], "guidance": QUALITY_SAMPLER["guidance"],
                   "steps": QUALITY_SAMPLER["steps"], "recon-images": f"{RECONSTRUCTION_IMAGES:,}",
                   "minutes": card["wall_s"]["total"] / 60, "hardware": card["provenance"]["hardware"],
                   "dit-params": f"{card['parameters']['transformer']:,}", "vae-params": f"{card['parameters']['vae']:,}"})

# %% [markdown]
# The model was made with
#
# ```{glue:md} em-command
# :format: myst
# ```
#
# in {glue:text}`em-minutes:.0f` minutes on {glue:text}`em-hardware` (VAE
# {glue:text}`em-vae-params` parameters, DiT {glue:text}`em-dit-params`). Its quality figures:
#
# - **Class-conditional accuracy**: of {glue:text}`em-samples` guided samples per class (guidance
#   {glue:text}`em-guidance:.1f`, {glue:text}`em-steps` sampling steps), {glue:text}`em-accuracy:.1f` % are labelled with the class they were
#   asked for by a judge CNN trained on the real training images. The judge itself reaches only
#   {glue:text}`em-judge:.1f` % on the real test set ({glue:text}`em-judge-epochs` epoch(s) of a small
#   network), so read the
#   first figure as "the samples look like their class to a modest classifier".
# - **VAE reconstruction** of {glue:text}`em-recon-images` test images: PSNR {glue:text}`em-psnr:.1f` dB (MSE
#   {glue:text}`em-mse:.4f` on pixels in [0, 1]).
# - **Intra-class diversity ratio**: the mean pairwise distance of the samples of a class in the
#   judge's feature space, over that of real images of the class, averaged over classes:
#   {glue:text}`em-diversity:.2f` (1.0 would be as diverse as the real data). Guided sampling
#   narrows each class, which is the problem the memory terms of DDGD address.

# %%
images, labels = torch.load(project_path(model_dir) / "sample_grid.pt", weights_only=True).values()
names = class_names("fashion-mnist")
shown = first_per_class(images, labels, range(len(names)), min(per_class, int(torch.bincount(labels).min())))
fig = plot_gallery({"pretrained model": shown}, names, min(per_class, int(torch.bincount(labels).min())))
glue("em-grid", fig, display=False)
print("written:", ", ".join(shown_path(p) for p in save_figure(fig, output_dir, stem="embedded-samples")))
plt.close(fig)  # shown once, through the glued figure below
per_class_diversity = {names[int(k)]: round(v, 2) for k, v in q["diversity_ratio_per_class"].items()}
glue("em-diversity-table", Markdown("| class | diversity ratio |\n| --- | --- |\n" + "\n".join(
    f"| {k} | {v:.2f} |" for k, v in per_class_diversity.items())), display=False)

# %% [markdown]
# ```{glue:figure} em-grid
# :name: fig-embedded-samples
#
# Guided samples of the pretrained model, one row per class, from the
# sample grid `ddgd pretrain` saved beside the weights.
# ```
#
# The diversity ratio per class ({numref}`fig-embedded-samples` shows the samples):
#
# ```{glue:md} em-diversity-table
# :format: myst
# ```

# %% [markdown]
# ## Does the pretraining command reproduce the model?
#
# A second run of the same command, on the same kind of machine, wrote its own card
# (`data/fashion-ldm/rebuild`); its figures are compared with the shipped card's below, and the
# SHA-256 of the weights it saved with those of the shipped weights. The **noise** column is the standard error of the
# shipped figure: binomial for an accuracy over its images, over classes for the mean diversity
# ratio; a single run gives none for the reconstruction error.

# %% tags=["remove-output"]
if rebuilt_dir and (project_path(rebuilt_dir) / "card.json").is_file():
    rebuilt = load_card(project_path(rebuilt_dir))
    comparison = compare_cards(card, rebuilt)
    judged = comparison.dropna(subset=["within_noise"])
    digests_file = project_path(rebuilt_dir) / "weights_sha256.json"
    digests = rebuilt.get("weights_sha256") or (json.loads(digests_file.read_text()) if digests_file.is_file() else None)
    same = None if digests is None else digests == weights_digests(project_path(model_dir))
    verdict = (f"The rebuild (commit {rebuilt['provenance']['commit'][:12]}, "
               f"{rebuilt['wall_s']['total'] / 60:.0f} minutes on {rebuilt['provenance']['hardware']}) "
               + ("reproduces every figure exactly" if (comparison["difference"] == 0).all() else
                  f"lies within two standard errors of the shipped figures on {int(judged['within_noise'].sum())} "
                  f"of the {len(judged)} that have one")
               + {None: ".", True: ", and its saved weights are byte for byte those shipped (same SHA-256).",
                  False: "; its saved weights differ from the shipped ones (another SHA-256)."}[same])
else:
    comparison, verdict = None, "No second run is committed beside the model (`rebuilt_dir`)."
glue("em-rebuild", Markdown(verdict), display=False)
glue("em-rebuild-table", comparison.round(4) if comparison is not None else Markdown(""), display=False)
comparison  # shown in the executed notebook; the page shows the glued copy below

# %% [markdown]
# ```{glue:md} em-rebuild
# :format: myst
# ```
#
# ```{glue:} em-rebuild-table
# ```

# %% [markdown]
# ## The CPU presets against the paper's
#
# Every setting in which the two CPU presets differ from the paper's ImageWoof preset, read from
# `ddgd.config.PRESETS` (the [deviations](../book/deviations.md) page says why each one changes).
# `fashion-mnist` is the full CPU benchmark, `fashion-mnist-quick` what the book's tables and
# figures run.

# %% tags=["remove-output"]
import pandas as pd

from ddgd.config import preset_differences

compared = ("imagewoof", "fashion-mnist", "fashion-mnist-quick")
differences = pd.DataFrame(preset_differences(*compared), index=list(compared)).T.astype(str)
glue("em-presets", differences, display=False)
differences  # shown in the executed notebook; the page shows the glued copy below

# %% [markdown]
# ```{glue:} em-presets
# ```
