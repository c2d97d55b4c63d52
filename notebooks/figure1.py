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
# # Figure 1: the gradient field and the paths of distillation, in 2-D
#
# The paper's Figure 1 is a sketch: on a 2-D distribution (blue), the paths that sampling takes
# from random noise (black dots) to distilled points (red dots), with arrows along the gradient,
# and the claim that the memory terms make the distilled points "cover more areas". Here the
# sketch is a real experiment, small enough to run on a CPU in a minute or two:
#
# 1. the real distribution is a mixture of Gaussians whose modes sit on a ring **around the
#    origin**. The memory terms compare predicted points by *cosine* similarity, which for 2-D
#    points measures only their angle; on a ring around the origin, diversity of angle is
#    diversity of modes, so the terms can act on what we measure;
# 2. a small MLP noise predictor (sinusoidal time embedding, DDPM linear schedule) is
#    **pretrained on a biased version** of the data (all mass on the first few modes), standing in
#    for the ImageNet-pretrained DiT;
# 3. it is **fine-tuned on the real data** three ways, with the package's own loss and memory
#    code: the diffusion loss only (*fine-tune*), plus the memory terms with FIFO memories
#    (*Minimax*), plus the memory terms with the self-adaptive memories (*DDGD*);
# 4. each model draws the same IPC points with ancestral DDPM **from the same fixed noise**, and
#    we measure coverage: the number of modes hit (a distilled point within `hit_radius` of the
#    mode's centre) and the mean distance from real points to their nearest distilled point.
#
# All points form one class, so each memory term is one scalar per step. The paper's weights
# ($\lambda_r = 0.002$, $\lambda_g = 0.008$) leave a 2-D model unchanged; the weights used here are
# parameters, given below.

# %% tags=["parameters"]
seeds = [0, 1, 2]  # one pretraining, three fine-tunings and one sampling per seed
methods = ["pretrained", "finetune", "minimax", "ddgd"]  # "pretrained" = no fine-tuning
n_modes = 8  # modes on the ring
radius = 2.0  # radius of the ring of mode centres (around the origin)
mode_std = 0.15  # standard deviation of each mode
pretrain_weights = [0.6, 0.3, 0.1]  # mass of the first modes in the biased pretraining data
num_timesteps = 100  # T of the linear schedule
hidden = 128  # width of the MLP
n_train = 2000  # training points (biased set and real set)
pretrain_steps = 1500
finetune_steps = 300
batch_size = 32
lr = 1e-3
lambda_r = 0.1  # weight of the representativeness term L_real
lambda_g = 0.4  # weight of the diversity term L_gen
n_real = 16  # N_R: size of the real memory
n_gen = 16  # N_G: size of the generated memory
ipc = 16  # distilled points per run
hit_radius = 0.5  # a mode is hit when a distilled point lies this close to its centre
n_eval = 2000  # real points for the nearest-distilled-point distance
field_t = 10  # timestep of the drawn gradient field (late in sampling)
output_dir = "runs/reproduce/figure1"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from myst_nb import glue

from ddgd.toy import ToyParams, run_figure1, summarise, verdict, write_csv

params = ToyParams.from_mapping({name: globals()[name] for name in ToyParams.__dataclass_fields__})
out = run_figure1(params)
results = out["results"]
summary = summarise(results)
summary

# %%
Path(output_dir).mkdir(parents=True, exist_ok=True)
write_csv(results, Path(output_dir) / "figure1.csv")
write_csv(summary, Path(output_dir) / "figure1-summary.csv")

# %%
names = {"pretrained": "Pretrained (biased)", "finetune": "Fine-tune (L_diff only)",
         "minimax": "Minimax (FIFO memories)", "ddgd": "DDGD (adaptive memories)"}
first = results[results.seed == seeds[0]].set_index("method")
fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.4), squeeze=False)
gx, gy, dens = out["density"]
for ax, method in zip(axes[0], methods):
    ax.contourf(gx, gy, dens, levels=8, cmap="Blues")
    X, Y, U, V = out["field"][method]
    norm = np.hypot(U, V) + 1e-12  # unit arrows: the direction of the denoising drift
    ax.quiver(X, Y, U / norm, V / norm, color="0.45", scale=30, width=0.004)
    path = out["paths"][method]  # [T + 1, ipc, 2]
    ax.plot(path[:, :, 0], path[:, :, 1], color="black", lw=0.7, alpha=0.8)
    ax.scatter(path[0, :, 0], path[0, :, 1], s=14, color="black", zorder=3)
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=22, color="red", edgecolor="white", lw=0.5, zorder=4)
    lim = gx.max()
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    row = first.loc[method]
    ax.set_title(f"{names[method]}\n{row.modes_hit}/{n_modes} modes, distance {row.nn_distance:.2f}", fontsize=10)
fig.tight_layout()
fig.savefig(Path(output_dir) / "figure1.png", dpi=150)
glue("fig1-figure", fig, display=False)

# %%
for _, row in summary.iterrows():
    glue(f"fig1-modes-{row.method}", row.modes_hit_mean, display=False)
    glue(f"fig1-modes-{row.method}-std", row.modes_hit_std, display=False)
    glue(f"fig1-dist-{row.method}", row.nn_distance_mean, display=False)
    glue(f"fig1-dist-{row.method}-std", row.nn_distance_std, display=False)
for name in ("n_modes", "ipc", "lambda_r", "lambda_g", "n_real", "n_gen", "finetune_steps", "hit_radius"):
    glue(f"fig1-{name.replace('_', '-')}", globals()[name], display=False)
glue("fig1-n-seeds", len(seeds), display=False)
glue("fig1-table", summary.round(3), display=False)
glue("fig1-verdict", verdict(summary), display=False)

# %% [markdown]
# ```{glue:figure} fig1-figure
# :name: fig-figure1
# The gradient field during distillation, as in the paper's Figure 1, on the first seed. Blue:
# the real distribution. Grey arrows: the direction of the learned denoising drift
# $-\epsilon_\theta(x, t) / \sqrt{1 - \bar\alpha_t}$ at a late timestep. Black lines: the sampling
# paths, from the black noise dots to the red distilled points (the same noise for every panel).
# Titles: modes hit and mean distance from real points to the nearest distilled point.
# ```
#
# Over {glue:text}`fig1-n-seeds` seeds, with {glue:text}`fig1-ipc` distilled points per run and
# {glue:text}`fig1-n-modes` modes, the distilled points hit on average
# {glue:text}`fig1-modes-finetune:.1f` ± {glue:text}`fig1-modes-finetune-std:.1f` modes after plain
# fine-tuning, {glue:text}`fig1-modes-minimax:.1f` ± {glue:text}`fig1-modes-minimax-std:.1f` with
# Minimax's FIFO memories and {glue:text}`fig1-modes-ddgd:.1f` ± {glue:text}`fig1-modes-ddgd-std:.1f`
# with DDGD's adaptive memories (the biased pretrained model: {glue:text}`fig1-modes-pretrained:.1f`).
# The mean distance from a real point to its nearest distilled point (lower is better) is
# {glue:text}`fig1-dist-finetune:.3f` ± {glue:text}`fig1-dist-finetune-std:.3f`,
# {glue:text}`fig1-dist-minimax:.3f` ± {glue:text}`fig1-dist-minimax-std:.3f` and
# {glue:text}`fig1-dist-ddgd:.3f` ± {glue:text}`fig1-dist-ddgd-std:.3f`.
#
# {glue:text}`fig1-verdict`
#
# ```{glue:figure} fig1-table
# :name: tab-figure1
# Coverage by method: mean and standard deviation over seeds.
# ```
