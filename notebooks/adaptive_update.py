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
# # Walk-through: the self-adaptive memory update
#
# Minimax and DDGD differ by one word of configuration: the rule that decides which items a full
# memory drops. Minimax drops the oldest (FIFO). DDGD computes the cosine similarity matrix $S$ of
# all items, scores each item by its similarity sum $s_i = \sum_j S_{ij}$ and drops the most
# redundant one, recomputing after every removal {eq}`eq-adaptive`. The released code also knows
# the opposite choice, dropping the *least* similar item (`adaptive-min`). This page feeds the same
# stream of real latents to a memory under each of the three rules and follows which items survive
# and how diverse the kept memory is, then follows the memories of Minimax and DDGD during
# fine-tuning, and times the package's implementation of the rule.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
train_per_class = 200  # the first N real training images of each class (None: all of them)
stream_class = 0  # the class whose real latents form the stream
stream_length = 200  # items in the stream (at most the class's images)
per_step = 1  # items entering the memory per step
capacity = None  # memory size; None: the preset's N_R
rules = ["fifo", "adaptive", "adaptive-min"]
finetune_methods = ["minimax", "ddgd"]  # fine-tuned to log their memories (FIFO and self-adaptive)
n_show = 12  # kept items decoded per rule
timing_new = [1, 2, 4, 8, 16, 32]  # new items arriving at a full memory, for the timing
timing_capacity = 64  # memory size of the timing (the paper: 64 for N_R and N_G)
timing_dim = 4096  # latent size of the timing (4 x 32 x 32 at 256 px)
timing_repeats = 5
seed = 0
imagenet_root = None  # data root of the ImageNet subset presets (train/ and val/ wnid folders)
overrides = {}  # further config values
output_dir = "runs/reproduce/adaptive-update"

# %% tags=["remove-output"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from myst_nb import glue

from ddgd.config import config_hash
from ddgd.experiments.pipeline import distill, load_data
from ddgd.experiments.runs import with_seed
from ddgd.method.models import load_vae
from ddgd.pages.adaptive_update import (describe_ranking, describe_same, describe_shape, describe_speed,
                                        describe_verdict, evenly_spaced, full_means, kept_items, paper_shape,
                                        survivor_table, timing_table, track_rule)
from ddgd.pages.figures import glue_values, image_grid, save_figure, write_csv
from ddgd.pages.memory_diversity import describe_rules, diversity_figure, late_means, memory_history
from ddgd.pages.walkthrough import decode_items, encode_subset, walkthrough_config

cfg = walkthrough_config(preset, train_per_class, imagenet_root, overrides)
data = load_data(cfg)
cache = encode_subset(cfg, data, classes=[stream_class])  # only the class of the stream
size = capacity or cfg.finetune.n_real
members = torch.nonzero(cache.labels == stream_class).squeeze(1)[:stream_length]
stream = cache.sample(members, torch.Generator().manual_seed(seed))  # [T, c, h, w]: what M_real receives
tracks = {rule: track_rule(stream, size, rule, per_step) for rule in rules}
stats = pd.concat([tracks[rule][0] for rule in rules], ignore_index=True)
write_csv(stats, f"{output_dir}/diversity-over-time.csv", cfg)

# %% tags=["remove-cell"]
glue_values("au", {"preset": cfg.name, "class": data.names[stream_class], "length": len(stream),
                   "per-step": per_step, "capacity": size, "dim": stream[0].numel()})

# %% [markdown]
# ## One stream, three rules
#
# The stream is the real latents of {glue:text}`au-length` training images of the class
# *{glue:text}`au-class`* (preset {glue:text}`au-preset`), in dataset order, each a posterior
# sample of a random flip view, as the real memory receives them; they enter a memory of
# {glue:text}`au-capacity` items, {glue:text}`au-per-step` per step. Each latent has
# {glue:text}`au-dim` numbers. `ddgd.pages.adaptive_update.track_rule` replays `MemoryBank.add` step by step
# and records which stream items are in the memory.

# %% tags=["remove-output"]
fig, axes = plt.subplots(1, len(rules), figsize=(4.6 * len(rules), 4), squeeze=False, sharey=True)
for ax, rule in zip(axes[0], rules):
    alive = tracks[rule][1]  # [steps, T]
    ax.imshow(alive.T.numpy(), aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
              extent=(0.5, alive.shape[0] + 0.5, -0.5, alive.shape[1] - 0.5))  # steps count from 1
    ax.set(title=f"{rule}: items in the memory", xlabel="step", ylabel="stream item (arrival order)")
fig.tight_layout()
save_figure(fig, output_dir, "survival", formats=("png",))
glue("au-survival", fig, display=False)
plt.close(fig)

