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
# # Walk-through: the minimax losses
#
# The two memory terms of DDGD, representativeness {eq}`eq-real` and diversity {eq}`eq-gen`,
# compare the predicted clean latents $\hat z_0$ {eq}`eq-x0` of a batch with the memories of their
# classes. This page computes both on one real batch, with the pretrained model of the preset,
# shows the cosine matrices they come from, how the weights of {eq}`eq-total` scale them against
# the diffusion loss, what their gradients do, and what the `accumulate` switch changes.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
rule = "adaptive"  # memory update rule while the memories fill: fifo, adaptive or adaptive-min
train_per_class = 200  # the first N real training images of each class (None: all of them)
warmup_steps = 100  # batches streamed through the frozen model to fill the memories first
nudge = 0.05  # step along the negative gradient, as a fraction of the prediction's norm
multiplicity_steps = 1000  # batches over which the mean weight of "cumulative" is measured
seed = 0
imagenet_root = None  # data root of the ImageNet subset presets (train/ and val/ wnid folders)
overrides = {}  # further config values, e.g. {"finetune.batch_size": 16}
output_dir = "runs/reproduce/minimax-losses"

# %% tags=["remove-output"]
import matplotlib.pyplot as plt
import torch
from myst_nb import glue

from ddgd.experiments.pipeline import load_data
from ddgd.method.diffusion import Schedule, predicted_x0
from ddgd.method.losses import diffusion_loss, minimax_terms
from ddgd.method.models import load_transformer
from ddgd.pages.figures import glue_values, save_figure, write_csv
from ddgd.pages.minimax_losses import (accumulate_ratios, class_blocks, describe_gradient_reach,
                                       describe_gradient_share, gradient_effects, gradient_facts, gradient_shares,
                                       mean_multiplicity, multiplicity_table, pair_means, present_memories,
                                       term_pairs, warm_up, weighted_terms)
from ddgd.pages.walkthrough import encode_subset, label_stream, walkthrough_config

cfg = walkthrough_config(preset, train_per_class, imagenet_root, {"finetune.memory_rule": rule, **overrides})
ft = cfg.finetune
data = load_data(cfg)
cache = encode_subset(cfg, data)
model = load_transformer(cfg.model.dit, numerics=cfg.model.dit_numerics).eval()
schedule = Schedule.linear(cfg.model.num_timesteps, cfg.model.beta_start, cfg.model.beta_end)
dit_labels = torch.as_tensor(data.dit_labels)
g = torch.Generator().manual_seed(seed)
# the memories fill as in fine-tuning, from a frozen model; then the batch examined below
memories, batch = warm_up(model, cache, dit_labels, schedule, ft, rule, warmup_steps, seed, g)
present = present_memories(memories, batch.y)

# %% tags=["remove-cell"]
glue_values("ml", {"preset": cfg.name, "batch": ft.batch_size, "warmup": warmup_steps, "rule": rule,
                   "n-real": ft.n_real, "n-gen": ft.n_gen, "k": len(set(batch.y.tolist())), "present": len(present)})

# %% [markdown]
# ## One batch against the memories
#
# With the pretrained model of the preset {glue:text}`ml-preset` held fixed, the first
# {glue:text}`ml-warmup` batches of {glue:text}`ml-batch` real latents are noised, denoised and
# stored exactly as in fine-tuning (real latents into $\mathcal{M}_R^c$, predictions into
# $\mathcal{M}_G^c$, sizes $N_R$ = {glue:text}`ml-n-real` and $N_G$ = {glue:text}`ml-n-gen`, rule
# {glue:text}`ml-rule`), so that the memories look as they do during a run. The next batch is the
# one examined: it holds {glue:text}`ml-k` distinct classes, {glue:text}`ml-present` of which have
# memories. For each class $c$ the predictions $\hat Z^c$ of its batch items are compared with every
# item of its two memories by cosine similarity {eq}`eq-similarity`.

