"""The embedded benchmark: every method at several IPCs and networks, read from its result file.

The full CPU preset (`fashion-mnist`) writes one row per (method, IPC, network, seed) through
`ddgd.experiments.pipeline`, like every table of the book; this module adds what a table alone does not show:
accuracy against IPC per network (the mean over seeds as a line, the min-max over seeds as a band,
as in the paper's Figure 4) and what the evaluations cost, from the `wall_s` of each row.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ddgd.experiments.report import METHOD_ORDER, NETWORK_ORDER

REAL_BASELINES = ("full",)  # one point per network (all training images), drawn as a level line


def _ordered(values, order) -> list:
    rank = {v: i for i, v in enumerate(order)}
    return sorted(values, key=lambda v: (rank.get(v, len(rank)), str(v)))


def by_ipc(runs: pd.DataFrame, metric: str = "best") -> pd.DataFrame:
    """Mean, min and max of `metric` over seeds per (network, method, ipc); columns network, method, ipc, mean, lo, hi, n."""
    if runs.empty:
        return pd.DataFrame(columns=["network", "method", "ipc", "mean", "lo", "hi", "n"])
    g = runs.groupby(["network", "method", "ipc"])[metric]
    return g.agg(mean="mean", lo="min", hi="max", n="count").reset_index()


def plot_by_ipc(runs: pd.DataFrame, metric: str = "best") -> Figure:
    """One panel per network: top-1 accuracy against IPC (log scale), a line and min-max band per method.

    The `full` baseline (all training images) has no IPC: it is drawn as a dashed level line.
    """
    s = by_ipc(runs, metric)
    networks = _ordered(s["network"].unique(), NETWORK_ORDER) or ["(no runs)"]
    fig, axes = plt.subplots(1, len(networks), figsize=(4.2 * len(networks), 3.4), squeeze=False, sharey=True)
    colours = dict(zip(METHOD_ORDER, plt.get_cmap("tab10").colors))
    for ax, network in zip(axes[0], networks):
        part = s[s["network"] == network]
        for method in _ordered(part["method"].unique(), METHOD_ORDER):
            m = part[part["method"] == method].sort_values("ipc")
            colour = colours.get(method)
            if method in REAL_BASELINES:
                ax.axhline(m["mean"].iloc[0], color=colour, ls="--", lw=1, label=f"{method} (all images)")
                continue
            ax.plot(m["ipc"], m["mean"], marker="o", color=colour, label=method)
            ax.fill_between(m["ipc"], m["lo"], m["hi"], color=colour, alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xticks(sorted(part.loc[~part["method"].isin(REAL_BASELINES), "ipc"].unique()))
        ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
        ax.set_title(network)
        ax.set_xlabel("images per class (IPC)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} top-1 accuracy (%)")
    legend = {}  # every method of every panel, once (a method may have runs on one network only)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        axes[0][-1].legend(legend.values(), legend.keys(), fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def evaluation_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Minutes of evaluation (training the network and testing it) per network and IPC, summed over methods and seeds.

    `wall_s` is the wall time of one evaluation run as the row recorded it (with the number of
    threads in `hardware`); fine-tuning and sampling are not included.
    """
    if runs.empty:
        return pd.DataFrame()
    cells = runs.assign(ipc=runs["ipc"].where(~runs["method"].isin(REAL_BASELINES), other=-1))
    wide = (cells.groupby(["network", "ipc"])["wall_s"].sum() / 60).round(1).unstack("ipc")
    wide = wide.rename(columns=lambda c: "full" if c == -1 else f"IPC {c}")
    wide["all"] = wide.sum(axis=1)
    return wide.loc[_ordered(wide.index, NETWORK_ORDER)]