kept = kept_items(tracks)  # rule -> stream indices kept at the end
survivors = survivor_table(stats, kept, size)
write_csv(survivors.reset_index(names="rule"), f"{output_dir}/survivors.csv", cfg)
glue("au-survivors", survivors.round(4), display=False)
survivors

# %% [markdown]
# ```{glue:figure} au-survival
# :name: fig-adaptive-update-survival
# Which stream items are in the memory after each step (black), for each rule. FIFO keeps a
# sliding window of the newest items; the similarity rules keep items from the whole stream.
# ```
#
# ```{glue:} au-survivors
# ```
#
# *Table.* At the end of the stream: the oldest item still kept, how many of the first items
# survive, the mean age of the kept items, and the redundancy of the kept memory (mean and largest
# pairwise cosine similarity; "while full" averages over the steps at which the memory is full).
#
# FIFO forgets everything older than the last {glue:text}`au-capacity` items by construction,
# whatever they were. The self-adaptive rule has no notion of age: an item stays while others are
# more redundant than it, and a new item that duplicates what the memory holds is dropped at once.
#
# ## Diversity of the kept memory over time

# %% tags=["remove-output"]
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for rule in rules:
    s = stats[stats.rule == rule]
    axes[0].plot(s.step, s.mean_cos, label=rule)
    axes[1].plot(s.step, s.max_cos, label=rule)
    axes[2].plot(s.step, s.mean_age, label=rule)
axes[0].set(title="mean pairwise cosine similarity", xlabel="step", ylabel="$\\sigma$ (lower: more diverse)")
axes[1].set(title="largest pairwise cosine similarity", xlabel="step", ylabel="$\\sigma$ (closest pair)")
axes[2].set(title="mean age of the kept items", xlabel="step", ylabel="age (steps)")
axes[0].legend(fontsize=8)
fig.tight_layout()
save_figure(fig, output_dir, "diversity", formats=("png",))
glue("au-diversity", fig, display=False)
plt.close(fig)

vae = load_vae(cfg.model.vae_decode)
picks = {r: evenly_spaced(kept[r], n_show) for r in rules}
fig = image_grid([decode_items(vae, stream[picks[r]].flatten(1), stream.shape[1:]) for r in rules], rules,
                 title="kept items at the end of the stream (evenly spaced in arrival order), decoded")
save_figure(fig, output_dir, "kept-items", formats=("png",))
glue("au-kept", fig, display=False)

# %% tags=["remove-cell"]
mean_cos = full_means(stats, size).mean_cos  # per rule, over the steps at which the memory is full
glue_values("au", {"fifo-cos": float(mean_cos.get("fifo", float("nan"))),
                   "adaptive-cos": float(mean_cos.get("adaptive", float("nan"))),
                   "min-cos": float(mean_cos.get("adaptive-min", float("nan"))),
                   "ranking": describe_ranking(mean_cos), "verdict": describe_verdict(mean_cos)})

# %% [markdown]
# ```{glue:figure} au-diversity
# :name: fig-adaptive-update-diversity
# The kept memory over the stream: mean and largest pairwise cosine similarity of its items
# ({eq}`eq-similarity`, off the diagonal) and their mean age.
# ```
#
# ```{glue:figure} au-kept
# :name: fig-adaptive-update-kept
# A few of the items each rule keeps at the end, decoded to images.
# ```
#
# Averaged over the steps at which the memory is full, the mean pairwise similarity is
# {glue:text}`au-fifo-cos:.3f` under FIFO, {glue:text}`au-adaptive-cos:.3f` under the
# self-adaptive rule and {glue:text}`au-min-cos:.3f` under `adaptive-min`; from the most diverse
# memory to the least: {glue:text}`au-ranking`. {glue:text}`au-verdict` The mean pairwise
# similarity of $n$ items is $(\sum_i s_i - n) / (n(n - 1))$, and removing item $k$ takes
# $2 s_k - 1$ off the sum, so removing the largest $s_k$ lowers it the most at each removal;
# removing the smallest keeps the most typical items and drops the outliers.
#
# ## The memories during fine-tuning
#
# The stream above feeds one memory with real latents only. During fine-tuning each class has two
# memories, $M_{real}$ fed with real latents and $M_{gen}$ with the model's predictions, and the
# predictions change as the model learns. Each method below is fine-tuned with its own rule
# ({glue:text}`au-ft-steps` steps, seed {glue:text}`au-seed`); every
# {glue:text}`au-log-every` steps the run logs, per class and memory, the mean pairwise cosine
# similarity of the kept items and their Vendi score, the effective number of distinct items
# (`ddgd.method.memory_stats`).

