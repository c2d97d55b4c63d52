"""The latent cache's resident memory and batch time: read whole into RAM vs memory-mapped from disk.

Writes a synthetic cache of `--images` latents of the paper's shape (4 x 32 x 32, both flip views,
float16: 32 KiB an image, so 13,000 ImageWoof images make 0.4 GB and ImageNet-1k's 1.28 million
about 42 GB), then, each in a fresh process, loads it (a) whole into RAM, as the cache was read
before it became a folder of .npy arrays, and (b) memory-mapped (`LatentCache.load`), draws
`--batches` fine-tuning batches of 8 and records the resident memory this adds to the process, anonymous
(the process's own, what runs out) and file-backed (mapped pages of the cache, which the kernel drops
under pressure), and the median time to draw a batch. One CSV row per mode and a bar chart beside it; nothing is asserted.

    python benchmarks/bench_cache.py [--images 20000] [--batches 200] [--out benchmarks/results/cache.csv]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bar_figure, write_rows  # noqa: E402

from ddgd.base.provenance import provenance  # noqa: E402
from ddgd.method.latents import LatentCache, cache_writer  # noqa: E402

SHAPE = (4, 32, 32)  # SD-VAE latents of 256 px images


def make(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    with cache_writer(folder, n, SHAPE, torch.arange(n) % 10, {"bench": n}) as write:
        for start in range(0, n, 1000):  # written in slabs, as the encoder writes batches
            b = min(1000, n - start)
            block = torch.from_numpy(rng.standard_normal((b, 2, *SHAPE), dtype=np.float32)).half()
            write(start, block, block.abs())


def rss_mb() -> dict[str, float]:
    """This process's resident memory now (Linux: /proc/self/status), in MB: anonymous (what only this process
    holds, and what runs out) and file-backed (pages of mapped files, which the kernel drops under pressure)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[key].split()[0]) / 1024 for k, key in (("anon", "RssAnon"), ("file", "RssFile"))}


def measure(folder: Path, mode: str, batches: int) -> dict:
    """In this process: load the cache one way, draw batches, report the resident memory added and batch time."""
    base = rss_mb()
    if mode == "in memory":
        arrays = [torch.from_numpy(np.load(folder / f"{k}.npy")) for k in ("mean", "std", "labels")]
        cache = LatentCache(*arrays)
    else:
        cache = LatentCache.load(folder)
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(batches):
        idx = torch.randint(0, len(cache), (8,), generator=g)
        t0 = time.perf_counter()
        cache.sample(idx, g)
        times.append(time.perf_counter() - t0)
    now = rss_mb()
    return {"mode": mode, "anon_growth_mb": now["anon"] - base["anon"], "file_growth_mb": now["file"] - base["file"],
            "batch_ms": 1000 * statistics.median(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/cache.csv")
    ap.add_argument("--measure", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1], args.batches)))
        return
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cache"
        make(folder, args.images)
        size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 2 ** 20
        rows = []
        for mode in ("in memory", "memory-mapped"):  # a fresh process each: peak RSS is per process
            out = subprocess.run([sys.executable, __file__, "--measure", str(folder), mode, "--batches",
                                  str(args.batches)], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({**row, "images": args.images, "cache_mb": size_mb, **provenance()})
    path = write_rows(args.out, rows)
    bar_figure(Path(args.out).with_suffix(".png"), [r["mode"] for r in rows], [r["anon_growth_mb"] for r in rows],
               "anonymous memory added (MB)", f"latent cache of {args.images} images ({size_mb:.0f} MB on disk)",
               goal=size_mb, goal_label="cache size on disk")
    for r in rows:
        print(f"{r['mode']}: +{r['anon_growth_mb']:.0f} MB anonymous, +{r['file_growth_mb']:.0f} MB of mapped file pages, "
              f"{r['batch_ms']:.2f} ms a batch of 8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
