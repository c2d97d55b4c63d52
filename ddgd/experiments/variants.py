"""Hyperparameter sweeps of the paper's Figure 4 (book page: Figure 4): lambda_r, lambda_g, N_R, N_G.

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
* `plot_sweeps` draws the four panels; `describe_sweeps` says in words what they show.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ddgd.config import ConfigError, RunConfig, config_hash, resolve
from ddgd.experiments.results import completed_runs, run_key
from ddgd.experiments.report import run_hashes, select_runs

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


def _check_param(param: str) -> None:
    if param not in SWEEPABLE:
        raise ConfigError(f"cannot sweep {param!r}: choose one of {', '.join(SWEEPABLE)}")


def param_value(cfg: RunConfig, param: str) -> float | int:
    """The value of ``section.field`` in `cfg`."""
    _check_param(param)
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
    return f"{name}-{config_hash(point, 'model', 'data', 'finetune', 'sample')[:8]}"


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


# ------------------------------------------------------------------------------------- the figure
def _panel(ax, s: pd.DataFrame, param: str, mark: float | None) -> None:
    """One panel: mean line and min-max band per (network, IPC), dashed line at the paper's setting."""
    symbol, what, base = SWEEPABLE[param]
    several = s["network"].nunique() > 1
    for (net, ipc), g in s.groupby(["network", "ipc"], sort=True):
        g = g.sort_values("value")
        (line,) = ax.plot(g["value"], g["mean"], marker="o", label=f"{net}, IPC {ipc}" if several else f"IPC {ipc}")
        ax.fill_between(g["value"], g["min"], g["max"], color=line.get_color(), alpha=0.2, linewidth=0)
    if mark is not None:
        ax.axvline(mark, color="0.35", linestyle="--", linewidth=1, label="setting of the main experiments")
    ticks = sorted(set(s["value"]) | ({mark} if mark is not None else set()))
    ax.set_xscale("log", base=base)
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.minorticks_off()
    ax.margins(x=0.1)  # points on the edge values stay clear of the frame
    ax.set_title(f"{symbol}: {what}", fontsize=10)
    ax.set_xlabel(f"{symbol} (log scale)")
    if s.empty:
        ax.text(0.5, 0.5, "no runs yet", transform=ax.transAxes, ha="center", va="center", color="0.4")


def plot_sweeps(frame: pd.DataFrame, marks: dict[str, float], params: Sequence[str] | None = None) -> Figure:
    """Figure 4: one panel per parameter, mean accuracy over seeds with a band from the min to the max run.

    `marks` holds the settings of the main experiments (`defaults(cfg)`), drawn as dashed lines.
    """
    params = list(params or SWEEPABLE)
    for p in params:
        _check_param(p)
    s = sweep_summary(frame)
    fig, axes = plt.subplots(1, len(params), figsize=(3.3 * len(params), 3.4), sharey=True, squeeze=False)
    for ax, param in zip(axes[0], params):
        _panel(ax, s[s["param"] == param], param, marks.get(param))
    axes[0][0].set_ylabel("top-1 test accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        axes[0][0].legend(handles, labels, fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def describe_sweeps(frame: pd.DataFrame, marks: dict[str, float], decimals: int = 1) -> str:
    """One Markdown bullet per parameter (and network, IPC): best value, the default, range against seed spread.

    Computed from the numbers, so the sentences stay true whichever way the results go. The seed
    spread is the largest min-max range over the runs of one value; a range of means below it says
    the parameter's effect is not told apart from seed noise at this scale.
    """
    s = sweep_summary(frame)
    if s.empty:
        return "No sweep runs yet: run the notebook with `compute=True`."
    f, lines = f".{decimals}f", []
    for (param, net, ipc), g in s.groupby(["param", "network", "ipc"], sort=False):
        symbol, best = SWEEPABLE[param][0], g.loc[g["mean"].idxmax()]
        spread, span = (g["max"] - g["min"]).max(), g["mean"].max() - g["mean"].min()
        mark, at = marks.get(param), g[g["value"] == marks.get(param)]
        default = (f"the setting of the main experiments ({mark:g}) gives {at['mean'].iloc[0]:{f}} %" if len(at)
                   else f"the setting of the main experiments ({mark}) has no runs")
        noise = ("with one run per value there is no seed spread to compare with" if g["n"].max() < 2 else
                 f"{'more' if span > spread else 'no more'} than the largest spread between seeds at one value "
                 f"({spread:{f}} points)")
        lines.append(f"- **{symbol}** ({net}, IPC {ipc}): the best mean, {best['mean']:{f}} %, is at {best['value']:g} "
                     f"of {len(g)} value(s); {default}; the means span {span:{f}} points, {noise}.")
    return "\n".join(lines)