# %% tags=["remove-output"]
ft_root = Path(output_dir) / f"finetune-{config_hash(cfg)}"  # another config gets another folder
ft_runs = {m: distill(with_seed(cfg, seed, m), ft_root, data, progress=False) for m in finetune_methods}  # reused when done
logs = {f"{m} ({with_seed(cfg, seed, m).finetune.rule})": memory_history(r) for m, r in ft_runs.items()}
fig = diversity_figure(logs, title="memories during fine-tuning (mean over classes; shaded: range over classes)")
save_figure(fig, output_dir, "memory-diversity-finetuning", formats=("png",))
glue("au-ft-diversity", fig, display=False)
plt.close(fig)
late = late_means(logs)
late.round(3)

# %% tags=["remove-cell"]
labels = {m: f"{m} ({with_seed(cfg, seed, m).finetune.rule})" for m in finetune_methods}
compared = {"minimax", "ddgd"} <= set(labels) and {labels["minimax"], labels["ddgd"]} <= set(late.index)
glue_values("au", {"seed": seed, "ft-steps": cfg.finetune.max_steps, "log-every": cfg.finetune.memory_log_every,
                   "ft-late": late.round(3),
                   "ft-gen": describe_rules(late, labels["ddgd"], labels["minimax"], "gen", logs) if compared else "",
                   "ft-real": describe_rules(late, labels["ddgd"], labels["minimax"], "real", logs) if compared else ""})

# %% [markdown]
# ```{glue:figure} au-ft-diversity
# :name: fig-adaptive-update-finetuning
# Mean pairwise cosine similarity and Vendi score of $M_{real}$ (solid) and $M_{gen}$ (dashed)
# during fine-tuning, one colour per method (its rule in brackets), averaged over the classes with
# their range shaded.
# ```
#
# ```{glue:} au-ft-late
# ```
#
# *Table.* Each measure averaged over the classes and the second half of the logged steps.
#
# {glue:text}`au-ft-gen` {glue:text}`au-ft-real` These are the memories the two memory terms
# compare the predictions with ({eq}`eq-real`, {eq}`eq-gen`); whether a more diverse memory gives
# a better distilled set is what the tables measure.
#
# ## The cost of the rule
#
# Written as in {eq}`eq-adaptive`, the rule rebuilds $S$ after every removal: with $n$ new items
# arriving at a full memory, $n$ matrix products. `ddgd.method.memory.adaptive` builds $S$ once and, after
# removing item $k$, subtracts column $k$ from every $s_i$. Both are timed below on random
# latents, for a full memory of {glue:text}`au-t-capacity` items of {glue:text}`au-t-dim` numbers
# ({glue:text}`au-shape-note`).

# %% tags=["remove-output"]
gen = torch.Generator().manual_seed(seed)
sizes = sorted(set(timing_new) | {cfg.finetune.batch_size})  # a whole batch of one class: the most a step brings
timing = timing_table(sizes, timing_capacity, timing_dim, timing_repeats, gen)
write_csv(timing, f"{output_dir}/timing.csv", cfg)
at_batch = timing.set_index("new items").loc[cfg.finetune.batch_size]
timing

# %% tags=["remove-cell"]
glue_values("au", {"t-capacity": timing_capacity, "t-dim": timing_dim,
                   "shape-note": describe_shape(timing_capacity, timing_dim, paper_shape()),
                   "timing": timing.set_index("new items").round(3), "batch": cfg.finetune.batch_size,
                   "speedup": float(at_batch["speed-up"]), "batch-ms": float(at_batch["incremental (ms)"]),
                   "speedup-max": float(timing["speed-up"].iloc[-1]), "new-max": int(timing["new items"].iloc[-1]),
                   "speed-sentence": describe_speed(float(at_batch["speed-up"])),
                   "same": describe_same(timing["same items kept"])})

# %% [markdown]
# ```{glue:} au-timing
# ```
#
# *Table.* Time to bring a full memory back to its size after `new items` arrive: rebuilding $S$
# after every removal (naive) against the package's incremental update (best of the timed calls,
# on the machine that built this page).
#
# When a whole batch of {glue:text}`au-batch` items of one class arrives (the most a step can
# bring), the rebuild takes {glue:text}`au-speedup:.1f` times as long as the incremental update,
# and {glue:text}`au-speedup-max:.1f` times as long with {glue:text}`au-new-max` new items; the two
# {glue:text}`au-same` keep the same items. With a single new item both compute $S$ once.
# {glue:text}`au-speed-sentence` The incremental update of a batch takes
# {glue:text}`au-batch-ms:.2f` ms here, once per class and memory in a step. The
# {doc}`full run <full_run>` page puts all the pieces together.
