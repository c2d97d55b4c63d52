"""Figure 4 of the paper: accuracy against each hyperparameter of DDGD, one panel per parameter.

The sweeps themselves (their points, runs and rows) are `ddgd.experiments.variants`; this module
draws them and writes the page's sentence.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ddgd.experiments import statistics
from ddgd.experiments.comparisons import paired_phrase
from ddgd.experiments.variants import SWEEPABLE, check_param, sweep_summary


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
        check_param(p)
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
    spread is the median over the values of the min-max range of the runs of one value (the median,
    so that one value where training breaks down does not set it); a range of means below it says
    the parameter's effect is not told apart from seed noise at this scale. The best value is then
    compared with the main experiments' setting paired by seed (`against_setting`).
    """
    s = sweep_summary(frame)
    if s.empty:
        return "No sweep runs yet: run the notebook with `compute=True`."
    f, lines = f".{decimals}f", []
    for (param, net, ipc), g in s.groupby(["param", "network", "ipc"], sort=False):
        symbol, best = SWEEPABLE[param][0], g.loc[g["mean"].idxmax()]
        spread, span = (g["max"] - g["min"]).median(), g["mean"].max() - g["mean"].min()
        mark, at = marks.get(param), g[g["value"] == marks.get(param)]
        default = (f"the setting of the main experiments ({mark:g}) gives {at['mean'].iloc[0]:{f}} %" if len(at)
                   else f"the setting of the main experiments ({mark}) has no runs")
        noise = ("with one run per value there is no seed spread to compare with" if g["n"].max() < 2 else
                 f"{'more' if span > spread else 'no more'} than the median spread between seeds at one value "
                 f"({spread:{f}} points)")
        lines.append(f"- **{symbol}** ({net}, IPC {ipc}): the best mean, {best['mean']:{f}} %, is at {best['value']:g} "
                     f"of {len(g)} value(s); {default}; the means span {span:{f}} points, {noise}; "
                     f"{against_setting(frame, param, net, ipc, best['value'], mark, decimals)}.")
    return "\n".join(lines)


def against_setting(frame: pd.DataFrame, param: str, network: str, ipc: int, value: float, mark: float | None,
                    decimals: int = 1, name: str = "the setting of the main experiments") -> str:
    """The runs at `value` against those at `mark` (`name`: what `mark` is), paired by seed, in words.

    `value` is the best of the sweep, picked from these same runs: the difference is the largest of
    several and so biased upwards, which the phrase says. The statistics are the tables'
    (`ddgd.experiments.statistics`: bootstrap interval over seeds, no verdict under 6 pairs).
    """
    if mark is not None and value == mark:
        return f"the best mean is at {name} itself"
    cell = frame[(frame["param"] == param) & (frame["network"] == network) & (frame["ipc"] == ipc)]
    a, b = cell[cell["value"] == value], cell[cell["value"] == mark]
    if mark is None or b.empty:
        return f"{name} has no runs to pair the best value with"
    p = statistics.paired_statistics(statistics.pair_by_seed(a["seed"], a["best"], b["seed"], b["best"]))
    phrase = paired_phrase(p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low, p.ci_high, p.verdict, p.seeds_needed,
                           decimals=decimals)
    return (f"the best value against {name}, paired by seed (the best of several values, so the difference is "
            f"biased upwards): {phrase}")


def describe_choice(frame: pd.DataFrame, param: str, chosen: float, preset: str, decimals: int = 1) -> str:
    """The sentence on `preset`'s value of `param` against its sweep: the best mean, and whether it lies inside the range."""
    s = sweep_summary(frame)
    g = s[s["param"] == param].sort_values("value")
    symbol = SWEEPABLE[param][0]
    if g.empty:
        return f"The sweep of {symbol} has no runs yet."
    best = g.loc[g["mean"].idxmax()]
    inside = best["value"] not in (g["value"].min(), g["value"].max())
    at = g[g["value"] == chosen]
    there = f"{at['mean'].iloc[0]:.{decimals}f} %" if len(at) else "no runs in this sweep"
    edge = "inside the range swept" if inside else "at the edge of the range swept: the optimum may lie beyond it"
    paired = against_setting(frame, param, g["network"].iloc[0], g["ipc"].iloc[0], best["value"], chosen, decimals,
                             "the preset value")
    return (f"The best mean of the {symbol} sweep, {best['mean']:.{decimals}f} %, is at {best['value']:g}, {edge}; "
            f"the preset `{preset}` uses {symbol} = {chosen:g} ({there}); {paired}.")
