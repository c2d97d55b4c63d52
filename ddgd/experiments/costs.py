"""The cost of the paper scale, counted in FLOPs rather than typed (book page: "What the paper scale costs").

Every stage is run once on PyTorch's meta device under `torch.utils.flop_counter.FlopCounterMode`:
the real modules (diffusers' DiT and VAE, the evaluation networks of `ddgd.protocol.networks`) at the
paper's shapes, with no memory and no arithmetic spent. A stage's time on a GPU is its FLOPs over
the GPU's peak rate at a stated utilisation (`GPUS`, `UTILISATION`); the GPU check script
(benchmarks/bench_gpu.py) measures the utilisation a real GPU reaches.

Counted (FLOPs = 2 x multiply-adds of the matrix products and convolutions, what FlopCounterMode
counts; elementwise work is left out):

* a fine-tuning step: DiT forward and backward at batch B with the DiffFit selection trainable;
* a sampled image: `steps` guided forwards (two rows each: conditional and unconditional);
* a VAE encode (256 px, both flip views) and a decode;
* an evaluation network: one training image (forward and backward) and one test image (forward).
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from ddgd.config import RunConfig
from ddgd.protocol.imagenet import subset_classes
from ddgd.protocol.networks import build
from ddgd.protocol.schedule import evaluation_epochs, num_epochs

# DiT-XL/2 (Peebles & Xie 2023) at 256 px and the SD VAE's config: the shapes the hub weights have.
DIT_XL_2 = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
                sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
SD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
              layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=256)
# Dense peak rates (FLOP/s) from NVIDIA's datasheets: the H100 SXM5 and the A100 SXM4 80 GB.
GPUS = {
    "H100 SXM": {"bf16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "A100 SXM": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
}
# An assumed fraction of the peak that the work reaches. Small batches (8 for fine-tuning, 64 for
# evaluation) keep real runs well below the large-batch figures of LLM training; replace this by
# the GPU check's measured TFLOP/s where it exists.
UTILISATION = 0.3
REAL_PER_CLASS = 1300  # ImageNet-1k train images per class (about); the test set has 50 per class


def count_flops(fn) -> float:
    """FLOPs that calling `fn` executes (FlopCounterMode; meta tensors cost nothing to run)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def dit_flops(batch: int, steps: int, difffit: bool = True) -> dict[str, float]:
    """FLOPs of one fine-tuning step at `batch` and of one guided sample of `steps` steps (DiT-XL/2)."""
    from diffusers import DiTTransformer2DModel

    from ddgd.method.models import select_trainable, tie_embedders

    with torch.device("meta"):
        model = DiTTransformer2DModel(**DIT_XL_2)
        tie_embedders(model)
        select_trainable(model, difffit)
        z = torch.randn(batch, 4, 32, 32)
        t = torch.zeros(batch, dtype=torch.long)

    def step():
        model(z, timestep=t, class_labels=t).sample.float().mean().backward()

    def guided():
        with torch.no_grad():
            model(z[:2], timestep=t[:2], class_labels=t[:2])

    return {"finetune_step": count_flops(step), "sample_image": steps * count_flops(guided)}


