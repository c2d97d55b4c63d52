"""Fine-tuning step time with 1 and 2 processes (torchrun, gloo on the CPU).

Runs `ddgd distill` of the digits-tiny preset with a larger batch, once as one process and once
under `torchrun --nproc_per_node 2` (the global batch split over the two ranks, the batch
reassembled for the loss and the memories, the gradients summed), each in a fresh folder, and
reads the wall time of the fine-tuning loop from the run's done.json. One CSV row per process
count (seconds a step, and the speed-up over one process) and a bar chart beside it; nothing is
asserted. On a 2-core machine with a tiny model the exchange between the ranks costs more than the
halved forward pass saves: the point of several ranks is GPUs with a model that fills them.

    python benchmarks/bench_ddp.py [--steps 30] [--batch 32] [--out benchmarks/results/ddp.csv]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bar_figure, write_rows  # noqa: E402

from ddgd.base.provenance import provenance  # noqa: E402


def step_seconds(processes: int, steps: int, batch: int, folder: Path) -> float:
    """Seconds a fine-tuning step takes with `processes` ranks (each of them on one thread)."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    overrides = [f"finetune.max_steps={steps}", f"finetune.batch_size={batch}", f"finetune.checkpoint_every={steps}",
                 "finetune.epochs=100"]
    cmd = [*launcher, "-m", "ddgd", "distill", "--preset", "digits-tiny", "--method", "ddgd", "--quiet",
           "--out", str(folder), *[a for o in overrides for a in ("-o", o)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DDGD_CACHE": str(folder / "cache")}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    done = json.loads((folder / "ddgd" / "seed0" / "done.json").read_text())
    return done["wall_s"] / done["steps"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default="benchmarks/results/ddp.csv")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            seconds = step_seconds(n, args.steps, args.batch, Path(tmp) / f"p{n}")
            rows.append({"processes": n, "step_s": seconds, "steps": args.steps, "global_batch": args.batch,
                         "backend": "gloo" if n > 1 else "none", **provenance()})
    for r in rows:
        r["speedup"] = rows[0]["step_s"] / r["step_s"]
    path = write_rows(args.out, rows)
    bar_figure(Path(args.out).with_suffix(".png"), [f"{r['processes']} process(es)" for r in rows],
               [1000 * r["step_s"] for r in rows], "ms a fine-tuning step",
               f"digits-tiny, global batch {args.batch}, one thread a process")
    for r in rows:
        print(f"{r['processes']} process(es): {1000 * r['step_s']:.1f} ms a step, speed-up {r['speedup']:.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
