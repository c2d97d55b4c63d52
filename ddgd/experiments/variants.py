"""Variants of one configuration: the sweeps of Figure 4 and the configurations of Tables 2 and 3.

Figure 4 of the paper varies one hyperparameter of DDGD at a time around the values of its main
experiments (lambda_r 0.002, lambda_g 0.008, N_R = N_G = 64), three runs per point, and plots the
mean accuracy with a band from the minimum to the maximum run. Here:

* `sweep_configs` turns one parameter's values into configs, each with a `variant` label such as
  ``finetune.lambda_r=0.004``. The point that equals the base config (the paper's default) is shared
  by every sweep: its label lists the values of all four parameters, ``default: finetune.lambda_r=0.002,
  ...``, so one run serves the four panels.
* `run_sweep` runs the points that the results CSV lacks through `ddgd.experiments.pipeline.run_experiment`
  (method ``ddgd``), each in its own folder, and nothing else: a complete CSV costs nothing.
* `sweep_runs` keeps the rows of a CSV that belong to the sweep (by config hash, not by label);
  `sweep_frame` parses their labels into a tidy frame (param, value, ipc, network, seed, best).
* `ddgd.pages.figure4` draws the four panels and says in words what they show.

Tables 2 and 3 compare a few named configurations (`Variant`: Table 2's datasets, Table 3's
ablation rows): `variant_configs` resolves them, `run_variants` runs what the CSV lacks, each in
its own folder, and returns their rows; `design_table` shows what each one runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ddgd.config import SAMPLE_STAGES, ConfigError, RunConfig, config_hash, resolve
from ddgd.experiments.comparisons import slug
from ddgd.experiments.report import load_results, run_hashes, select_runs
from ddgd.experiments.results import completed_runs, run_key
from ddgd.experiments.runs import with_seed

METHOD = "ddgd"
# The swept parameters in the paper's panel order: symbol, what it is, base of the logarithmic x-axis
# (the weights span decades; the memory sizes are doubled from point to point).
SWEEPABLE: dict[str, tuple[str, str, int]] = {
    "finetune.lambda_r": (r"$\lambda_r$", "weight of the real-memory term", 10),
    "finetune.lambda_g": (r"$\lambda_g$", "weight of the generated-memory term", 10),
    "finetune.n_real": (r"$N_R$", "size of the real memory", 2),
    "finetune.n_gen": (r"$N_G$", "size of the generated memory", 2),
}
DEFAULT_PREFIX = "default: "
_PAIR = re.compile(r"^(finetune\.\w+)=(.+)$")
FRAME_COLUMNS = ("param", "value", "ipc", "network", "seed", "best", "default")


def check_param(param: str) -> None:
    if param not in SWEEPABLE:
        raise ConfigError(f"cannot sweep {param!r}: choose one of {', '.join(SWEEPABLE)}")


def param_value(cfg: RunConfig, param: str) -> float | int:
    """The value of ``section.field`` in `cfg`."""
    check_param(param)
    section, name = param.split(".", 1)
    return getattr(getattr(cfg, section), name)


def defaults(cfg: RunConfig) -> dict[str, float | int]:
    """The value of every sweepable parameter in `cfg`: where the dashed lines of Figure 4 go."""
    return {p: param_value(cfg, p) for p in SWEEPABLE}


def point_label(param: str, value: float | int) -> str:
    """``finetune.lambda_r=0.004``: repr, so that a float reads back exactly."""
    return f"{param}={value!r}"


def default_label(cfg: RunConfig) -> str:
    """The label of the shared default point: the values of all sweepable parameters."""
    return DEFAULT_PREFIX + ", ".join(point_label(p, v) for p, v in defaults(cfg).items())


def _coerce(param: str, current: float | int, value) -> float | int:
    """`value` in the type of the field, so that 64 and 64.0 (or 1 and 1.0) give the same config hash."""
    if isinstance(current, int):
        if float(value) != int(float(value)):
            raise ConfigError(f"{param} takes whole numbers, got {value!r}")
        return int(float(value))
    return float(value)


def sweep_configs(cfg: RunConfig, param: str,
                  values: Sequence[float | int]) -> list[tuple[float | int, RunConfig, str]]:
    """(value, config, variant label) for every value of `param`, the other parameters as in `cfg`.

    Values must be positive (the figure's x-axes are logarithmic; Table 3 covers the terms switched
    off) and distinct. The value that reproduces `cfg` gets `default_label(cfg)`.
    """
    current = param_value(cfg, param)
    if not values:
        raise ConfigError(f"no values given for {param}: give at least one")
    typed = [_coerce(param, current, v) for v in values]
    if any(v <= 0 for v in typed):
        raise ConfigError(f"{param} values {typed} must all be positive (log axes); Table 3 switches the terms off")
    if len(set(typed)) != len(typed):
        raise ConfigError(f"{param} values {typed} repeat a value: give each value once")
    out = []
    for value in typed:
        point = resolve(cfg, {param: value})
        out.append((value, point, default_label(cfg) if point == cfg else point_label(param, value)))
    return out


def sweep_points(cfg: RunConfig, sweeps: dict[str, Sequence[float | int]]) -> list[tuple[str, RunConfig]]:
    """The distinct (label, config) points of all sweeps, the shared default point once."""
    seen: dict[str, tuple[str, RunConfig]] = {}
    for param, values in sweeps.items():
        for _, point, label in sweep_configs(cfg, param, values):
            seen.setdefault(config_hash(point), (label, point))
    return list(seen.values())


def point_keys(point: RunConfig) -> set[tuple]:
    """The result keys (`ddgd.experiments.results.run_key`) that `run_experiment(point, ("ddgd",), ...)` writes."""
    return {run_key(m, point.data.dataset, ipc, net, seed, h) for m, seed, h in run_hashes(point, (METHOD,))
            for ipc in point.eval.ipcs for net in point.eval.networks}


def pending(cfg: RunConfig, sweeps: dict[str, Sequence[float | int]], csv: str | Path) -> list[tuple[str, RunConfig]]:
    """The points of the sweep that lack at least one result row in `csv`."""
    done = completed_runs(csv)
    return [(label, point) for label, point in sweep_points(cfg, sweeps) if not point_keys(point) <= done]


def point_folder(label: str, point: RunConfig) -> str:
    """Folder of a point's runs: the label's short form and the hash of what the runs depend on.

    The hash keeps runs of another preset or scale out of each other's folders.
    """
    name = "default" if label.startswith(DEFAULT_PREFIX) else label.split(".", 1)[1]
    return f"{name}-{config_hash(point, *SAMPLE_STAGES)[:8]}"


def run_sweep(cfg: RunConfig, sweeps: dict[str, Sequence[float | int]], root: str | Path, csv: str | Path,
              progress: bool = True) -> Path:
    """Fine-tune, sample and evaluate DDGD at every point the CSV lacks; returns the CSV path.

    Each point runs every seed, IPC and network of its config (`eval.seeds`, `eval.ipcs`,
    `eval.networks`) and writes its label into the `variant` column.
    """
    from ddgd.experiments.pipeline import run_experiment  # deferred: experiment imports torch-heavy modules

    for label, point in pending(cfg, sweeps, csv):
        run_experiment(point, (METHOD,), Path(root) / point_folder(label, point), csv, progress=progress,
                       variant=label)
    return Path(csv)


def sweep_runs(df: pd.DataFrame, cfg: RunConfig, sweeps: dict[str, Sequence[float | int]]) -> pd.DataFrame:
    """The rows of `df` that the sweep's points wrote (matched by config hash), labelled with their point."""
    parts = [select_runs(df, point, (METHOD,), variant=label) for label, point in sweep_points(cfg, sweeps)]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else df.iloc[0:0].assign(variant=pd.Series(dtype=str))