def vae_flops(size: int = 256, decodes: int = 1) -> dict[str, float]:
    """FLOPs of one SD-VAE encode (both flip views, as the latent cache does) and of `decodes` decodes."""
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        vae = AutoencoderKL(**{**SD_VAE, "sample_size": size})
        x, z = torch.randn(2, 3, size, size), torch.randn(decodes, 4, size // 8, size // 8)
    with torch.no_grad():
        return {"vae_encode_image": count_flops(lambda: vae.encode(x)), "vae_decode_image": count_flops(lambda: vae.decode(z))}


def network_flops(network: str, image_size: int, num_classes: int = 10) -> dict[str, float]:
    """FLOPs of one training image (forward and backward) and one test image of an evaluation network."""
    with torch.device("meta"):
        net = build(network, num_classes, 3, image_size)
        x = torch.randn(1, 3, image_size, image_size)
    train = count_flops(lambda: net(x).sum().backward())
    with torch.no_grad():
        test = count_flops(lambda: net(x))
    return {"train_image": train, "test_image": test}


def experiment_flops(cfg: RunConfig, methods, unit: dict[str, float], finetune_runs: int | None = None) -> dict:
    """FLOPs per stage of `ddgd run` over cfg's seeds, IPCs and networks for `methods`.

    `finetune_runs` replaces the count of fine-tuning runs (a sweep or an ablation fine-tunes once
    per point and seed).
    """
    ft, sm, ev = cfg.finetune, cfg.sample, cfg.eval
    k = len(subset_classes(cfg.data))
    seeds = len(ev.seeds)
    generative = [m for m in methods if m in ("dit", "finetune", "minimax", "ddgd")]
    tuned = [m for m in generative if m != "dit"]
    runs = finetune_runs if finetune_runs is not None else len(tuned) * seeds
    pools = (runs + ("dit" in generative) * seeds) if finetune_runs is not None else len(generative) * seeds
    steps = min(ft.max_steps, ft.epochs * (k * REAL_PER_CLASS // ft.batch_size))
    out = {"fine-tuning": runs * steps * unit["finetune_step"],
           "latent cache": (k * REAL_PER_CLASS * unit["vae_encode_image"]) if tuned else 0.0,
           "sampling": pools * k * sm.pool * (unit["sample_image"] + unit["vae_decode_image"]),
           "evaluation": 0.0}
    sets = pools + sum(m == "random" for m in methods) * seeds
    for net in ev.networks:
        for ipc in ev.ipcs:
            epochs = num_epochs(ev, ipc)
            tests = len(evaluation_epochs(epochs, ev.evaluations, ev.protocol))
            per_run = epochs * k * ipc * unit[f"{net} train_image"] + tests * k * 50 * unit[f"{net} test_image"]
            out["evaluation"] += sets * per_run
        if "full" in methods:  # every real image each epoch, tested as often as the distilled sets
            epochs = ev.full_epochs or 300
            tests = len(evaluation_epochs(epochs, ev.evaluations, ev.protocol))
            out["evaluation"] += seeds * (epochs * k * REAL_PER_CLASS * unit[f"{net} train_image"]
                                          + tests * k * 50 * unit[f"{net} test_image"])
    return out


@lru_cache(maxsize=None)
def _units(batch: int, steps: int, difffit: bool, networks: tuple, image_size: int, k: int) -> dict[str, float]:
    out = {**dit_flops(batch, steps, difffit), **vae_flops()}
    for net in networks:
        for kind, value in network_flops(net, image_size, k).items():
            out[f"{net} {kind}"] = value
    return out


def units(cfg: RunConfig) -> dict[str, float]:
    """FLOPs of every unit of work of a paper-scale config, by stage name (counted once per shape)."""
    return dict(_units(cfg.finetune.batch_size, cfg.sample.steps, cfg.finetune.difffit, tuple(cfg.eval.networks),
                       cfg.eval.image_size, len(subset_classes(cfg.data))))


def artefact_flops(artefact: str) -> dict[str, float]:
    """FLOPs per stage of an artefact's `paper` parameter set (its notebook's defaults where the set is silent)."""
    from ddgd.config import resolve
    from ddgd.experiments import reproduce
    from ddgd.experiments.variants import sweep_points

    defaults = reproduce.notebook_parameters(reproduce.notebook_path(artefact))
    p = {**defaults, **reproduce.load_params(artefact, "paper")}
    cfg = resolve(p["preset"], p.get("overrides") or {})
    seeds = len(cfg.eval.seeds)
    if artefact in ("table1", "benchmark"):
        return experiment_flops(cfg, p["methods"], units(cfg))
    if artefact == "table2":
        parts = [experiment_flops(c, p["methods"], units(c)) for c in
                 (resolve(p["preset"], {**(p.get("overrides") or {}), "data.dataset": d}) for d in p["datasets"])]
        return {stage: sum(part[stage] for part in parts) for stage in parts[0]}
    if artefact == "table3":
        return experiment_flops(cfg, ["ddgd"], units(cfg), finetune_runs=len(p["variants"]) * seeds)
    if artefact == "figure4":
        return experiment_flops(cfg, ["ddgd"], units(cfg), finetune_runs=len(sweep_points(cfg, p["sweeps"])) * seeds)
    if artefact == "figure3":  # one seed, no evaluation networks: fine-tuning and sampling only
        one = replace(cfg, eval=replace(cfg.eval, seeds=(p["seed"],)))
        return {**experiment_flops(one, p["methods"], units(one)), "evaluation": 0.0}
    raise ValueError(f"no cost model for {artefact!r}: choose table1, table2, table3, figure3, figure4 or benchmark")


def gpu_hours(flops: float, gpu: str = "H100 SXM", precision: str = "bf16", utilisation: float = UTILISATION) -> float:
    """Hours on one `gpu` for `flops` at `utilisation` of its dense peak in `precision`."""
    return flops / (GPUS[gpu][precision] * utilisation) / 3600

