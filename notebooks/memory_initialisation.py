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
# # Walk-through: memory initialisation
#
# DDGD keeps two memories per class $c$: $\mathcal{M}_R^c$, of at most $N_R$ real latents $z_0$,
# and $\mathcal{M}_G^c$, of at most $N_G$ predicted latents $\hat z_0$ {eq}`eq-x0`. Both start
# empty and fill online: after each fine-tuning step has computed its loss, the step's real
# latents and predictions enter the memories of their classes. This page follows that filling
# step by step, then runs a short real fine-tuning and looks at what the memories hold.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
method = "ddgd"  # minimax (FIFO memories) or ddgd (self-adaptive memories)
train_per_class = 200  # the first N real training images of each class (None: all of them)
finetune_steps = 40  # length of the real fine-tuning run whose memories are shown
stream_steps = 200  # steps of the label stream followed for the filling curves
n_show = 8  # memory items decoded per class and memory
n_classes_show = 4  # classes whose memories are decoded
seed = 0
imagenet_root = None  # data root of the ImageNet subset presets (train/ and val/ wnid folders)
overrides = {}  # further config values, e.g. {"finetune.n_real": 32}
output_dir = "runs/reproduce/memory-initialisation"

# %% tags=["remove-output"]
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from myst_nb import glue

from ddgd.config import config_hash
from ddgd.experiments.pipeline import load_data
from ddgd.experiments.runs import with_seed
from ddgd.method.checkpoints import read_checkpoint
from ddgd.method.finetune import finetune
from ddgd.method.models import load_vae
from ddgd.method.similarity import cosine_matrix
from ddgd.pages.figures import glue_values, image_grid, save_figure, write_csv
from ddgd.pages.memory_initialisation import (describe_agreement, describe_similarity, fill_history, fill_milestones,
                                              memory_rows, memory_sizes, memory_summary, memory_tensors, sizes_agree)
from ddgd.pages.walkthrough import encode_subset, label_stream, walkthrough_config

run_values = {"finetune.method": method, "finetune.max_steps": finetune_steps, **overrides}
cfg = with_seed(walkthrough_config(preset, train_per_class, imagenet_root, run_values), seed)
ft = cfg.finetune
data = load_data(cfg)
cache = encode_subset(cfg, data)  # the real latents fine-tuning draws from

# %% tags=["remove-cell"]
glue_values("mi", {"preset": cfg.name, "method": method, "rule": ft.rule, "n-real": ft.n_real, "n-gen": ft.n_gen,
                   "batch": ft.batch_size, "classes": len(data.names), "n-images": len(cache),
                   "per-class": cfg.data.train_per_class or "all", "stream-steps": stream_steps})

# %% [markdown]
# ## How the memories fill
#
# The preset {glue:text}`mi-preset` fine-tunes on batches of {glue:text}`mi-batch` latents drawn
# from {glue:text}`mi-n-images` real images ({glue:text}`mi-per-class` per class) of
# {glue:text}`mi-classes` classes, with $N_R$ = {glue:text}`mi-n-real` and
# $N_G$ = {glue:text}`mi-n-gen`. A batch item of class $c$ adds one item to $\mathcal{M}_R^c$
# (its $z_0$) and one to $\mathcal{M}_G^c$ (its $\hat z_0$), so until a memory is full its size is
# the number of items of its class seen so far, whatever the update rule; after that, the rule
# decides which items stay (see {doc}`adaptive_update`). Below, the labels of the first
# {glue:text}`mi-stream-steps` batches are drawn exactly as `ddgd.method.finetune` draws them.

# %% tags=["remove-output"]
stream = label_stream(cache.labels, ft.batch_size, stream_steps, ft.seed)
history = fill_history(stream, ft.n_real, ft.n_gen)
write_csv(history, f"{output_dir}/fill-history.csv", cfg)
real_sizes, gen_sizes, per_step = memory_sizes(history)
milestones = fill_milestones(history, ft.n_real, ft.n_gen, stream_steps)

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, sizes, cap, name in ((axes[0], real_sizes, ft.n_real, "$\\mathcal{M}_R^c$ (real latents)"),
                             (axes[1], gen_sizes, ft.n_gen, "$\\mathcal{M}_G^c$ (predicted latents)")):
    ax.plot(sizes.index, sizes.values, lw=1)
    ax.axhline(cap, color="black", ls="--", lw=0.8)
    ax.set(title=f"size of {name} per class", xlabel="fine-tuning step", ylabel="items")
first = per_step.iloc[: min(30, len(per_step))]
axes[2].bar(first.index, first.in_batch, color="lightgray", label="classes in the batch (K)")
axes[2].bar(first.index, first.counted, color="tab:blue", label="classes adding a memory term")
axes[2].set(title="memory terms in the first steps", xlabel="fine-tuning step", ylabel="classes")
axes[2].legend(fontsize=8)
fig.tight_layout()
save_figure(fig, output_dir, "filling", formats=("png",))
glue("mi-filling", fig, display=False)
plt.close(fig)
per_step.head(10)

# %% tags=["remove-cell"]
glue_values("mi", milestones)  # all-seen, all-full, skipped, first-terms

