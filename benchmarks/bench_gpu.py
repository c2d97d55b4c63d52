"""The GPU check: the paper-scale stages on one CUDA GPU, with and without each execution switch.

Runs, with random weights and the package's own code paths:

* fine-tuning steps of DiT-XL/2 at full depth (28 blocks, batch 8, DiffFit, both memory terms with
  full self-adaptive memories): `ddgd.method.finetune.training_step`;
* batched guided sampling (50 steps) and SD-VAE decoding: `ddgd.method.sample.sample_latents`;
* training steps of the three evaluation networks at 224 px, batch 64: `ddgd.protocol.evaluate.train_step`;

each under the switches fp32, TF32, bf16 (autocast), bf16 + torch.compile, and for the networks
bf16 + channels_last. Writes one CSV row per (stage, network, switch): seconds per iteration,
images per second, peak GPU memory, FLOPs per iteration (`ddgd.experiments.costs`, counted on the meta device)
and the TFLOP/s reached. Under ten minutes on an H100-class GPU; nothing is asserted.

    python benchmarks/bench_gpu.py                       # on the first CUDA GPU
    python benchmarks/bench_gpu.py --device cpu --smoke  # a seconds-long check of the script itself
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_rows  # noqa: E402

from ddgd.experiments import costs  # noqa: E402
from ddgd.base.accel import autocast, bf16_units, maybe_compile, set_tf32
from ddgd.config import resolve
from ddgd.method.diffusion import Schedule
from ddgd.protocol.evaluate import train_step
from ddgd.method.finetune import State, training_step
from ddgd.method.latents import LatentCache
from ddgd.method.memory import ClassMemories
from ddgd.method.models import EMA, select_trainable, tie_embedders
from ddgd.protocol.networks import build
from ddgd.base.provenance import provenance
from ddgd.method.sample import sample_latents

SWITCHES = {"fp32": dict(precision="fp32", tf32=False, compile=False),
            "tf32": dict(precision="fp32", tf32=True, compile=False),
            "bf16": dict(precision="bf16", tf32=True, compile=False),
            "bf16+compile": dict(precision="bf16", tf32=True, compile=True)}
NET_SWITCHES = {**SWITCHES, "bf16+channels_last": dict(precision="bf16", tf32=True, compile=False, channels_last=True)}


def chosen(switches: dict, args) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in switches.items() if k in args.switches]


def timed(fn, device: torch.device, iters: int, warmup: int) -> tuple[float, float]:
    """(seconds per iteration, peak memory in GiB) of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return (time.perf_counter() - t0) / iters, peak


def dit(depth: int, device: torch.device):
    from diffusers import DiTTransformer2DModel

    torch.manual_seed(0)
    model = DiTTransformer2DModel(**{**costs.DIT_XL_2, "num_layers": depth})
    tie_embedders(model)
    select_trainable(model, True)
    return model.to(device)


def bench_finetune(args, device) -> list[dict]:
    rows = []
    for name, sw in chosen(SWITCHES, args):
        cfg = resolve("imagewoof", {"model.precision": sw["precision"], "finetune.batch_size": args.batch})
        set_tf32(sw["tf32"])
        model = dit(args.depth, device).train()
        state = State(0, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3),
                      EMA(model, 0.9999), ClassMemories(64, 64, "adaptive"), torch.Generator().manual_seed(0), [])
        n = 64 * 10  # full memories from the first steps on: 64 items per class
        cache = LatentCache(torch.randn(n, 2, 4, 32, 32).half(), torch.full((n, 2, 4, 32, 32), 0.1).half(),
                            torch.arange(n) % 10)
        state.memories.update(cache.labels, cache.mean[:, 0].float().to(device), cache.mean[:, 1].float().to(device))
        fwd = maybe_compile(model, sw["compile"])
        schedule, index = Schedule.linear(), torch.arange(10) * 100

        def step():
            training_step(fwd, state, cache, index, schedule, cfg)

        seconds, peak = timed(step, device, args.iters, args.warmup + 2 * sw["compile"])
        flops = costs.dit_flops(args.batch, 50)["finetune_step"] * args.depth / 28
        rows.append(row("finetune_step", "dit-xl-2", name, args.batch, seconds, peak, flops))
        del model, state, fwd
    return rows


