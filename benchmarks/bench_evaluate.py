"""Throughput of the evaluation loop (issue 3, item 5): ConvNet-3, 32 px, one channel, batch 64.

Three ways to run the same training step of the hard-label protocol (book page Parity):

* ``reference``: the usual eager loop, as IDC and Minimax write it: a Dataset of PIL images,
  torchvision's per-image transforms (RandomResizedCrop, RandomHorizontalFlip, ColorJitter,
  ToTensor, Normalize) through a DataLoader (no worker processes: the machine's cores are busy
  with the network), CutMix per batch, eager network;
* ``batched-eager``: `ddgd.protocol.evaluate.train_step`: images held as one uint8 tensor, augmentation on
  the whole batch (`ddgd.protocol.augment`), eager network;
* ``batched-compiled``: the same with the network compiled by torch.compile (compilation time is
  reported apart, as warm-up, and left out of the throughput).

The paths take turns in rounds, so that other work on a shared machine slows them alike; the
load average is recorded with the result.

Images are random uint8 arrays: throughput does not depend on their content. The script writes
one CSV row per path (default ``benchmarks/results/evaluate.csv``) and prints the ratios against
the reference. Usage: ``python benchmarks/bench_evaluate.py [--steps 30] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ddgd.protocol.augment import cutmix
from ddgd.config import EvalConfig
from ddgd.protocol.evaluate import _Net, channel_stats, train_step
from ddgd.protocol.networks import build
from ddgd.base.provenance import provenance

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "evaluate.csv"


class PILDataset(Dataset):
    """Per-image transforms on PIL images, the way torchvision's ImageFolder feeds a network."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images = [Image.fromarray(a) for a in images]  # [H, W] uint8 each
        self.labels, self.transform = labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


class Reference:
    """The usual loop: DataLoader over PIL images with per-image transforms, eager network."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, cfg: EvalConfig, seed: int):
        torch.manual_seed(seed)
        mean, std = channel_stats(images)
        tf = transforms.Compose([
            transforms.RandomResizedCrop(cfg.image_size, scale=(cfg.crop_scale, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=cfg.colour_jitter, contrast=cfg.colour_jitter),  # grey: no saturation
            transforms.ToTensor(),
            transforms.Normalize(mean.tolist(), std.tolist()),
        ])
        self.loader = DataLoader(PILDataset(images[:, 0].numpy(), labels.numpy(), tf), batch_size=cfg.batch_size,
                                 shuffle=True, drop_last=True, num_workers=0,
                                 generator=torch.Generator().manual_seed(seed))
        self.batches = iter(self.loader)
        self.model = build("convnet-3", 10, 1, cfg.image_size)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        self.cfg, self.gen = cfg, torch.Generator().manual_seed(seed)

    def run(self, steps: int) -> int:
        seen = 0
        for _ in range(steps):
            try:
                x, y = next(self.batches)
            except StopIteration:
                self.batches = iter(self.loader)
                x, y = next(self.batches)
            x, ya, yb, lam = cutmix(x, y, self.cfg.cutmix_beta, self.gen)
            out = self.model(x)
            loss = lam * F.cross_entropy(out, ya) + (1 - lam) * F.cross_entropy(out, yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            seen += len(y)
        return seen


class Batched:
    """`ddgd.protocol.evaluate.train_step` on batches of one uint8 tensor, eager or compiled."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, cfg: EvalConfig, seed: int, compiled: bool):
        torch.manual_seed(seed)
        self.mean, self.std = channel_stats(images)
        model = build("convnet-3", 10, 1, cfg.image_size)
        self.opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        self.net = _Net(model, compiled)
        self.images, self.labels, self.cfg = images, labels, cfg
        self.gen = torch.Generator().manual_seed(seed)

    def run(self, steps: int) -> int:
        n, bs = len(self.images), self.cfg.batch_size
        for _ in range(steps):
            idx = torch.randint(0, n, (bs,), generator=self.gen)
            train_step(self.net, self.opt, self.images[idx], self.labels[idx], self.mean, self.std, self.cfg,
                       self.gen)
        return steps * bs


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per path")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    ap.add_argument("--rounds", type=int, default=3, help="the paths take turns this many times")
    ap.add_argument("--images", type=int, default=640, help="training images held in memory")
    ap.add_argument("--paths", default="reference,batched-eager,batched-compiled")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = EvalConfig(image_size=32, batch_size=64)
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (args.images, 1, 28, 28), generator=gen, dtype=torch.uint8)  # Fashion-MNIST size
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    paths = args.paths.split(",")
    runners, warm = {}, {}
    for path in paths:
        if path == "reference":
            runners[path] = Reference(images, labels, cfg, args.seed)
        elif path in ("batched-eager", "batched-compiled"):
            runners[path] = Batched(images, labels, cfg, args.seed, compiled=path == "batched-compiled")
        else:
            raise SystemExit(f"unknown path {path!r}: choose from reference, batched-eager, batched-compiled")
        t = time.perf_counter()
        runners[path].run(args.warmup)  # compilation happens here
        warm[path] = time.perf_counter() - t
    # Interleave the paths in rounds, so that a change in the machine's load hits all of them alike.
    seen = dict.fromkeys(paths, 0)
    spent = dict.fromkeys(paths, 0.0)
    per_round = max(1, args.steps // args.rounds)
    for _ in range(args.rounds):
        for path in paths:
            t = time.perf_counter()
            seen[path] += runners[path].run(per_round)
            spent[path] += time.perf_counter() - t
    prov = provenance()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for path in paths:
        ips = seen[path] / spent[path]
        rows.append(dict(path=path, network="convnet-3", image_size=cfg.image_size, channels=1,
                         batch_size=cfg.batch_size, steps=per_round * args.rounds, images_per_second=round(ips, 1),
                         warmup_s=round(warm[path], 1), threads=torch.get_num_threads(), load_average=round(load, 2),
                         hardware=prov["hardware"], torch=prov["torch"], commit=prov["commit"]))
        print(f"{path:>17}: {ips:7.1f} images/s (warm-up {warm[path]:.1f} s)", flush=True)
    ref = next((r["images_per_second"] for r in rows if r["path"] == "reference"), None)
    for r in rows:
        r["ratio_to_reference"] = round(r["images_per_second"] / ref, 2) if ref else ""
        if ref and r["path"] != "reference":
            print(f"{r['path']} / reference: {r['ratio_to_reference']:.2f}x")
    write_csv(args.out, rows)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
