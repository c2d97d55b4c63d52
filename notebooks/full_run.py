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
# # Walk-through: a full run
#
# The previous pages took the method apart; this one runs it end to end for one method and one
# seed, with the same functions the tables use (`ddgd.experiments.pipeline`): fine-tune the pretrained model
# on the real latents (distill), sample a pool of images per class from its EMA weights, keep the
# first IPC of each class as the distilled set, and train a network from scratch on it alone,
# tested on the real test images. The `method` parameter runs any of the baselines through the same
# code: `dit` (the pretrained model, no fine-tuning), `finetune` (diffusion loss only), `minimax`
# (FIFO memories), `ddgd` (self-adaptive memories) or `random` (real images).

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
method = "ddgd"  # dit, finetune, minimax, ddgd or random
seed = 0  # seed of fine-tuning, sampling and evaluation
ipc = 10  # images per class of the distilled set
network = "convnet-3"  # the evaluation network (ddgd.protocol.networks.NETWORKS)
train_per_class = 200  # real training images per class for fine-tuning (None: all of them)
smoothing = 20  # moving-average window of the loss curves, in steps
imagenet_root = None  # data root of the ImageNet subset presets (train/ and val/ wnid folders)
overrides = {}  # further config values, e.g. {"finetune.max_steps": 500}
output_dir = "runs/reproduce/full-run"

# %% tags=["remove-output"]
import time
from pathlib import Path

import matplotlib.pyplot as plt
from myst_nb import glue

from ddgd.config import config_hash
from ddgd.experiments.pipeline import evaluate_set, load_data
from ddgd.experiments.runs import with_seed
from ddgd.pages.figures import glue_values, image_grid, save_figure
from ddgd.pages.memory_diversity import diversity_figure, late_means, memory_history
from ddgd.pages.walkthrough import FINE_TUNED, distilled_set, loss_history, loss_windows, walkthrough_config

cfg = walkthrough_config(preset, train_per_class, imagenet_root,
                         {"sample.pool": ipc, "eval.ipcs": [ipc], "eval.networks": [network], **overrides})
cfg = with_seed(cfg, seed, method if method != "random" else None)
data = load_data(cfg)
root = Path(output_dir) / f"run-{config_hash(cfg)}"  # another config gets another folder
start = time.perf_counter()
x, y, run = distilled_set(cfg, data, method, root, ipc)
distil_s = time.perf_counter() - start

# %% tags=["remove-cell"]
glue_values("fr", {"preset": cfg.name, "method": method, "seed": seed, "ipc": ipc, "network": network,
                   "steps": cfg.finetune.max_steps, "per-class": cfg.data.train_per_class or "all",
                   "n-distilled": len(x), "distil-s": distil_s})

# %% [markdown]
# ## Distil and sample
#
# The run uses the preset {glue:text}`fr-preset` with the method {glue:text}`fr-method` and seed
# {glue:text}`fr-seed`. Fine-tuning (at most {glue:text}`fr-steps` steps, on the real latents of
# {glue:text}`fr-per-class` training images per class), sampling and the selection of the first
# {glue:text}`fr-ipc` images per class took {glue:text}`fr-distil-s:.1f` s on the machine that
# built this page ({glue:text}`fr-n-distilled` distilled images; a rerun with the same parameters
# reuses the finished run). The loss terms of every fine-tuning step are in the run's checkpoint.

# %% tags=["remove-output"]
history = loss_history(run).set_index("step") if method in FINE_TUNED else None  # no fine-tuning: no losses
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
if history is not None:
    smooth = history.rolling(smoothing, min_periods=1).mean()
    smooth[["l_diff", "l_vb"]].plot(ax=axes[0])
    smooth[["l_real", "l_gen"]].plot(ax=axes[1])
else:
    for ax in axes:
        ax.text(0.5, 0.5, f"method {method}: no fine-tuning", ha="center", va="center", transform=ax.transAxes)
axes[0].set(title="diffusion loss and variational bound", xlabel="fine-tuning step", ylabel="loss (smoothed)")
axes[1].set(title="memory terms", xlabel="fine-tuning step", ylabel="$\\mathcal{L}_{real}$, $\\mathcal{L}_{gen}$")
fig.tight_layout()
save_figure(fig, output_dir, "losses", formats=("png",))
glue("fr-losses", fig, display=False)
plt.close(fig)

fig = image_grid([x[y == c] for c in range(len(data.names))], data.names,
                 title=f"distilled set: {method}, IPC {ipc}, seed {seed}")
save_figure(fig, output_dir, "samples", formats=("png",))
glue("fr-samples", fig, display=False)

# %% tags=["remove-cell"]
glue_values("fr", {"smoothing": smoothing, **loss_windows(history, smoothing)})  # means over the first, last window