def parse_label(label: str) -> list[tuple[str, float, bool]]:
    """(param, value, is_default) for every pair of a sweep label; [] for a label of something else."""
    text = str(label)
    is_default = text.startswith(DEFAULT_PREFIX)
    pairs = [_PAIR.match(part) for part in text.removeprefix(DEFAULT_PREFIX).split(", ")]
    if not all(pairs) or any(m.group(1) not in SWEEPABLE for m in pairs):
        return []
    try:
        return [(m.group(1), float(m.group(2)), is_default) for m in pairs]
    except ValueError:
        return []


def sweep_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy rows (param, value, ipc, network, seed, best, default) from result rows with sweep labels.

    A row of the default point appears once per parameter its label lists; rows whose `variant` is
    not a sweep label (other experiments sharing the CSV) are left out.
    """
    rows = []
    for r in df.to_dict("records") if "variant" in df.columns else []:
        for param, value, is_default in parse_label(r["variant"]):
            rows.append((param, value, int(r["ipc"]), str(r["network"]), int(r["seed"]), float(r["best"]), is_default))
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    order = {p: i for i, p in enumerate(SWEEPABLE)}
    frame = frame.sort_values(["param", "value", "ipc", "network", "seed"], key=lambda s: s.map(order)
                              if s.name == "param" else s, kind="stable")
    return frame.reset_index(drop=True)


def sweep_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, min, max and number of runs of `best` per (param, value, ipc, network)."""
    g = frame.groupby(["param", "value", "ipc", "network"], sort=False)["best"]
    return g.agg(mean="mean", min="min", max="max", n="count").reset_index()


