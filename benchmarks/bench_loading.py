"""ImageNet decoding and cropping through `ddgd.protocol.loaders`, with 0 and N DataLoader workers.

Writes a temporary ImageNet-like tree (the ten ImageWoof wnid folders, JPEGs of ImageNet's typical
size, 500 x 375 and 375 x 500, a few greyscale), then reads it as the latent cache and the real
baselines do: the ADM centre crop at 256 px to uint8 tensors (`loaders.read_images`). One CSV row
per worker count (images/s, median of the repeats) and a bar chart beside it; nothing is asserted.

    python benchmarks/bench_loading.py [--images 400] [--workers 0,1,2] [--out benchmarks/results/loading.csv]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bar_figure, write_rows  # noqa: E402

from ddgd.protocol.imagenet import SUBSETS, ImageNetSubset # noqa: E402
from ddgd.protocol.loaders import read_images, uint8_transform  # noqa: E402
from ddgd.base.provenance import provenance  # noqa: E402


def fake_tree(root: Path, n_images: int) -> Path:
    rng = np.random.default_rng(0)
    wnids = SUBSETS["imagewoof"]
    for i in range(n_images):
        folder = root / "train" / wnids[i % len(wnids)]
        folder.mkdir(parents=True, exist_ok=True)
        w, h = (500, 375) if i % 2 else (375, 500)
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        (img.convert("L") if i % 10 == 0 else img).save(folder / f"{wnids[i % len(wnids)]}_{i}.JPEG", quality=90)
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--workers", default="0,1,2")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/loading.csv")
    args = p.parse_args()
    prov = provenance()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ddgd-loading-") as tmp:
        subset = ImageNetSubset(fake_tree(Path(tmp), args.images), "imagewoof", "train", uint8_transform(256))
        for workers in (int(w) for w in args.workers.split(",")):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                x, _ = read_images(subset, workers)
                times.append(time.perf_counter() - t0)
            rate = len(x) / statistics.median(times)
            rows.append(dict(workers=workers, images=len(x), images_per_s=round(rate, 1), commit=prov["commit"],
                             hardware=prov["hardware"], torch=prov["torch"]))
            print(f"{workers} workers: {rate:.1f} images/s")
    out = write_rows(args.out, rows)
    bar_figure(out.with_suffix(".png"), [r["workers"] for r in rows], [r["images_per_s"] for r in rows],
               "images / s (ADM crop, 256 px)", f"ImageNet JPEG decoding ({prov['hardware']})")
    print(f"written: {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
