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
# # Is DDGD more diverse, and does it matter?
#
# The paper's claim has two parts: the self-adaptive memory {eq}`eq-adaptive` makes the distilled
# set **more diverse**, and a more diverse set **trains a better network**. The tables measure only
# the accuracy; this page measures the sets themselves and sets the two side by side, for the same
# runs and seeds. Each distilled set (the first IPC images per class of a method's pool, or for
# `random` the seeded real images its accuracy rows train on) is compared with a fixed, seeded
# reference of real training images in the feature space of a judge network:
#
# - **precision** and **density**: how much of the set lies where real images are; **recall** and
#   **coverage**: how much of the real data has a distilled image nearby (Naeem et al. 2020, from
#   the `prdc` package);
# - the **Vendi score**: the effective number of distinct images in the set (Friedman and Dieng
#   2023, from the `vendi-score` package).
#
# The accuracy rows are those of `ddgd run`, the diversity rows those of `ddgd diversity`, both
# tidy files in `data/results/`; both are computed here only where the files lack them.

# %% tags=["parameters"]
preset = "fashion-mnist-quick"  # a name of ddgd.config.PRESETS
overrides = {"eval.seeds": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}  # ten seeds: enough pairs for a verdict
methods = ["dit", "minimax", "ddgd", "random"]  # the sets compared (generative methods and random)
features = "judge"  # feature space: the shipped judge (Fashion-MNIST) or "inception" (ImageNet, GPU)
results_csv = "data/results/seeds-cpu.csv"  # relative to the repository; None: <output_dir>/seeds.csv
compute = True  # run the runs and measurements the files lack (none when they are complete)
threads = None  # torch CPU threads; None: torch's default
output_dir = "runs/reproduce/diversity"  # fine-tuning runs and sample pools

# %% tags=["remove-output"]
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown
from myst_nb import glue

from ddgd.config import project_path, resolve, shown_path
from ddgd.experiments import comparisons
from ddgd.experiments.diversity import DiversitySpec
from ddgd.experiments.pipeline import results_of
from ddgd.pages.diversity_accuracy import (describe_correlations, diversity_of, joined, rank_correlations,
                                           scatter_figure, set_table)
from ddgd.pages.figures import glue_values, run_facts, save_figure, settings_note

cfg = resolve(preset, overrides)
csv = project_path(results_csv) if results_csv else Path(output_dir) / "seeds.csv"
root = Path(output_dir) / "runs"
accuracy = results_of(cfg, methods, csv, root, compute=compute, threads=threads)
diversity = diversity_of(cfg, methods, csv, root, compute=compute, spec=DiversitySpec(features=features))
frame = joined(accuracy, diversity)
print(f"{len(accuracy)} accuracy rows, {len(diversity)} whole-set diversity rows from {shown_path(csv)}")

# %% tags=["remove-cell"]
glue_values("dv", {**run_facts(accuracy, cfg.name, shown_path(csv)), "n-seeds": len(cfg.eval.seeds),
                   "ipc": ", ".join(map(str, cfg.eval.ipcs)), "network": ", ".join(cfg.eval.networks),
                   "space": str(diversity["feature_space"].iloc[0]) if len(diversity) else "none"})

# %% tags=["remove-cell"]
glue("dv-settings", Markdown(settings_note(overrides)), display=False)

# %% [markdown]
# ```{glue:md} dv-settings
# :format: myst
# ```

# %% [markdown]
# The runs: preset {glue:text}`dv-preset`, IPC {glue:text}`dv-ipc`, {glue:text}`dv-network`,
# {glue:text}`dv-n-seeds` seeds, read from {glue:text}`dv-csv` and its `.diversity.csv`; the
# feature space is {glue:text}`dv-space`. Provenance of the accuracy rows: {glue:text}`dv-provenance`.
#
# ## The sets, method by method

# %% tags=["remove-output"]
table = set_table(frame, methods)
glue("dv-table", table, display=False)
table

# %% [markdown]
# ```{glue:} dv-table
# ```
#
# *Table.* Per method: the seeds, the mean best test accuracy and its spread over the seeds, and
# the mean of each diversity measure of the whole set against the whole reference.
#
# ## Is DDGD's set more diverse than Minimax's?
#
# Each measure of DDGD's set minus that of the set of the same seed of each other method, with a
# bootstrap interval of the mean paired difference and its verdict (better: the interval lies above
# zero; the rules are those of the tables, see {doc}`table1`):

# %% tags=["remove-output"]
others = [m for m in methods if m not in ("ddgd",)]
div_cmp = {m: comparisons.compare(diversity, "ddgd", others, metric=m, by=("dataset", "ipc"))
           for m in ("coverage", "vendi", "recall")}
acc_cmp = comparisons.compare(accuracy, "ddgd", others)
glue("dv-coverage", Markdown(comparisons.describe_comparison(div_cmp["coverage"], 3, "", "")), display=False)
glue("dv-vendi", Markdown(comparisons.describe_comparison(div_cmp["vendi"], 3, "", "")), display=False)
glue("dv-recall", Markdown(comparisons.describe_comparison(div_cmp["recall"], 3, "", "")), display=False)
glue("dv-accuracy", Markdown(comparisons.describe_comparison(acc_cmp)), display=False)

# %% [markdown]
# **Coverage**
#
# ```{glue:} dv-coverage
# ```
#
# **Vendi score**
#
# ```{glue:} dv-vendi
# ```
#
# **Recall**
#
# ```{glue:} dv-recall
# ```
#
# **And the accuracy of the same sets**
#
# ```{glue:} dv-accuracy
# ```
#
# ## Does diversity go with accuracy?

# %% tags=["remove-output"]
generative = [m for m in methods if m != "random"]
corr = rank_correlations(frame, {"all methods": methods, "the generated sets": generative})
fig = scatter_figure(frame, methods)
save_figure(fig, output_dir, "accuracy-vs-diversity", formats=("png",))
glue("dv-scatter", fig, display=False)
plt.close(fig)
glue("dv-corr", corr.round(3).set_index(["group", "measure"]), display=False)

# %% tags=["remove-cell"]
glue_values("dv", {"corr-sentence": describe_correlations(corr)})

# %% [markdown]
# ```{glue:figure} dv-scatter
# :name: fig-diversity-accuracy
# Best test accuracy against the coverage (left) and the Vendi score (right) of the distilled set,
# one point per method and seed.
# ```
#
# ```{glue:} dv-corr
# ```
#
# *Table.* Spearman's rank correlation of accuracy with each measure, over every method's sets and
# over the generated sets alone (`scipy.stats.spearmanr`; p two-sided, no correction for the
# several measures).
#
# {glue:text}`dv-corr-sentence`
#
# A correlation across methods says that the methods which make more diverse sets also make
# better ones; it does not say that diversity is the cause, since the methods differ in more than
# their diversity (the real images of `random` are not generated at all). The comparison of DDGD
# with Minimax above is the one the paper's claim is about: the two differ only in the memory
# update rule.
