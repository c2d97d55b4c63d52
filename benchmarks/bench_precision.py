"""fp32 against bf16 autocast on the quick CPU preset: accuracy paired by seed, and wall time.

bf16 autocast (`model.precision`, `eval.precision`; ddgd.base.accel) pays on CPUs with AVX512-BF16 or
AMX units as on GPUs. Before it may become a default of a CPU preset, its accuracy has to be the
fp32 one's: this script runs DDGD on `fashion-mnist-quick` (fine-tuning, sampling, ConvNet-3 at IPC
10) once per seed in each precision, through `ddgd.experiments.variants.run_variants` (rows tagged
``fp32`` / ``bf16`` in the `variant` column), and compares them with the book's paired statistics
(`ddgd.experiments.statistics`: bf16 - fp32 paired by seed, bootstrap interval, verdict).

Each arm is one process (one thread), so the two can run side by side on two cores under the same
load; `--report` then reads the rows and writes the summary and the figure. Nothing is asserted.

    python benchmarks/bench_precision.py --arm fp32 & python benchmarks/bench_precision.py --arm bf16 & wait
    python benchmarks/bench_precision.py --report

Writes benchmarks/results/precision.csv (result rows, as every runner writes them),
precision.configs.json (their resolved configs), precision.times.json (each arm's wall time), precision-summary.csv (per arm: mean accuracy, wall time of the arm; the
paired statistics) and precision.png.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_rows  # noqa: E402

from ddgd.base.accel import bf16_units, torch_threads  # noqa: E402
from ddgd.base.provenance import provenance  # noqa: E402

PRESET = "fashion-mnist-quick"  # --preset digits-tiny: a seconds-long smoke run
ARMS = {"fp32": {"method": "ddgd"},
        "bf16": {"method": "ddgd", "model.precision": "bf16", "eval.precision": "bf16"}}


def variants(seeds: list[int], preset: str = PRESET):
    from ddgd.config.presets import FIRST_CPU_SETTINGS
    from ddgd.experiments.variants import variant_configs

    # The committed rows ran before the CPU presets took the reference protocol and their own lambda_g:
    # both arms keep the settings those rows ran with, so that a rerun extends them.
    return {v.label: v for v in variant_configs(preset, {"eval.seeds": seeds, **FIRST_CPU_SETTINGS}, ARMS)}


def run_arm(arm: str, seeds: list[int], csv: Path, runs: Path, preset: str = PRESET) -> float:
    """Run one arm's missing rows; its wall seconds are appended to <csv>.times.json (one entry per call)."""
    from ddgd.experiments.variants import run_variants

    start = time.perf_counter()
    with torch_threads(1):
        run_variants([variants(seeds, preset)[arm]], runs, csv, progress=True)
    wall = time.perf_counter() - start
    times = csv.with_suffix(".times.json")
    log = json.loads(times.read_text()) if times.exists() else []
    times.write_text(json.dumps(log + [dict(arm=arm, seeds=seeds, wall_s=wall)], indent=1))
    return wall


def report(seeds: list[int], csv: Path, preset: str = PRESET) -> Path:
    """The per-arm means and the paired difference bf16 - fp32, into precision-summary.csv and precision.png."""
    from ddgd.experiments.statistics import paired_table
    from ddgd.experiments.variants import run_variants

    rows = run_variants(list(variants(seeds, preset).values()), csv.parent, csv, compute=False)
    stats = paired_table(rows, method="bf16", baselines=("fp32",), column="variant")
    times = json.loads(csv.with_suffix(".times.json").read_text())
    wall = {arm: sum(t["wall_s"] for t in times if t["arm"] == arm) for arm in ARMS}
    prov = provenance()
    for col in ("commit", "hardware"):  # the runs' own, not this report's (another thread count)
        prov[col] = ", ".join(sorted(set(rows[col].astype(str))))
    summary = []
    for arm, part in rows.groupby("variant", sort=False):
        summary.append(dict(arm=arm, runs=len(part), mean_best=part["best"].mean(), min_best=part["best"].min(),
                            max_best=part["best"].max(), arm_wall_s=wall[arm], verdict="", **bf16_units(), **prov))
    s = stats.iloc[0]
    summary.append(dict(arm="bf16 - fp32", runs=int(s["n_pairs"]), mean_best=s["mean_diff"], min_best=s["ci_low"],
                        max_best=s["ci_high"], arm_wall_s=wall["bf16"] - wall["fp32"], verdict=s["verdict"],
                        **bf16_units(), **prov))
    out = write_rows(csv.with_name("precision-summary.csv"), summary)
    figure(rows, wall, out.with_name("precision.png"), f"DDGD, {preset}: fp32 vs bf16 autocast ({prov['hardware']})")
    for r in summary:
        print({k: r[k] for k in ("arm", "runs", "mean_best", "min_best", "max_best", "arm_wall_s")}, r.get("verdict", ""))
    return out


def figure(rows, wall: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, secs) = plt.subplots(1, 2, figsize=(7, 3))
    for seed, part in rows.groupby("seed"):
        part = part.set_index("variant").reindex(list(ARMS))
        acc.plot(list(ARMS), part["best"], marker="o", label=f"seed {seed}")
    acc.set_ylabel("best test accuracy (%)")
    acc.legend(fontsize=7)
    secs.bar(list(wall), [w / 60 for w in wall.values()], color="#4c72b0")
    secs.set_ylabel("minutes per arm (all seeds)")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arm", choices=list(ARMS), help="run this arm's missing rows (one thread)")
    p.add_argument("--report", action="store_true", help="write the summary and figure from the rows")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", default=PRESET)
    p.add_argument("--out", default="benchmarks/results/precision.csv")
    p.add_argument("--runs", default="runs/bench-precision", help="experiment folder (one per arm inside)")
    args = p.parse_args()
    if not (args.arm or args.report):
        p.error("give --arm fp32|bf16 or --report")
    csv = Path(args.out)
    csv.parent.mkdir(parents=True, exist_ok=True)
    if args.arm:
        print(f"{args.arm}: {run_arm(args.arm, args.seeds, csv, Path(args.runs), args.preset):.0f} s")
    if args.report:
        print(f"written: {report(args.seeds, csv, args.preset)}")


if __name__ == "__main__":
    main()
