"""The page "Is DDGD more diverse, and does it matter?": diversity of the distilled sets against their accuracy.

The paper's claim has two parts: the self-adaptive memory makes the distilled set more diverse,
and a more diverse set trains a better network. The page reads two tidy result files of the same
runs (one row per method, IPC, network and seed; `ddgd.experiments.results`) and their diversity
rows (one per method, IPC, seed and class; `ddgd.experiments.diversity`), and answers each part
from the numbers:

* `diversity_of`: the diversity rows of a config's runs (computed where the file lacks them,
  from the runs' pools), the whole set against the whole reference (class "all");
* `joined`: accuracy and diversity side by side, one row per method and seed;
* `set_table`: per method, the mean of each over the seeds;
* `rank_correlations`: Spearman's rank correlation of accuracy with each diversity measure,
  over every method x seed and over the generative methods alone (scipy.stats.spearmanr);
* `scatter_figure`, `describe_correlations`: the figure and the sentences.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from ddgd.config import SAMPLE_STAGES, RunConfig, config_hash
from ddgd.experiments.diversity import DIVERSITY_COLUMNS, DiversitySpec, diversity_path, run_diversity, space_kind
from ddgd.experiments.runs import GENERATIVE, run_config

MEASURES = {"coverage": "coverage", "recall": "recall", "vendi": "Vendi score", "precision": "precision",
            "density": "density"}
WHOLE_SET = "all"  # the class of a row that measures the whole set against the whole reference
KEY = ("method", "seed", "ipc", "class", "config_hash")  # one set's row of one class, in one feature space


def _expected(cfg: RunConfig, methods: Sequence[str]) -> set[tuple]:
    return {(m, int(s), int(ipc), config_hash(run_config(cfg, m, s, ipc), *SAMPLE_STAGES))
            for m in methods for s in cfg.eval.seeds for ipc in cfg.eval.ipcs}


def diversity_of(cfg: RunConfig, methods: Sequence[str], csv: str | Path, root: str | Path, compute: bool = False,
                 spec: DiversitySpec = DiversitySpec(), progress: bool = False) -> pd.DataFrame:
    """The whole-set diversity rows of `cfg` x `methods` (`<csv stem>.diversity.csv`); with `compute`, the
    missing ones are measured first from the pools under `root` (run the accuracy rows first: they sample them),
    each method's missing seeds only, so the pools of sets already measured need not be on disk."""
    path = diversity_path(csv)
    methods = [m for m in methods if m != "full"]  # the real training set itself: no set to measure
    want = _expected(cfg, methods)

    def read() -> pd.DataFrame:
        df = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=list(DIVERSITY_COLUMNS))
        df = df[df["feature_space"].astype(str).map(space_kind) == spec.features]  # one feature space only
        keys = zip(df["method"].astype(str), df["seed"].astype(int), df["ipc"].astype(int), df["config_hash"].astype(str))
        df = df[pd.Series([k in want for k in keys], index=df.index, dtype=bool)]
        # a set measured twice in one space (another spec, e.g. another reference size): its newest row
        return df.sort_values("timestamp", kind="stable").drop_duplicates(list(KEY), keep="last")

    have = read()
    lacking = want - {tuple(k) for k in have[["method", "seed", "ipc", "config_hash"]].itertuples(index=False)}
    if compute and lacking:
        by_seeds: dict[tuple, list[str]] = {}  # methods that lack the same seeds share one measurement
        for method in methods:
            seeds = tuple(s for s in cfg.eval.seeds if any(k[:2] == (method, s) for k in lacking))
            if seeds:
                by_seeds.setdefault(seeds, []).append(method)
        for seeds, group in by_seeds.items():
            run_diversity(replace(cfg, eval=replace(cfg.eval, seeds=seeds)), tuple(group), root, csv, spec, progress)
        have = read()
    return have[have["class"].astype(str) == WHOLE_SET].reset_index(drop=True)


def joined(accuracy: pd.DataFrame, diversity: pd.DataFrame) -> pd.DataFrame:
    """One row per method, IPC and seed: `best` accuracy (mean over networks) beside the whole-set measures."""
    acc = accuracy.groupby(["method", "ipc", "seed"], as_index=False)["best"].mean()
    div = diversity[["method", "ipc", "seed", *MEASURES]]
    return acc.merge(div, on=["method", "ipc", "seed"], how="inner", validate="one_to_one")


def set_table(frame: pd.DataFrame, methods: Sequence[str], decimals: int = 3) -> pd.DataFrame:
    """Per method (in `methods` order) and IPC: seeds, mean accuracy and its std, and the mean of each measure."""
    g = frame.groupby(["method", "ipc"])
    table = g[["best", *MEASURES]].mean().join(g["best"].std().rename("best std")).join(g.size().rename("seeds"))
    table = table.reindex([m for m in methods if m in frame.method.unique()], level="method")
    cols = ["seeds", "best", "best std", *MEASURES]
    return table[cols].rename(columns={"best": "accuracy (%)", "best std": "accuracy std",
                                       **{m: MEASURES[m] for m in MEASURES}}).round(decimals)


def rank_correlations(frame: pd.DataFrame, groups: dict[str, Sequence[str]]) -> pd.DataFrame:
    """Spearman's rho of `best` with each measure, and its two-sided p-value, over the rows of each group's methods."""
    from scipy.stats import spearmanr

    rows = []
    for name, methods in groups.items():
        part = frame[frame.method.isin(methods)]
        for m in MEASURES:
            rho, p = spearmanr(part["best"], part[m]) if len(part) >= 3 else (float("nan"), float("nan"))
            rows.append(dict(group=name, measure=MEASURES[m], rho=float(rho), p=float(p), points=len(part)))
    return pd.DataFrame(rows)


def describe_correlations(corr: pd.DataFrame, alpha: float = 0.05) -> str:
    """Each group's correlations in words: which measures rank the sets as their accuracy does."""
    out = []
    for name, part in corr.groupby("group", sort=False):
        sig = part[part.p < alpha]
        listed = ", ".join(f"{r.measure} (rho {r.rho:+.2f}, p {r.p:.2g})" for r in part.itertuples())
        text = f"Over {name} ({int(part.points.iloc[0])} sets): {listed}."
        if sig.empty:
            text += f" None of them is correlated with accuracy at the {alpha:g} level."
        else:
            for sign, word in ((1, "higher"), (-1, "lower")):
                names = [r.measure for r in sig.itertuples() if r.rho * sign > 0]
                if names:
                    listed_names = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
                    text += f" Higher {listed_names} go{'es' if len(names) == 1 else ''} with {word} accuracy (p < {alpha:g})."
        out.append(text)
    return " ".join(out)


def scatter_figure(frame: pd.DataFrame, methods: Sequence[str], measures: Sequence[str] = ("coverage", "vendi")):
    """Accuracy against each measure, one point per method and seed, one colour per method."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(measures), figsize=(5.5 * len(measures), 3.8))
    for i, method in enumerate(m for m in methods if m in frame.method.unique()):
        part = frame[frame.method == method]
        for ax, m in zip(axes, measures):
            ax.scatter(part[m], part["best"], color=f"C{i}", label=method, s=22)
    for ax, m in zip(axes, measures):
        ax.set(xlabel=f"{MEASURES[m]} of the distilled set", ylabel="best test accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
