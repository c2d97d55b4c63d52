"""The memory-and-loss work of one fine-tuning step, ours against the released code's approach.

At paper shapes (batch 8, 10 classes, N_R = N_G = 64, full memories, 4x32x32 latents) one step's
memory work is: the two minimax terms of every class in the batch, then the update of both
memories of those classes with the self-adaptive rule. Three implementations:

* ``ours``: `ddgd.method.memory_terms.memory_terms`, what the training step calls: the terms and the
  update of `ddgd.method.memory.ClassMemories` in one pass over each memory (all classes in one slot
  buffer, the similarity matrix kept across adds: a new item costs its m dot products);
* ``released``: the released code's approach, re-implemented here: memories as Python lists of
  one-row tensors, concatenated for every loss, and a float32 cosine-similarity matrix rebuilt
  for every removal;
* ``naive``: pairwise cosine similarities in Python loops (bench_core.py's baseline).

Ours and released are timed side by side, in alternating blocks of steps, so that a change in the
machine's load touches both alike. Writes benchmarks/results/memory.csv (median seconds per step,
ratio to ours) and memory.png; nothing is asserted. The goal: ours at most a quarter of the
released approach.

    python benchmarks/bench_memory.py [--repeats 40] [--out benchmarks/results/memory.csv]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import B, C, H, K, N_MEM, NaiveBank, naive_terms, timed  # noqa: E402
from common import bar_figure, write_rows  # noqa: E402

from ddgd.method.memory import ClassMemories  # noqa: E402
from ddgd.method.memory_terms import memory_terms  # noqa: E402
from ddgd.base.provenance import provenance  # noqa: E402


class ReleasedBank:
    """A Python list of [1, d] tensors; every removal rebuilds the float32 similarity matrix."""

    def __init__(self, capacity: int):
        self.capacity, self.items = capacity, []

    def add(self, latents: torch.Tensor) -> None:
        self.items.extend(latents.detach().reshape(latents.shape[0], -1).split(1))
        while len(self.items) > self.capacity:
            u = F.normalize(torch.cat(self.items), dim=1)
            self.items.pop(int(torch.argmax((u @ u.T).sum(1))))


def released_terms(pred, labels, real, gen):
    l_real = l_gen = 0.0
    classes = set(labels.tolist())
    for c in classes:
        block = F.normalize(pred[labels == c].flatten(1), dim=1)
        pos = F.normalize(torch.cat(real[c].items), dim=1)
        neg = F.normalize(torch.cat(gen[c].items), dim=1)
        l_real = l_real + (1 - (block @ pos.T).min()) / len(classes)
        l_gen = l_gen + (block @ neg.T).max() / len(classes)
    return l_real, l_gen


def side_by_side(steps: dict, repeats: int, block: int = 5) -> dict[str, float]:
    """Median seconds per call of each step, timed in alternating blocks of `block` calls.

    Each block starts with an untimed call, as `timed` starts with one: steady-state steps, as timed
    one variant after the other, but under the same load.
    """
    times = {name: [] for name in steps}
    for _ in range(max(1, repeats // block)):
        for name, step in steps.items():
            step()
            for _ in range(block):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=40, help="timed steps of ours and of released (naive: a tenth)")
    p.add_argument("--out", default="benchmarks/results/memory.csv")
    args = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (B,), generator=g)
    z0, zhat = torch.randn(B, C, H, H, generator=g), torch.randn(B, C, H, H, generator=g)
    ours = ClassMemories(N_MEM, N_MEM, "adaptive")
    banks = {kind: ({c: cls(N_MEM) for c in range(K)}, {c: cls(N_MEM) for c in range(K)})
             for kind, cls in (("released", ReleasedBank), ("naive", NaiveBank))}
    for c in range(K):  # every memory full before timing
        full = torch.randn(N_MEM, C, H, H, generator=g)
        ours.update(torch.full((N_MEM,), c), full, full)
        for real, gen in banks.values():
            real[c].add(full)
            gen[c].add(full)

    def step_ours():
        memory_terms(ours, zhat, labels, z0)  # the terms, then the update: what the training step calls

    def step_of(kind, terms):
        real, gen = banks[kind]

        def step():
            terms(zhat, labels, real, gen)
            for c in sorted(set(labels.tolist())):
                real[c].add(z0[labels == c])
                gen[c].add(zhat[labels == c])

        return step

    t = side_by_side({"ours": step_ours, "released": step_of("released", released_terms)}, args.repeats)
    t["naive"] = timed(step_of("naive", naive_terms), max(1, args.repeats // 10))
    prov = provenance()
    rows = [dict(variant=k, seconds=v, ratio_to_ours=v / t["ours"], **prov) for k, v in t.items()]
    out = write_rows(args.out, rows)
    bar_figure(out.with_suffix(".png"), list(t), [1e3 * v for v in t.values()], "ms per step (log)",
               f"memory + minimax work, one step ({prov['hardware']})", goal=1e3 * t["released"] / 4,
               goal_label="goal: a quarter of released", log=True)
    for r in rows:
        print(f"{r['variant']:9s} {1e3 * r['seconds']:9.2f} ms  ({r['ratio_to_ours']:.1f}x ours)")
    print(f"written: {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
