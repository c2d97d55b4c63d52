"""Start-up time of the command line: `ddgd --help` and `ddgd <command> --help`, in fresh processes.

Heavy imports (torch, diffusers, torchvision) happen inside the subcommands, so help is answered
before they load. One CSV row per command (median wall time of the repeats) and a bar chart beside
it; nothing is asserted.

    python benchmarks/bench_cli.py [--repeats 5] [--out benchmarks/results/cli.csv]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bar_figure, write_rows  # noqa: E402

from ddgd.base.provenance import provenance  # noqa: E402

COMMANDS = ["", "distill", "sample", "evaluate", "verify", "run", "report", "reproduce", "pretrain"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/cli.csv")
    args = p.parse_args()
    prov = provenance()
    rows = []
    for command in COMMANDS:
        argv = [sys.executable, "-m", "ddgd.cli", *([command] if command else []), "--help"]
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        rows.append(dict(command=f"ddgd {command} --help".replace("  ", " "), seconds=round(statistics.median(times), 3),
                         commit=prov["commit"], hardware=prov["hardware"]))
        print(f"{rows[-1]['command']:28s} {rows[-1]['seconds']:.3f} s")
    out = write_rows(args.out, rows)
    bar_figure(out.with_suffix(".png"), [r["command"].split()[1] for r in rows], [r["seconds"] for r in rows],
               "seconds (median)", f"command-line start-up ({prov['hardware']})")
    print(f"written: {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
