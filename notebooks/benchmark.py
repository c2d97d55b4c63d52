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
# # The embedded benchmark in full
#
# The book's tables run the quick CPU scale (IPC 10, ConvNet-3). This page reads the **full CPU
# preset**, `fashion-mnist`: every method fine-tunes the shipped Fashion-MNIST model for 1,000 steps
# with the paper's memory settings ($\lambda_r$ = 0.002, $\lambda_g$ = 0.008, $N_R = N_G = 64$),
# samples 50 images per class, and is evaluated at IPC 1, 10 and 50 with ConvNet-3 and a half-width
# ResNetAP-10 under the hard-label protocol, three seeds per cell; `random` (real images) and
# `full` (all 60,000 training images) are the real-image baselines. What is scaled down against the
# paper, and why, is listed on the [deviations page](../book/deviations.md) and printed from the
# presets on the {doc}`embedded model <embedded_model>` page.
#
# `ddgd run --preset fashion-mnist` wrote the result file this page reads, one row per run
# (resumable, seeds side by side; see [Reproducing](../book/reproduce.md)).

# %% tags=["parameters"]
preset = "fashion-mnist"  # a name of ddgd.config.PRESETS
overrides = {"eval.protocol": "legacy", "finetune.lambda_g": 0.008}  # the settings of its rows (see below)
moves_from = "cpu"  # the parameter set of Table 1 whose protocol move this page shows
methods = ["random", "dit", "finetune", "minimax", "ddgd", "full"]
results_csv = "data/results/fashion-mnist.csv"  # relative to the repository; None: <output_dir>/benchmark.csv
compute = False  # run the runs this CSV lacks (hours for the full preset on a CPU)
references = ["fashion-mnist"]  # datasets whose published numbers are shown beside ours
threads = None  # torch CPU threads; None: torch's default
precision_csv = "benchmarks/results/precision.csv"  # fp32 against bf16 (benchmarks/bench_precision.py)
output_dir = "runs/reproduce/benchmark"  # fine-tuning runs, sample pools and the figure
beside = {"first settings": {"eval.protocol": "legacy", "finetune.lambda_g": 0.008}}  # earlier settings (overrides on top of the above) whose rows the CSV holds: read only, never run

# %%
from pathlib import Path

from IPython.display import Markdown
from myst_nb import glue

from ddgd.config import project_path, resolve, shown_path
from ddgd.experiments import comparisons, report, reproduce
from ddgd.experiments.pipeline import results_of
from ddgd.pages.benchmark import evaluation_cost, plot_by_ipc
from ddgd.pages.figures import glue_values, pinned_settings, run_facts, save_figure, settings_note

config = resolve(preset, overrides)
csv = project_path(results_csv) if results_csv else Path(output_dir) / "benchmark.csv"
runs = results_of(config, methods, csv, Path(output_dir) / "runs", compute, threads)
print(f"{len(runs)} result rows of this configuration in {shown_path(csv)}")

# %% tags=["remove-cell"]
glue("bm-settings", Markdown(settings_note(overrides)), display=False)

# %% [markdown]
# ```{glue:md} bm-settings
# :format: myst
# ```

# %% [markdown]
# ## Accuracy by IPC and network
#
# Best top-1 accuracy (%) on the 10,000 real test images, mean ± sample standard deviation over
# seeds ("(n=...)" marks cells with fewer than three runs).

# %% tags=["remove-output"]
figure = plot_by_ipc(runs)
save_figure(figure, output_dir, stem="benchmark", formats=("png", "pdf"))
report.table(runs)

# %% tags=["remove-cell"]
glue_values("bm", {"table": report.table(runs), "final-table": report.table(runs, metric="final"), "figure": figure,
                   **run_facts(runs, preset, str(results_csv or "<output_dir>/benchmark.csv"))})

# %% [markdown]
# ```{glue:} bm-table
# ```
#
# Preset {glue:text}`bm-preset`: {glue:text}`bm-runs` runs from the result file
# {glue:text}`bm-csv`, with {glue:text}`bm-seeds` seed(s) in all; their provenance:
# {glue:text}`bm-provenance`.
#
# The final accuracy (after the last epoch, rather than the best of the test evaluations during
# training):
#
# ```{glue:} bm-final-table
# ```
#
# ```{glue:figure} bm-figure
# :name: fig-benchmark
#
# Best top-1 accuracy against IPC on each evaluation network: the line is the mean over seeds, the
# band the minimum to maximum over seeds; the dashed line is the network trained on all images.
# ```

# %% [markdown]
# ## What the numbers say
#
# For every cell (IPC and network), DDGD is compared with each baseline seed by seed: the mean of the
# paired differences (DDGD - baseline, the runs of one seed), its 95 % bootstrap interval over seeds,
# and the verdict it gives (better, worse, or unresolved when the interval holds 0), with how many
# seeds would resolve an unresolved difference. With three seeds the interval is the range of the
# three differences, and no verdict is drawn from fewer than six seeds (explained on
# {doc}`Table 1 <table1>`).