def bench_sampling(args, device) -> list[dict]:
    from diffusers import AutoencoderKL

    rows = []
    torch.manual_seed(0)
    vae = AutoencoderKL(**{**costs.SD_VAE, "sample_size": args.vae_px}).to(device).eval()
    n = args.sample_batch
    for name, sw in chosen(SWITCHES, args):
        set_tf32(sw["tf32"])
        model = maybe_compile(dit(args.depth, device).eval().requires_grad_(False), sw["compile"])
        labels = [i % 10 for i in range(n)]

        def sample():
            with autocast(sw["precision"], device):
                sample_latents(model, labels, list(range(n)), [c * 100 for c in labels], seed=0,
                               steps=args.sample_steps, guidance=4.0)

        seconds, peak = timed(sample, device, 1, 1)
        per_image = costs.dit_flops(2, args.sample_steps)["sample_image"] * args.depth / 28
        rows.append(row("sample", "dit-xl-2", name, n, seconds, peak, per_image * n))
        z = torch.randn(min(n, 8), 4, args.vae_px // 8, args.vae_px // 8, device=device)

        def decode():
            with torch.no_grad(), autocast(sw["precision"], device):
                vae.decode(z)

        seconds, peak = timed(decode, device, 1, 1)
        flops = costs.vae_flops(args.vae_px, len(z))["vae_decode_image"]
        rows.append(row("vae_decode", "sd-vae", name, len(z), seconds, peak, flops))
    return rows


def bench_networks(args, device) -> list[dict]:
    rows = []
    for net in ("convnet-6", "resnetap-10", "resnet-18"):
        if args.net_px < 64 and net == "convnet-6":
            continue
        for name, sw in chosen(NET_SWITCHES, args):
            set_tf32(sw["tf32"])
            ev = replace(resolve("imagewoof").eval, image_size=args.net_px, precision=sw["precision"],
                         channels_last=sw.get("channels_last", False))
            model = build(net, 10, 3, args.net_px).to(device)
            if ev.channels_last:
                model = model.to(memory_format=torch.channels_last)
            fn = maybe_compile(model, sw["compile"])
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x = torch.randint(0, 256, (args.net_batch, 3, args.net_px, args.net_px), dtype=torch.uint8, device=device)
            y = torch.randint(0, 10, (args.net_batch,), device=device)
            mean, std = torch.full((3,), 0.5, device=device), torch.full((3,), 0.25, device=device)
            g = torch.Generator().manual_seed(0)
            seconds, peak = timed(lambda: train_step(fn, opt, x, y, mean, std, ev, g), device, args.iters,
                                  args.warmup + 2 * sw["compile"])
            flops = costs.network_flops(net, args.net_px)["train_image"] * args.net_batch
            rows.append(row("eval_train_step", net, name, args.net_batch, seconds, peak, flops))
    return rows


def row(stage, model, switch, batch, seconds, peak, flops) -> dict:
    return dict(stage=stage, model=model, switch=switch, batch=batch, seconds=round(seconds, 5),
                images_per_s=round(batch / seconds, 2), peak_gib=round(peak, 2), tflop=round(flops / 1e12, 4),
                tflops_per_s=round(flops / seconds / 1e12, 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes: depth 1, 32 px networks, a few iterations")
    p.add_argument("--out", default="benchmarks/results/gpu.csv")
    p.add_argument("--switches", default=None,
                   help=f"comma-separated subset of {', '.join(NET_SWITCHES)} (default: all; --smoke: fp32,bf16)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --device cpu --smoke to check the script itself")
    sizes = dict(depth=1, batch=2, iters=1, warmup=1, sample_batch=2, sample_steps=2, vae_px=64, net_px=32,
                 net_batch=4) if args.smoke else dict(depth=28, batch=8, iters=20, warmup=3, sample_batch=50,
                                                      sample_steps=50, vae_px=256, net_px=224, net_batch=64)
    for k, v in sizes.items():
        setattr(args, k, v)
    args.switches = (args.switches or ("fp32,bf16" if args.smoke else ",".join(NET_SWITCHES))).split(",")
    device = torch.device(args.device)
    prov = provenance()
    rows = bench_finetune(args, device) + bench_sampling(args, device) + bench_networks(args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    units = ",".join(k for k, v in bf16_units().items() if v) or "none"  # the bf16 hardware found
    out = write_rows(args.out, [{**r, "device": name, "bf16_units": units, "smoke": args.smoke, "torch": prov["torch"],
                                 "commit": prov["commit"], "hardware": prov["hardware"]} for r in rows])
    for r in rows:
        print(f"{r['stage']:16s} {r['model']:12s} {r['switch']:20s} {r['seconds'] * 1e3:9.1f} ms  "
              f"{r['images_per_s']:9.1f} img/s  {r['tflops_per_s']:7.2f} TFLOP/s  {r['peak_gib']:6.2f} GiB")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
