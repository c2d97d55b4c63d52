"""Speed of the method's core at paper shapes, measured against straightforward implementations.

(a) memory + minimax work of one step (batch 8, 4x32x32 latents, 10 classes, N_R = N_G = 64, memories
    full) against a baseline that keeps Python lists of one-row tensors and rebuilds the whole
    similarity matrix after every removal; and its share of a whole training step of a 6-layer DiT
    (hidden 384, patch 2).
(b) a training step that samples z0 from the latent cache against one that encodes the real images
    at 256 px with an SD-VAE-sized AutoencoderKL (block channels 128/256/512/512) every time.
(c) the batched guided sampler against a one-image-at-a-time loop (how the released code samples),
    50 steps with guidance, at 32 px (the Fashion-MNIST model) and at 256 px latents (4x32x32).

Writes one CSV (benchmarks/results/core.csv by default) and a figure of the ratios against their
goals (core.png beside it), and prints the ratios. Timings are medians
of repeated runs in one process; nothing here is asserted.

    python benchmarks/bench_core.py [--out benchmarks/results/core.csv] [--repeats 5]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ddgd.method.diffusion import Schedule, q_sample
from ddgd.method.latents import LatentCache, encode
from ddgd.method.losses import diffusion_loss, minimax_terms
from ddgd.method.diffusion import predicted_x0
from ddgd.method.memory import ClassMemories
from ddgd.method.models import apply_difffit, load_transformer, load_vae
from ddgd.base.provenance import provenance
from ddgd.method.sample import sample_latents

B, C, H, K, N_MEM = 8, 4, 32, 10, 64


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --------------------------------------------------------------------------- (a) naive baseline
class NaiveBank:
    """The rule as a plain loop: a Python list of [1, d] tensors, S rebuilt after every removal."""

    def __init__(self, capacity: int):
        self.capacity, self.items = capacity, []

    def add(self, latents: torch.Tensor) -> None:
        for row in latents.detach().reshape(latents.shape[0], -1):
            self.items.append(row[None].clone())
        while len(self.items) > self.capacity:
            stacked = torch.cat(self.items)
            sims = torch.stack([torch.stack([F.cosine_similarity(a, b)[0] for b in stacked[:, None]])
                                for a in stacked[:, None]])
            self.items.pop(int(torch.argmax(sims.sum(1))))


def naive_terms(pred, labels, real_banks, gen_banks):
    l_real, l_gen = 0.0, 0.0
    classes = sorted(set(labels.tolist()))
    for c in classes:
        block = pred[labels == c].reshape(-1, C * H * H)
        sims_r = [F.cosine_similarity(p[None], m) for p in block for m in real_banks[c].items]
        sims_g = [F.cosine_similarity(p[None], m) for p in block for m in gen_banks[c].items]
        l_real = l_real + 1 - torch.cat(sims_r).min()
        l_gen = l_gen + torch.cat(sims_g).max()
    return l_real / len(classes), l_gen / len(classes)


def bench_memory(repeats: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (B,), generator=g)
    z0, zhat = torch.randn(B, C, H, H, generator=g), torch.randn(B, C, H, H, generator=g)
    fast = ClassMemories(N_MEM, N_MEM, "adaptive")
    naive_r = {c: NaiveBank(N_MEM) for c in range(K)}
    naive_g = {c: NaiveBank(N_MEM) for c in range(K)}
    for c in range(K):  # memories already full
        full = torch.randn(N_MEM, C, H, H, generator=g)
        fast.update(torch.full((N_MEM,), c), full, full)
        naive_r[c].add(full[:N_MEM])
        naive_g[c].add(full[:N_MEM])

    def ours():
        present = {c: fast.tensors(c) for c in set(labels.tolist())}
        minimax_terms(zhat, labels, present)
        fast.update(labels, z0, zhat)

    def naive():
        naive_terms(zhat, labels, naive_r, naive_g)
        for c in sorted(set(labels.tolist())):
            naive_r[c].add(z0[labels == c])
            naive_g[c].add(zhat[labels == c])

    t_ours, t_naive = timed(ours, repeats), timed(naive, max(1, repeats // 2))
    model = load_transformer("bench")
    apply_difffit(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sched = Schedule.linear()

    def step():
        t = torch.randint(0, 1000, (B,), generator=g)
        eps = torch.randn(B, C, H, H, generator=g)
        z_t = q_sample(z0, t, eps, sched)
        out = model(z_t, timestep=t, class_labels=labels).sample
        zh = predicted_x0(z_t, out[:, :C], sched.alphas_cumprod, t)
        present = {c: fast.tensors(c) for c in set(labels.tolist())}
        terms = minimax_terms(zh, labels, present)
        loss = diffusion_loss(out[:, :C], eps) + 0.002 * terms.l_real + 0.008 * terms.l_gen
        opt.zero_grad()
        loss.backward()
        opt.step()
        fast.update(labels, z0, zh.detach())

    t_step = timed(step, repeats)
    return [
        {"benchmark": "a_memory", "variant": "ours", "seconds": t_ours},
        {"benchmark": "a_memory", "variant": "naive", "seconds": t_naive, "ratio": t_naive / t_ours},
        {"benchmark": "a_memory", "variant": "share_of_step", "seconds": t_step, "ratio": t_ours / t_step},
    ]


# --------------------------------------------------------------------------- (b) latent cache
def bench_cache(repeats: int) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    vae = load_vae("bench").eval()
    model = load_transformer("bench")
    apply_difffit(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sched = Schedule.linear()
    images = torch.rand(B, 3, 256, 256, generator=g) * 2 - 1
    cache = LatentCache(torch.randn(64, 2, C, H, H).half(), torch.rand(64, 2, C, H, H).half(), torch.arange(64) % K)
    labels = torch.randint(0, K, (B,), generator=g)

    def train_on(z0):
        t = torch.randint(0, 1000, (B,), generator=g)
        eps = torch.randn(z0.shape, generator=g)
        out = model(q_sample(z0, t, eps, sched), timestep=t, class_labels=labels).sample
        loss = diffusion_loss(out[:, :C], eps)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_cache = timed(lambda: train_on(cache.sample(torch.arange(B), g)), repeats)
    t_encode = timed(lambda: train_on(encode(vae, images, g)), max(1, repeats // 2))
    return [
        {"benchmark": "b_cache", "variant": "cached_step", "seconds": t_cache},
        {"benchmark": "b_cache", "variant": "encode_step", "seconds": t_encode, "ratio": t_cache / t_encode},
    ]


# --------------------------------------------------------------------------- (c) sampler
def bench_sampler(size: str, n_images: int, batch: int, repeats: int) -> list[dict]:
    model = load_transformer(size).eval()
    labels = [i % K for i in range(n_images)]

    def batched():
        for s in range(0, n_images, batch):
            sample_latents(model, labels[s:s + batch], list(range(s, min(s + batch, n_images))),
                           labels[s:s + batch], seed=0, steps=50, guidance=4.0)

    def one_at_a_time():
        for i in range(n_images):
            sample_latents(model, [labels[i]], [i], [labels[i]], seed=0, steps=50, guidance=4.0)

    t_b, t_one = timed(batched, repeats), timed(one_at_a_time, 1)
    px = 32 if size == "fashion" else 256
    return [
        {"benchmark": f"c_sampler_{px}px", "variant": "batched", "seconds": t_b, "images_per_s": n_images / t_b},
        {"benchmark": f"c_sampler_{px}px", "variant": "one_at_a_time", "seconds": t_one,
         "images_per_s": n_images / t_one, "ratio": t_one / t_b},
    ]


GOALS = {  # (benchmark, variant) -> (what the ratio means, goal, higher is better)
    ("a_memory", "naive"): ("(a) memory work: naive / ours", 4.0, True),
    ("a_memory", "share_of_step"): ("(a) memory work / whole step", 0.03, False),
    ("b_cache", "encode_step"): ("(b) cached step / encoding step", 0.1, False),
    ("c_sampler_32px", "one_at_a_time"): ("(c) batched / one-at-a-time, 32 px", 20.0, True),
    ("c_sampler_256px", "one_at_a_time"): ("(c) batched / one-at-a-time, 256 px", None, True),
}


def plot(csv_path: Path) -> Path:
    """A bar per measured ratio with its goal as a marker: benchmarks/results/core.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = {(r["benchmark"], r["variant"]): r for r in csv.DictReader(f)}
    keys = [k for k in GOALS if k in rows]
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 3.2))
    for ax, key in zip(axes, keys):
        label, goal, higher = GOALS[key]
        value = float(rows[key]["ratio"])
        met = goal is None or (value >= goal if higher else value <= goal)
        ax.bar([0], [value], color="tab:green" if met else "tab:red")
        if goal is not None:
            ax.axhline(goal, color="k", ls="--", label=f"goal {'>=' if higher else '<='} {goal:g}")
            ax.legend(fontsize=7, loc="upper right")
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_ylabel("ratio")
    hw = next(iter(rows.values())).get("hardware", "")
    fig.suptitle(f"core benchmarks ({hw})", fontsize=9)
    fig.tight_layout()
    out = csv_path.with_suffix(".png")
    fig.savefig(out, dpi=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/core.csv")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from an existing CSV")
    args = parser.parse_args()
    if args.plot_only:
        print(f"wrote {plot(Path(args.out))}")
        return
    torch.manual_seed(0)
    rows = bench_memory(args.repeats) + bench_cache(max(2, args.repeats // 2))
    rows += bench_sampler("fashion", 100, 100, 2) + bench_sampler("bench", 4, 4, 1)
    prov = provenance()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["benchmark", "variant", "seconds", "images_per_s", "ratio", *prov]
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **prov})
    get = {(r["benchmark"], r["variant"]): r for r in rows}
    print(f"(a) memory+minimax: {get['a_memory', 'naive']['ratio']:.1f}x faster than naive (goal >= 4x); "
          f"{100 * get['a_memory', 'share_of_step']['ratio']:.2f} % of a step (goal < 3 %)")
    print(f"(b) cached / encoding step time: {get['b_cache', 'encode_step']['ratio']:.3f} (goal <= 0.1)")
    print(f"(c) batched sampler at 32 px: {get['c_sampler_32px', 'one_at_a_time']['ratio']:.1f}x images/s "
          f"(goal >= 20x); at 256 px: {get['c_sampler_256px', 'one_at_a_time']['ratio']:.1f}x")
    print(f"wrote {out} and {plot(out)}")


if __name__ == "__main__":
    main()