# %% [markdown]
# ```{glue:figure} fr-losses
# :name: fig-full-run-losses
# The loss terms of {eq}`eq-total` over fine-tuning, as a moving average over
# {glue:text}`fr-smoothing` steps. Left: the diffusion loss {eq}`eq-diffusion` and the
# variational-bound term of the variance head. Right: $\mathcal{L}_{\text{real}}$
# {eq}`eq-real` and $\mathcal{L}_{\text{gen}}$ {eq}`eq-gen` (zero for methods without memories).
# ```
#
# The diffusion loss averages {glue:text}`fr-l-diff-first:.3f` over the first
# {glue:text}`fr-smoothing` steps and {glue:text}`fr-l-diff-last:.3f` over the last ones (the loss
# of a single step varies with its random timesteps, hence the smoothing). Over the last steps,
# $\mathcal{L}_{\text{real}}$ averages {glue:text}`fr-l-real-last:.3f` and
# $\mathcal{L}_{\text{gen}}$ {glue:text}`fr-l-gen-last:.3f`.
# The memory terms start at zero (empty memories, see {doc}`memory_initialisation`) and grow while
# the memories fill, since a minimum over more pairs can only fall and a maximum only rise; each is
# set by one pair per class and batch, hence the noise.
#
# ```{glue:figure} fr-samples
# :name: fig-full-run-samples
# The distilled set: the first IPC images of each class (one row per class).
# ```
#
# ## The memories during fine-tuning
#
# Every {glue:text}`fr-log-every` steps the run logs, per class, how diverse its two memories are
# (`ddgd.method.memory_stats`): the mean pairwise cosine similarity of the items
# ({eq}`eq-similarity` off the diagonal; lower is more diverse) and their Vendi score (the
# effective number of distinct items, at most the memory's size).

# %% tags=["remove-output"]
log = memory_history(run) if method in ("minimax", "ddgd") else None  # only these runs keep memories
if log is not None and not log.empty:
    fig = diversity_figure({method: log}, title=f"memories of {method} (mean over classes; shaded: range)")
    late = late_means({method: log}).loc[method]
    facts = {f"{m}-{k}": float(late[(m, k)]) for m in ("real", "gen") for k in ("mean_cos", "vendi")}
else:
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.text(0.5, 0.5, f"method {method}: no memories", ha="center", va="center", transform=ax.transAxes)
    ax.axis("off")
    facts = dict.fromkeys(("real-mean_cos", "real-vendi", "gen-mean_cos", "gen-vendi"), float("nan"))
save_figure(fig, output_dir, "memory-diversity", formats=("png",))
glue("fr-memory-diversity", fig, display=False)
plt.close(fig)

# %% tags=["remove-cell"]
glue_values("fr", {"log-every": cfg.finetune.memory_log_every, "capacity": cfg.finetune.n_real, **facts})

# %% [markdown]
# ```{glue:figure} fr-memory-diversity
# :name: fig-full-run-memory-diversity
# The memories over fine-tuning: mean pairwise cosine similarity and Vendi score of $M_{real}$
# (solid) and $M_{gen}$ (dashed), averaged over the classes, with the range over the classes
# shaded. The run's log is `memory_log.csv` in its folder.
# ```
#
# Over the second half of the logged steps, $M_{real}$ averages a pairwise similarity of
# {glue:text}`fr-real-mean_cos:.3f` and a Vendi score of {glue:text}`fr-real-vendi:.1f`, and
# $M_{gen}$ {glue:text}`fr-gen-mean_cos:.3f` and {glue:text}`fr-gen-vendi:.1f`, for memories of
# {glue:text}`fr-capacity` items. The page {doc}`adaptive_update` sets the two rules side by side.
#
# ## Evaluate
#
# The distilled images are the only training data of a freshly initialised network, trained with
# the hard-label protocol of the preset (see {doc}`the method <../book/method>`) and tested on the
# real test images.

# %% tags=["remove-output"]
csv = Path(output_dir) / "full-run.csv"
start = time.perf_counter()
row = evaluate_set(cfg, x, y, data, method, ipc, network, seed, csv, progress=False)
eval_s = time.perf_counter() - start
row

# %% tags=["remove-cell"]
glue_values("fr", {"eval-s": eval_s, "best": float(row["best"]), "final": float(row["final"]),
                   "epochs": int(row["epochs"]), "n-test": len(data.test_y), "chance": 100 / len(data.names),
                   "csv": csv.name})

# %% [markdown]
# Trained for {glue:text}`fr-epochs` epochs on the {glue:text}`fr-n-distilled` distilled images,
# the {glue:text}`fr-network` reaches a top-1 accuracy of {glue:text}`fr-best:.1f` % at its best
# evaluation and {glue:text}`fr-final:.1f` % at the end, on {glue:text}`fr-n-test` real test
# images (chance: {glue:text}`fr-chance:.0f` %); the evaluation took {glue:text}`fr-eval-s:.0f` s.
# These numbers come from one seed of one method at the scale of the preset; the row, with its
# provenance (config hash, versions, commit, hardware), is appended to {glue:text}`fr-csv` in the
# output folder. The paper's claims rest on several seeds and on the
# comparison of methods: the tables of the next part run exactly this pipeline for every method
# and seed.