# %% [markdown]
# ```{glue:figure} mi-filling
# :name: fig-memory-initialisation-filling
# Left and middle: the size of each class's real and generated memory after every step (one line
# per class; dashed: $N_R$ and $N_G$). Right: over the first steps, the classes present in each
# batch (grey) and those that add a memory term (blue).
# ```
#
# Every class has been seen by step {glue:text}`mi-all-seen`; every memory of every class is full
# {glue:text}`mi-all-full`. The first step adds {glue:text}`mi-first-terms` memory terms: its
# classes have empty memories, and a class seen for the first time adds nothing to
# {eq}`eq-real` and {eq}`eq-gen` at that step, since the memories are updated only after the
# step's loss. Over the whole stream, {glue:text}`mi-skipped` class terms are skipped this way,
# one per class, at its first appearance. From its second appearance on, a class is compared with
# memories that hold only a few items, so the early minimum and maximum of the memory terms run
# over few pairs.
#
# ## What the memories hold
#
# Now a real fine-tuning run of {glue:text}`mi-steps` steps with the method
# {glue:text}`mi-method` (update rule {glue:text}`mi-rule`), through `ddgd.method.finetune.finetune`;
# its checkpoint stores both memories of every class.

# %% tags=["remove-output"]
run_dir = Path(output_dir) / f"run-{config_hash(cfg)}"  # a new folder for another config
finetune(cfg, cache, data.dit_labels, run_dir, progress=False)
memories = memory_tensors(run_dir)
steps = int(read_checkpoint(run_dir / "checkpoint.pt")["step"])
agree = sizes_agree(memories, stream, steps, ft.n_real, ft.n_gen)

vae = load_vae(cfg.model.vae_decode)
rows, labels = memory_rows(vae, memories, data.names, n_classes_show, n_show, cache.mean.shape[2:])
fig = image_grid(rows, labels, title=f"memory items after {steps} fine-tuning steps ({method}), decoded")
save_figure(fig, output_dir, "memory-items", formats=("png",))
glue("mi-items", fig, display=False)

# %% tags=["remove-cell"]
glue_values("mi", {"steps": steps, "agree": describe_agreement(agree)})

# %% [markdown]
# {glue:text}`mi-agree`
#
# ```{glue:figure} mi-items
# :name: fig-memory-initialisation-items
# The first items of $\mathcal{M}_R^c$ (real) and $\mathcal{M}_G^c$ (generated) of a few
# classes, decoded to images.
# ```
#
# The real memory holds latents of real images (a posterior sample of a random flip view), so its
# decodings look like the reconstructions of the {doc}`latent encoding <latent_encoding>` page.
# The generated memory holds the model's predictions $\hat z_0$ from noisy latents $z_t$ at random
# timesteps: from a lightly noised latent the prediction is close to the real image, from a
# heavily noised one it is a blurred guess. These are the items the diversity term
# {eq}`eq-gen` keeps new predictions away from.
#
# ## Their similarity structure

# %% tags=["remove-output"]
summary = memory_summary(memories)
summary.insert(1, "class", [data.names[c] for c in summary.label])
write_csv(summary, f"{output_dir}/memory-summary.csv", cfg)
c0 = summary.label.iloc[0]
both = torch.cat(memories[c0])  # [n_real + n_gen, d]: the real items first
fig, ax = plt.subplots(figsize=(5.5, 4.6))
im = ax.imshow(cosine_matrix(both, both).numpy(), cmap="viridis", vmin=-1, vmax=1)
n0 = len(memories[c0][0])
ax.axhline(n0 - 0.5, color="white", lw=1)
ax.axvline(n0 - 0.5, color="white", lw=1)
ax.set(title=f"cosine similarity, class {data.names[c0]}\n(real items, then generated items)",
       xlabel="memory item", ylabel="memory item")
fig.colorbar(im, ax=ax, label="$\\sigma$")
fig.tight_layout()
save_figure(fig, output_dir, "similarity", formats=("png",))
glue("mi-similarity", fig, display=False)
plt.close(fig)
real_cos, gen_cos, cross_cos = (float(summary[k].mean()) for k in ("real_mean_cos", "gen_mean_cos", "cross_mean_cos"))
summary

# %% tags=["remove-cell"]
glue_values("mi", {"real-cos": real_cos, "gen-cos": gen_cos, "cross-cos": cross_cos,
                   "cos-sentence": describe_similarity(gen_cos, real_cos),
                   "summary": summary.drop(columns="label").set_index("class").round(3)})

# %% [markdown]
# ```{glue:figure} mi-similarity
# :name: fig-memory-initialisation-similarity
# Cosine similarity {eq}`eq-similarity` between all items of both memories of one class: real
# items top left, generated items bottom right, real against generated off the diagonal. While no
# item has been removed, both memories hold their items in arrival order, so a bright short
# diagonal in the off-diagonal blocks pairs a prediction with the real latent it was made from.
# ```
#
# ```{glue:} mi-summary
# ```
#
# *Table.* Per class: memory sizes and the mean pairwise cosine similarity inside the real memory,
# inside the generated memory, and between the two.
#
# Averaged over classes, two items of the real memory have a cosine similarity of
# {glue:text}`mi-real-cos:.3f`, two items of the generated memory {glue:text}`mi-gen-cos:.3f`, and
# a real item and a generated one {glue:text}`mi-cross-cos:.3f`: the predictions are
# {glue:text}`mi-cos-sentence` alike among themselves than the real latents are. The
# representativeness term {eq}`eq-real` acts on the *smallest* similarity between a prediction
# and the real memory, the diversity term {eq}`eq-gen` on the *largest* similarity to the
# generated memory; the {doc}`minimax losses <minimax_losses>` page computes both on one batch.
