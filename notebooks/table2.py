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
# DDGD and Minimax use the preset's memory weights ({eq}`eq-total`): $\lambda_r$ =
# {glue:text}`t2-lambda-r` and $\lambda_g$ = {glue:text}`t2-lambda-g` (the CPU presets' choice is
# explained under {ref}`deviations-cpu-settings`).

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
datasets = ["fashion-tops", "fashion-other"]  # one configuration per dataset (data.dataset)
overrides = {"eval.seeds": [0, 1, 2]}  # applied to every dataset
methods = ["random", "dit", "minimax", "ddgd"]
results_csv = "data/results/table2-cpu.csv"  # relative to the repository; None: <output_dir>/table2.csv
compute = True  # run the runs this CSV lacks (none when it is complete; all 24 take about an hour on 2 CPU cores)
features = "judge"  # the diversity section's feature space: "judge" (Fashion-MNIST), "inception" (GPU), None: none
references = ["imagenette", "imageidc"]  # datasets whose published numbers are shown beside ours
threads = None  # torch CPU threads; None: torch's default (on a busy shared machine, 1 is much faster)
output_dir = "runs/reproduce/table2"  # fine-tuning runs and sample pools, one folder per dataset

# %%
from pathlib import Path

import torch
from IPython.display import Markdown
from myst_nb import glue

from ddgd.config import project_path, shown_path
from ddgd.experiments import comparisons, report
from ddgd.experiments.variants import run_variants, variant_configs
from ddgd.pages.diversity_section import diversity_section
from ddgd.pages.figures import glue_values, run_facts, settings_note

if threads:
    torch.set_num_threads(threads)
# one configuration per dataset; their rows are told apart by config hash (no variant label)
variants = variant_configs(preset, overrides, {name: {"data.dataset": name} for name in datasets}, methods, tagged=False)
csv = project_path(results_csv) if results_csv else Path(output_dir) / "table2.csv"
runs = run_variants(variants, Path(output_dir) / "runs", csv, compute=compute)
print(f"{len(runs)} result rows of these configurations in {shown_path(csv)}")

# %% tags=["remove-cell"]
glue("t2-settings", Markdown(settings_note(overrides)), display=False)

# %% [markdown]
# ```{glue:md} t2-settings
# :format: myst
# ```

# %% [markdown]
# ## Our results
#
# Best top-1 accuracy (%) on the real test images of each subset, mean ± sample standard deviation
# over seeds ("(n=...)" marks cells with fewer than three runs).

# %% tags=["remove-output"]
others = [m for m in ("minimax", "dit", "random") if m in methods]
ours = report.table(runs, columns=("dataset", "network", "ipc"))
final = report.table(runs, metric="final", columns=("dataset", "network", "ipc"))
net0, ipc0 = variants[0].config.eval.networks[0], variants[0].config.eval.ipcs[0]  # the headline cell
headlines = []  # per subset: the means, then DDGD - each baseline paired by seed (its interval and verdict)
for name in datasets:
    part = runs[runs["dataset"] == name]
    headlines.append(f"- **{name}**: " + comparisons.headline(part, ["ddgd", *others], net0, ipc0))
    headlines += [f"  - {comparisons.difference_sentence(part, 'ddgd', other, net0, ipc0)}" for other in others]
ours  # shown in the executed notebook; the page shows the glued copy below

# %% tags=["remove-cell"]
glue_values("t2", {"table": ours, "final-table": final, "headline": Markdown("\n".join(headlines)),
                   "network": net0, "ipc": ipc0, "lambda-r": f"{variants[0].config.finetune.lambda_r:g}",
                   "lambda-g": f"{variants[0].config.finetune.lambda_g:g}", **run_facts(runs, preset, str(results_csv or "<output_dir>/table2.csv")),
                   **{f"{comparisons.slug(name)}-{method}-best":
                      comparisons.cell_mean(runs[runs["dataset"] == name], method, net0, ipc0)
                      for name in datasets for method in methods}})

# %% [markdown]
# ```{glue:} t2-table
# ```
#
# Preset {glue:text}`t2-preset`: {glue:text}`t2-runs` runs from the result file
# {glue:text}`t2-csv`, with {glue:text}`t2-seeds` seed(s) in all; their provenance:
# {glue:text}`t2-provenance`. On the headline cell ({glue:text}`t2-network`, IPC
# {glue:text}`t2-ipc`), the best accuracies, and DDGD's paired differences with each baseline (the
# statistics are explained below), are:
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
# Per subset and cell, DDGD against each baseline seed by seed: the mean of the paired differences
# (DDGD - baseline, the runs of one seed), its 95 % bootstrap interval over seeds and the verdict it
# gives (better, worse, or unresolved when the interval holds 0), with how many seeds would resolve
# an unresolved difference. With three seeds the interval is the range of the three differences, and
# no verdict is drawn from fewer than six seeds (see {doc}`Table 1 <table1>`).

# %%
comparison = comparisons.compare(runs, "ddgd", others)
glue("t2-verdict", Markdown(comparisons.describe_comparison(comparison)), display=False)
comparison.round(2)

# %% [markdown]
# ```{glue:md} t2-verdict
# :format: myst
# ```

# %% [markdown]
# ## How diverse the sets are
#
# The same sets in the feature space and with the measures of {doc}`diversity` (coverage and recall:
# how much of the real data has a distilled image nearby; the Vendi score: the effective number of
# distinct images), mean ± standard deviation over the seeds, and DDGD's paired differences with each
# baseline on each subset:

# %% tags=["remove-output"]
section = diversity_section(variants, "ddgd", others, csv, Path(output_dir) / "runs", features, compute,
                            column="method")
glue_values("t2-div", section)
section["table"]

# %% [markdown]
# ```{glue:} t2-div-table
# ```
#
# Feature space: {glue:text}`t2-div-space`.
#
# **Coverage**, DDGD against each baseline:
#
# ```{glue:md} t2-div-coverage
# :format: myst
# ```
#
# **Vendi score**, DDGD against each baseline:
#
# ```{glue:md} t2-div-vendi
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