# %% tags=["remove-output"]
pairs = term_pairs(batch.zhat, batch.y, present)
pairs.insert(1, "class", [data.names[c] for c in pairs.label])
write_csv(pairs, f"{output_dir}/terms.csv", cfg)
fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * ft.batch_size + 2), squeeze=False)
for ax, which, name in ((axes[0][0], "real", "$\\sigma(\\hat z_0, \\mathcal{M}_R^c)$: min sets $r_c$"),
                        (axes[0][1], "gen", "$\\sigma(\\hat z_0, \\mathcal{M}_G^c)$: max sets $g_c$")):
    matrix, order, marks = class_blocks(batch.zhat, batch.y, present, which)
    im = ax.imshow(matrix, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    for row, col in marks.values():
        ax.scatter(col, row, marker="s", s=60, facecolors="none", edgecolors="black", linewidths=1.5)
    ax.set_yticks(range(len(order)), [f"item {int(i)} ({data.names[int(batch.y[i])]})" for i in order], fontsize=8)
    ax.set(title=name, xlabel="memory item of the row's class")
    fig.colorbar(im, ax=ax, label="cosine similarity")
fig.tight_layout()
save_figure(fig, output_dir, "cosine-blocks", formats=("png",))
glue("ml-blocks", fig, display=False)
plt.close(fig)
pairs

# %% tags=["remove-cell"]
glue_values("ml", {"pairs": pairs.drop(columns="label").set_index("class").round(4), **pair_means(pairs)})

# %% [markdown]
# ```{glue:figure} ml-blocks
# :name: fig-minimax-losses-blocks
# The cosine matrices behind the two terms for the examined batch: one row per batch item
# (grouped by class), one column per item of that class's memory (blank where the memory is
# shorter, or where the class has no memory yet). Squares mark the pair that sets each class's
# term: the smallest similarity to the real memory, the largest to the generated memory.
# ```
#
# ```{glue:} ml-pairs
# ```
#
# *Table.* Per class of the batch: $r_c = 1 - \min \sigma$ and $g_c = \max \sigma$, with the batch
# item and memory item that set them.
#
# Each class contributes one number per term, set by a single pair of the whole class block. The
# mean of $r_c$ over the classes with memories is {glue:text}`ml-l-real:.4f` and the mean of $g_c$
# is {glue:text}`ml-l-gen:.4f`; divided by $K$ (the classes in the batch, those without memories
# included), they give $\mathcal{L}_{\text{real}}$ and $\mathcal{L}_{\text{gen}}$.
#
# ## The weights of the total loss
#
# The gradients of all three terms reach the model through its noise prediction
# $\epsilon_\theta$; by {eq}`eq-x0`, $\partial \hat z_0 / \partial \epsilon_\theta =
# -\sqrt{1 - \bar\alpha_t} / \sqrt{\bar\alpha_t}$. The table compares the terms and the size of their
# gradients with respect to $\epsilon_\theta$ for this batch, before and after the weights
# $\lambda_r$ and $\lambda_g$ of {eq}`eq-total`.

# %% tags=["remove-output"]
eps_pred = batch.eps_pred.clone().requires_grad_(True)
zhat = predicted_x0(batch.z_t, eps_pred, schedule.alphas_cumprod, batch.t)  # [B, c, h, w], differentiable
terms = minimax_terms(zhat, batch.y, present, "once")
weights = {"L_diffusion": 1.0, "L_real": ft.lambda_r, "L_gen": ft.lambda_g}
losses = {"L_diffusion": diffusion_loss(eps_pred, batch.eps), "L_real": terms.l_real, "L_gen": terms.l_gen}
total = weighted_terms(eps_pred, losses, weights)
write_csv(total, f"{output_dir}/total-loss.csv", cfg)
shares = gradient_shares(total)
total

# %% tags=["remove-cell"]
glue_values("ml", {"total": total.set_index("term").round(5), "lambda-r": ft.lambda_r, "lambda-g": ft.lambda_g,
                   "share-real": shares["share-real"], "share-gen": shares["share-gen"],
                   "share-sentence": describe_gradient_share(shares["largest"])})

# %% [markdown]
# ```{glue:} ml-total
# ```
#
# *Table.* The three terms of {eq}`eq-total` on the examined batch, their weights, and the norm of
# their gradients with respect to the predicted noise $\epsilon_\theta$, unweighted and weighted.
# ($\mathcal{L}_{\text{vb}}$ is left out: it sees $\epsilon_\theta$ detached.)
#
# With $\lambda_r$ = {glue:text}`ml-lambda-r` and $\lambda_g$ = {glue:text}`ml-lambda-g`, the
# weighted gradient of $\mathcal{L}_{\text{real}}$ is {glue:text}`ml-share-real:.2e` times that
# of the diffusion loss, and that of $\mathcal{L}_{\text{gen}}$ {glue:text}`ml-share-gen:.2e`
# times. {glue:text}`ml-share-sentence`; and their gradient is concentrated on a few batch items,
# as the next section shows.
#
# ## What the gradients do
#
# A minimum or a maximum passes its gradient to one element only. So $\mathcal{L}_{\text{real}}$
# moves, in each class, only the prediction of the worst-matched pair, and moves it *towards* the
# real memory item it matches worst; $\mathcal{L}_{\text{gen}}$ moves only the prediction of the
# most similar pair, *away* from that generated item. For a cosine the gradient is the part of the
# memory item orthogonal to the prediction, so the negative gradient has cosine
# $+\sqrt{1 - \sigma^2}$ with the real item (a pure pull) and $-\sqrt{1 - \sigma^2}$ with the
# generated one (a pure push). The table checks this on the batch: `items_with_grad` counts the
# batch items of the class that receive any gradient, `alignment` is the cosine between the
# negative gradient and the memory item, and `after` is the similarity once the prediction is
# moved along the negative gradient by {glue:text}`ml-nudge` of its norm.

# %% tags=["remove-output"]
effects = gradient_effects(zhat, terms, batch.y, present, nudge)
effects.insert(1, "class", [data.names[c] for c in effects.label])
write_csv(effects, f"{output_dir}/gradients.csv", cfg)
effects

# %% tags=["remove-cell"]
glue_values("ml", {"nudge": nudge, "effects": effects.drop(columns="label").set_index(["class", "term"]).round(4),
                   "one-item": describe_gradient_reach(effects), **gradient_facts(effects)})

# %% [markdown]
# ```{glue:} ml-effects
# ```
#
# *Table.* Per class and term: the batch item and memory item of the extreme pair, their
# similarity before and after a small step along the negative gradient, the alignment of that
# gradient with the memory item (`pure`: the value $\pm\sqrt{1 - \sigma^2}$ of a pure pull or
# push), its norm, and how many batch items of the class receive a gradient.
#
# In every class, {glue:text}`ml-one-item` per term receives a gradient. The step raises the
# similarity of the worst real pair in {glue:text}`ml-pull` of {glue:text}`ml-n-terms` classes and
# lowers that of the most similar generated pair in {glue:text}`ml-push` of
# {glue:text}`ml-n-terms`; the alignment equals $\pm\sqrt{1 - \sigma^2}$ up to
# {glue:text}`ml-align-err:.1e`. Representativeness pulls the outlier back towards the data,
# diversity pushes the most redundant prediction away from what the model made before.
#
# ## The `accumulate` switch
#
# The authors' released code adds the running sums of the class terms to the loss inside its loop
# over classes, so with $K$ classes in a batch (ascending labels) the $j$-th class counts
# $K - j + 1$ times; the paper and Minimax count each class once. `finetune.accumulate` selects
# `once` (the default) or `cumulative`. For the examined batch:

# %% tags=["remove-output"]
cumulative = minimax_terms(zhat.detach(), batch.y, present, "cumulative")
multiplicity = multiplicity_table(terms, cumulative, present, data.names)
write_csv(multiplicity, f"{output_dir}/multiplicity.csv", cfg)
stream = label_stream(cache.labels, ft.batch_size, multiplicity_steps, seed)
multiplicity

# %% tags=["remove-cell"]
glue_values("ml", {"multiplicity": multiplicity.set_index("class"), **accumulate_ratios(terms, cumulative),
                   "mean-mult": mean_multiplicity(stream), "mult-steps": multiplicity_steps})

# %% [markdown]
# ```{glue:} ml-multiplicity
# ```
#
# *Table.* How many times each class of the examined batch is counted under `once` and
# `cumulative`.
#
# On this batch, `cumulative` multiplies $\mathcal{L}_{\text{real}}$ by
# {glue:text}`ml-ratio-real:.2f` and $\mathcal{L}_{\text{gen}}$ by {glue:text}`ml-ratio-gen:.2f`.
# Over {glue:text}`ml-mult-steps` batches of the same size, a class term is counted
# {glue:text}`ml-mean-mult:.2f` times on average ($(K + 1)/2$ for $K$ classes), so the released
# code's effective $\lambda_r$ and $\lambda_g$ are that much larger than the nominal ones, and
# they favour classes with small labels. The {doc}`adaptive update <adaptive_update>` page turns
# to the other half of the method: which items the memories keep.
