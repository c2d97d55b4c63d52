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
# # Figure 4: sensitivity to $\lambda_r$, $\lambda_g$, $N_R$ and $N_G$
#
# The paper's Figure 4 varies one hyperparameter of DDGD at a time around the setting of its main
# experiments: the weight $\lambda_r$ of the real-memory term {eq}`eq-real`, the weight
# $\lambda_g$ of the generated-memory term {eq}`eq-gen` (both in the total loss {eq}`eq-total`),
# and the sizes $N_R$ and $N_G$ of the two memories. It trains ResNetAP-10 on ImageWoof distilled
# at several IPC, runs every setting three times, and draws the mean accuracy as a line with a
# band from the lowest to the highest run; dashed lines mark the setting of the main experiments.
#
# Here each point of each sweep is a full DDGD run (fine-tuning, sampling, evaluation) through
# `ddgd.experiments.variants.run_sweep`, once per seed, with the other parameters at the preset's values. The
# point at the preset's own values is shared by the four sweeps and runs once. Results are read
# from the result file when it holds them, and computed otherwise (`compute`); every run adds
# one row, labelled with its point in the `variant` column.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
overrides = {"eval.seeds": [0, 1, 2]}  # config overrides; three seeds per point, as in the paper
sweeps = {  # values of each swept parameter (the preset's value included: it is the shared point)
    "finetune.lambda_r": [0.0005, 0.002, 0.008, 0.032],
    "finetune.lambda_g": [0.002, 0.008, 0.032, 0.128],
    "finetune.n_real": [16, 32, 64, 128],
    "finetune.n_gen": [16, 32, 64, 128],
}
results_csv = "data/results/figure4-cpu.csv"  # relative to the repository; None: <output_dir>/figure4.csv
compute = True  # run the points this CSV lacks (none when it is complete; all 39 runs take hours on 2 CPU cores)
threads = None  # torch CPU threads; None: torch's default (on a busy shared machine, 1 is much faster)
output_dir = "runs/reproduce/figure4"  # fine-tuning runs, sample pools and figure4.png

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from myst_nb import glue

from ddgd.config import project_path, resolve, shown_path
from ddgd.experiments import report
from ddgd.experiments import variants as sweep
from ddgd.pages import figure4
from ddgd.pages.figures import glue_values, run_facts, save_figure

if threads:
    torch.set_num_threads(threads)
config = resolve(preset, overrides)
csv = project_path(results_csv) if results_csv else Path(output_dir) / "figure4.csv"
points = sweep.sweep_points(config, sweeps)
todo = sweep.pending(config, sweeps, csv)
print(f"{len(points)} points x {len(config.eval.seeds)} seed(s); {len(todo)} point(s) lack results in {shown_path(csv)}")
if compute and todo:
    sweep.run_sweep(config, sweeps, Path(output_dir) / "runs", csv, progress=False)
runs = sweep.sweep_runs(report.load_results(csv, missing_ok=True), config, sweeps)
frame = sweep.sweep_frame(runs)
marks = sweep.defaults(config)

# %% [markdown]
# ## The sweeps

# %%
fig = figure4.plot_sweeps(frame, marks, params=list(sweeps))
save_figure(fig, output_dir, stem="figure4", formats=("png",))
plt.close(fig)

# %% tags=["remove-cell"]
glue_values("fig4", {"figure": fig, "dataset": config.data.dataset, "networks": ", ".join(config.eval.networks),
                     "ipcs": ", ".join(str(i) for i in config.eval.ipcs), "points": len(points),
                     **run_facts(runs, preset, str(results_csv or "<output_dir>/figure4.csv")),
                     "seeds": len(config.eval.seeds)})  # the seeds of the configuration, not those found

# %% [markdown]
# ```{glue:figure} fig4-figure
# :name: fig-figure4
#
# Best top-1 test accuracy of a network trained on the DDGD-distilled set, as one hyperparameter
# varies and the others keep the preset's values. Lines: mean over seeds; bands: from the lowest to
# the highest run; dashed lines: the setting of the main experiments. The x-axes are logarithmic.
# ```
#
# Dataset {glue:text}`fig4-dataset` (preset {glue:text}`fig4-preset`), network(s)
# {glue:text}`fig4-networks`, IPC {glue:text}`fig4-ipcs`: {glue:text}`fig4-points` distinct points
# with {glue:text}`fig4-seeds` seed(s) each, {glue:text}`fig4-runs` result rows in all (a row of the
# shared point counts once), read from the result file {glue:text}`fig4-csv`. Their provenance:
# {glue:text}`fig4-provenance`.

# %% [markdown]
# ## What the sweeps say
#
# For each parameter: the value with the best mean, the accuracy at the setting of the main
# experiments, and how far apart the means of the values are compared with the spread between seeds
# at one value. A parameter whose means span less than that spread has no effect that these runs can
# tell apart from seed noise.

# %%
glue("fig4-verdict", Markdown(figure4.describe_sweeps(frame, marks)), display=False)
summary = sweep.sweep_summary(frame).round({"mean": 2, "min": 2, "max": 2})
glue("fig4-table", summary, display=False)

# %% [markdown]
# ```{glue:md} fig4-verdict
# :format: myst
# ```
#
# The numbers behind the figure (mean, lowest and highest best accuracy in %, number of runs):
#
# ```{glue:} fig4-table
# ```

# %% [markdown]
# ## Reading the CPU default
#
# A class receives on average (batch size) / (number of classes) new latents per fine-tuning step,
# so a memory of size $N$ fills after about $N \times$ (classes) / (batch size) steps, and no update
# rule removes anything before that: until a memory is full, FIFO and the self-adaptive rule keep
# the same items. On a short CPU budget the largest sizes of the sweep fill late or never, which
# limits what the $N_R$ and $N_G$ panels can show there.

# %%
from ddgd.protocol.data import class_names, data_classes

sizes = sorted(set(sweeps.get("finetune.n_real", [])) | set(sweeps.get("finetune.n_gen", [])))
per_step = config.finetune.batch_size / len(class_names(data_classes(config.data)))  # new latents per class and step
glue("fig4-steps", config.finetune.max_steps, display=False)
glue("fig4-fill", ", ".join(f"N = {n}: about {round(n / per_step)} steps" for n in sizes) or "no memory sweep",
     display=False)
glue("fig4-paper-steps", resolve("imagewoof").finetune.max_steps, display=False)

# %% [markdown]
# Fine-tuning steps per run here: at most {glue:text}`fig4-steps`. Steps until a memory of each
# swept size fills: {glue:text}`fig4-fill`. For comparison, the paper-scale preset (`imagewoof`)
# allows up to {glue:text}`fig4-paper-steps` steps.