@dataclass(frozen=True)
class Variant:
    """One configuration of a comparison table: a dataset of Table 2, a row of Table 3.

    `tagged`: its rows carry `label` in the `variant` column (Table 3's rows differ by config, not
    by method); untagged rows are told apart by their config hash alone (Table 2's datasets).
    """
    label: str
    config: RunConfig
    methods: tuple[str, ...]
    tagged: bool = True


def variant_configs(preset: str, overrides: dict, specs: dict[str, dict], methods: Sequence[str] = (),
                    tagged: bool = True) -> list[Variant]:
    """One `Variant` per entry of `specs`: the preset, the shared overrides, then the entry's own.

    An entry's "method" key names its one method (Table 3's rows); without it every method of
    `methods` runs (Table 2's datasets).
    """
    out = []
    for label, spec in specs.items():
        own = {k: v for k, v in spec.items() if k != "method"}
        runs = (spec["method"],) if "method" in spec else tuple(methods)
        out.append(Variant(label, resolve(preset, {**overrides, **own}), runs, tagged))
    return out


def run_variants(variants: Sequence[Variant], root: str | Path, csv: str | Path, compute: bool = True,
                 progress: bool = False) -> pd.DataFrame:
    """Run what `csv` lacks of every variant (each in its own folder under `root`); return their rows.

    A fine-tuning run folder holds one configuration, hence one folder per variant. A rerun on a
    complete CSV computes nothing.
    """
    from ddgd.experiments.pipeline import run_experiment  # deferred: the pipeline imports torch-heavy modules

    for v in variants:
        if compute:
            run_experiment(v.config, v.methods, Path(root) / slug(v.label), csv, progress=progress,
                           variant=v.label if v.tagged else "")
    found = load_results(csv, missing_ok=True)
    parts = [select_runs(found, v.config, v.methods, variant=v.label if v.tagged else None) for v in variants]
    return pd.concat(parts, ignore_index=True)


def design_table(variants: Sequence[Variant]) -> pd.DataFrame:
    """What each variant runs, read from its resolved config: method, memory rule, lambdas, accumulation."""
    rows = []
    for v in variants:
        for method in v.methods:
            ft = with_seed(v.config, v.config.eval.seeds[0], method).finetune
            rows.append(dict(variant=v.label, method=method, rule=ft.rule or "none", lambda_r=ft.lambda_r,
                             lambda_g=ft.lambda_g, accumulate=ft.accumulate))
    return pd.DataFrame(rows).set_index("variant")
