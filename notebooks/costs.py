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
# # What the paper scale costs
#
# How long does an artefact of the paper take on a GPU? Instead of guessing, this page counts the
# floating-point operations of every stage with `torch.utils.flop_counter.FlopCounterMode`, running
# the real modules at the paper's shapes on PyTorch's meta device (no memory, no arithmetic):
# DiT-XL/2 with its DiffFit selection, the SD VAE at 256 px, and the three evaluation networks at
# 224 px (`ddgd.experiments.costs`). A stage's GPU time is its FLOPs over the peak rate of a named GPU at an
# assumed utilisation; the counts of each artefact come from its `paper` parameter set.

# %% tags=["parameters"]
preset = "imagewoof"  # the paper-scale preset whose shapes are counted
gpu = "H100 SXM"  # a key of ddgd.experiments.costs.GPUS
precision = "bf16"  # bf16, tf32 or fp32: which peak rate applies
utilisation = 0.3  # assumed fraction of the peak reached (see the text)
artefacts = ["table1", "table2", "table3", "figure3", "figure4", "benchmark"]
output_dir = "runs/reproduce/costs"  # where costs.csv is written

# %% tags=["remove-cell"]
from pathlib import Path

import pandas as pd

from ddgd.experiments import costs
from ddgd.pages.figures import glue_values
from ddgd.config import resolve

# %%
config = resolve(preset)
unit = costs.units(config)
units = pd.DataFrame({"stage": list(unit), "TFLOP": [v / 1e12 for v in unit.values()]}).set_index("stage")
per_artefact = pd.DataFrame({a: costs.artefact_flops(a) for a in artefacts}).T
hours = per_artefact.map(lambda f: costs.gpu_hours(f, gpu, precision, utilisation))
hours["total"] = hours.sum(axis=1)
Path(output_dir).mkdir(parents=True, exist_ok=True)
per_artefact.assign(gpu=gpu, precision=precision, utilisation=utilisation).to_csv(Path(output_dir) / "costs.csv")

# %% tags=["remove-cell"]
forward = unit["sample_image"] / config.sample.steps / 2  # one image through the DiT once
first = hours.index[0]  # the artefact the text names: Table 1 on the book's page
glue_values("cost", {"units": units.round(3), "hours": hours.round(2), "gpu": gpu,
                     "peak": f"{costs.GPUS[gpu][precision] / 1e12:,.0f}", "precision": precision,
                     "util": f"{utilisation:.0%}", "step": f"{unit['finetune_step'] / 1e12:.2f}",
                     "step-images": f"{unit['finetune_step'] / forward:.0f}",
                     "sample-steps": f"{unit['sample_image'] / unit['finetune_step']:.0f}",
                     "sampler-steps": config.sample.steps, "batch": config.finetune.batch_size, "first": first,
                     "first-hours": f"{hours.loc[first, 'total']:.1f}",
                     "first-largest": hours.loc[first].drop("total").idxmax()})

# %% [markdown]
# ## One unit of each stage
#
# ```{glue:} cost-units
# ```
#
# FLOPs (in TFLOP) of one unit of work at the paper's shapes: a fine-tuning step of DiT-XL/2 at
# batch {glue:text}`cost-batch` (forward and backward, DiffFit trainable), one guided sample of
# {glue:text}`cost-sampler-steps` steps, one SD-VAE
# encode (both flip views, as the latent cache does) and decode at 256 px, and one training image
# (forward and backward) and one test image of each evaluation network at 224 px.
#
# A fine-tuning step at batch {glue:text}`cost-batch` costs {glue:text}`cost-step` TFLOP, as much
# as a forward pass over {glue:text}`cost-step-images` images; a sampled image costs as much as
# {glue:text}`cost-sample-steps` fine-tuning steps, because each of its
# {glue:text}`cost-sampler-steps` steps runs the conditional and the unconditional pass.
#
# ## Each artefact
#
# ```{glue:} cost-hours
# ```
#
# Hours on one {glue:text}`cost-gpu` per stage of each artefact's `paper` parameter set, at
# {glue:text}`cost-util` of its dense {glue:text}`cost-precision` peak of {glue:text}`cost-peak`
# TFLOP/s (NVIDIA's datasheet). Each row counts what its `paper` parameter set runs: Table 1 every
# method, network, IPC and seed; Table 3 every variant; Figure 4 every distinct point of its
# sweeps; Figure 3 its fine-tunings and sample pools, without evaluation.
#
# Read these as lower bounds. The utilisation is an assumption, not a measurement: batch 8 for
# DiT-XL/2 and batch 64 for small convolutional networks keep a GPU far from the rates of
# large-batch training, and data loading, augmentation and the Python loop add time the FLOPs do
# not see. The GPU check script `benchmarks/bench_gpu.py` measures the TFLOP/s one GPU reaches on
# each stage; divide its measured rate into the FLOPs above for a measured estimate. By this count
# {glue:text}`cost-first` needs at least {glue:text}`cost-first-hours` GPU hours, most of them in
# {glue:text}`cost-first-largest`.
