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
# # Table 2: two more subsets
#
# The paper's Table 2 repeats the comparison on two other ImageNet subsets, ImageNette (ten easy,
# distinct classes) and ImageIDC, with ResNetAP-10. In both, the pretrained DiT-XL/2 knows all
# 1000 ImageNet classes and is fine-tuned on the ten classes of one subset.
#
# The CPU analogue keeps that structure: the project's small latent diffusion model is pretrained
# on all ten Fashion-MNIST classes and fine-tuned on one five-class subset at a time,
# `fashion-tops` (T-shirts, pullovers, dresses, coats and shirts: easily confused, the ImageWoof
# of Fashion-MNIST) and `fashion-other` (trousers, sandals, sneakers, bags and ankle boots: easy to
# tell apart, its ImageNette). Each subset is one configuration: the preset with `data.dataset` set to it; both
# write their runs into one result file, and each reads back its own rows by their config hash.
#
# DDGD and Minimax use the paper's memory weights $\lambda_r$ and $\lambda_g$ ({eq}`eq-total`).

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
datasets = ["fashion-tops", "fashion-other"]  # one configuration per dataset (data.dataset)
overrides = {"eval.seeds": [0, 1, 2]}  # config overrides applied to every dataset
methods = ["random", "dit", "minimax", "ddgd"]
results_csv = "data/results/table2-cpu.csv"  # relative to the repository; None: <output_dir>/table2.csv
compute = True  # run the runs this CSV lacks (none when it is complete; all 24 take about an hour on 2 CPU cores)
references = ["imagenette", "imageidc"]  # datasets whose published numbers are shown beside ours
threads = None  # torch CPU threads; None: torch's default (on a busy shared machine, 1 is much faster)
output_dir = "runs/reproduce/table2"  # fine-tuning runs and sample pools, one folder per dataset

# %%
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown
from myst_nb import glue

from ddgd.base.provenance import provenance_line
from ddgd.experiments import comparisons, report
from ddgd.config import project_path, resolve, shown_path
from ddgd.experiments.pipeline import run_experiment

if threads:
    torch.set_num_threads(threads)
configs = {name: resolve(preset, {**overrides, "data.dataset": name}) for name in datasets}
csv = project_path(results_csv) if results_csv else Path(output_dir) / "table2.csv"
for name, config in configs.items():
    if compute:  # one run folder per dataset: a fine-tuning run folder holds one configuration
        run_experiment(config, tuple(methods), Path(output_dir) / "runs" / name, csv, progress=False)
found = report.load_results(csv, missing_ok=True)
runs = pd.concat([report.select_runs(found, config, methods) for config in configs.values()], ignore_index=True)
print(f"{len(runs)} result rows of these configurations in {shown_path(csv)}")

# %% [markdown]
# ## Our results
#
# Best top-1 accuracy (%) on the real test images of each subset, mean ± sample standard deviation
# over seeds ("(n=...)" marks cells with fewer than three runs).

# %% tags=["remove-output"]
others = [m for m in ("minimax", "dit", "random") if m in methods]
ours = report.table(runs, columns=("dataset", "network", "ipc"))
glue("t2-table", ours, display=False)
glue("t2-final-table", report.table(runs, metric="final", columns=("dataset", "network", "ipc")), display=False)
first = configs[datasets[0]]
net0, ipc0 = first.eval.networks[0], first.eval.ipcs[0]
for name in datasets:  # headline cells: the first network and IPC of each dataset
    for method in methods:
        glue(f"t2-{comparisons.slug(name)}-{method}-best", comparisons.cell_mean(runs[runs["dataset"] == name], method, net0,
                                                                        ipc0), display=False)
headlines = [f"- **{name}**: " + comparisons.headline(runs[runs["dataset"] == name], ["ddgd", *others], net0, ipc0)
             for name in datasets]
glue("t2-headline", Markdown("\n".join(headlines)), display=False)
glue("t2-network", net0, display=False)
glue("t2-ipc", ipc0, display=False)
glue("t2-preset", preset, display=False)
glue("t2-csv", str(results_csv or "<output_dir>/table2.csv"), display=False)
glue("t2-runs", len(runs), display=False)
glue("t2-seeds", runs["seed"].nunique() if len(runs) else 0, display=False)
glue("t2-provenance", provenance_line(runs), display=False)
ours  # shown in the executed notebook; the page shows the glued copy below

# %% [markdown]
# ```{glue:} t2-table
# ```
#
# Preset {glue:text}`t2-preset`: {glue:text}`t2-runs` runs from the result file
# {glue:text}`t2-csv`, with {glue:text}`t2-seeds` seed(s) in all; their provenance:
# {glue:text}`t2-provenance`. On the headline cell ({glue:text}`t2-network`, IPC
# {glue:text}`t2-ipc`), the best accuracies are:
#
# ```{glue:md} t2-headline
# :format: myst
# ```
#
# The final accuracy (after the last epoch):
#
# ```{glue:} t2-final-table
# ```

# %% [markdown]
# ## What the numbers say
#
# Per subset and cell, DDGD's mean against each baseline's; the **spread** is the larger of the two
# standard deviations over seeds, and a difference counts only when it exceeds it (a rough test,
# not a significance test).

# %%
comparison = comparisons.compare(runs, "ddgd", others)
glue("t2-verdict", Markdown(comparisons.describe_comparison(comparison)), display=False)
comparison.round(2)

# %% [markdown]
# ```{glue:md} t2-verdict
# :format: myst
# ```

# %% [markdown]
# ## Published numbers, for orientation
#
# The paper-scale baselines of this table as quoted by later papers (ResNetAP-10 on ImageNette
# and ImageIDC). They come from the sources named in each row, not from this code, and were
# measured on other data at another scale: they are shown in their own block, not beside the
# Fashion-MNIST rows above.

# %%
glue("t2-references", Markdown(report.references_markdown(references)), display=False)

# %% [markdown]
# ```{glue:md} t2-references
# :format: myst
# ```