# %%
others = [m for m in ("minimax", "finetune", "dit", "random") if m in methods]
comparison = comparisons.compare(runs, "ddgd", others)
glue("bm-verdict", Markdown(comparisons.describe_comparison(comparison)), display=False)
comparison.round(2)

# %% [markdown]
# ```{glue:md} bm-verdict
# :format: myst
# ```

# %% tags=["remove-cell"]
t1 = {**reproduce.notebook_parameters(reproduce.notebook_path("table1")), **reproduce.load_params("table1", moves_from)}
t1_csv = project_path(t1["results_csv"]) if t1["results_csv"] else None
t1_runs = comparisons.settings_runs(t1_csv, t1["preset"], t1["overrides"], t1["beside"], t1["methods"])
protocol_move, _ = comparisons.setting_moves(runs.iloc[0:0], t1_runs)  # the protocol's move needs no rows of now
glue("bm-protocol-move", Markdown(comparisons.describe_comparison(protocol_move)), display=False)

# %% [markdown]
# ## What the reference protocol moves
#
# This page's runs ran under this package's first evaluation protocol (see the top of the page). At
# the quick scale, {doc}`Table 1 <table1>` reran every method under the reference protocol with the
# same seeds; what that moved, per method, paired by seed (reference against first protocol, both at
# the paper's $\lambda_g$):
#
# ```{glue:md} bm-protocol-move
# :format: myst
# ```
#
# The quick scale evaluates ConvNet-3 only, so the half-width ResNetAP-10 rows of this page, which the
# network fixes change most directly (IDC's block order, initialisation and small-image stem), are not
# measured there; the next section measures them on this page's own runs.

# %% tags=["remove-cell"]
pinned = pinned_settings(overrides)
earlier = {} if pinned else comparisons.settings_runs(csv, preset, overrides, beside, methods)
moved = comparisons.compare_settings({"presets' settings": runs, **earlier}, [("presets' settings", k) for k in earlier])
glue("bm-settings-move", Markdown(
    "This page reads its rows at the first settings (see the top of the page): there is no earlier setting to "
    "compare them with until the full preset is rerun at the presets' settings." if pinned else
    comparisons.describe_comparison(moved) if earlier else "No earlier settings are given (`beside`)."), display=False)

# %% [markdown]
# ## What the presets' settings moved here
#
# The same runs (same seeds) at the settings this page's rows were first computed with (`beside`: the
# first protocol and the paper's $\lambda_g$), read from the result file, against the runs above,
# per method, network and IPC, paired by seed. For the methods without memory terms only the protocol
# changed; Minimax and DDGD also changed $\lambda_g$ (the Table 1 page separates the two at the quick
# scale).
#
# ```{glue:md} bm-settings-move
# :format: myst
# ```

# %% [markdown]
# ## What it cost
#
# Minutes of evaluation (training each network on the distilled set and testing it twice), summed
# over methods and seeds, as the rows recorded them. Fine-tuning (its wall time is in each run's
# `done.json`) and sampling come on top.

# %%
glue("bm-cost", evaluation_cost(runs), display=False)

# %% [markdown]
# ```{glue:} bm-cost
# ```

# %% [markdown]
# ## bf16 autocast on this CPU
#
# bf16 autocast (`model.precision` and `eval.precision`, see the execution switches on the
# [reproducing page](../book/reproduce.md)) pays on CPUs with AVX512-BF16 units as on GPUs. Before
# it could become a default of a CPU preset, `benchmarks/bench_precision.py` ran DDGD on the quick
# preset in both precisions, seed by seed (fine-tuning, sampling and ConvNet-3 at IPC 10), into
# {glue:text}`bm-precision-csv`:

# %%
precision_rows = report.load_results(project_path(precision_csv))
glue("bm-precision", Markdown(comparisons.describe_comparison(
    comparisons.compare(precision_rows, "bf16", ["fp32"], column="variant"))), display=False)
arm_s = precision_rows.groupby("variant").wall_s.sum()  # evaluation seconds of each arm, as the rows recorded
glue_values("bm", {"precision-csv": shown_path(project_path(precision_csv)),
                   "bf16-speed": float(arm_s["fp32"] / arm_s["bf16"])})

# %% [markdown]
# ```{glue:md} bm-precision
# :format: myst
# ```
#
# The evaluations of the bf16 arm took {glue:text}`bm-bf16-speed:.2f` times less time. The
# presets therefore keep fp32: bf16 stays one override away (`-o model.precision=bf16 -o
# eval.precision=bf16`), and a row computed with it says so after its hardware.

# %% [markdown]
# ## Published numbers, for orientation
#
# Other distillation methods on Fashion-MNIST as the KIP paper reports them (Nguyen et al., ICLR
# 2021), measured at 28 px under their own protocols: a yardstick for the order of magnitude, not
# numbers of this code and not a cell-by-cell comparison.

# %%
glue("bm-references", Markdown(report.references_markdown(references)), display=False)

# %% [markdown]
# ```{glue:md} bm-references
# :format: myst
# ```
