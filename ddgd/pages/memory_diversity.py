"""The memories' diversity during fine-tuning, for the pages "The self-adaptive memory update" and "Full run".

A fine-tuning run with memories logs, every `finetune.memory_log_every` steps, the mean pairwise
cosine similarity and the Vendi score of M_real and M_gen of every class
(`ddgd.method.memory_stats`). Here: reading that log (`memory_history`), averaging it over the
classes (`class_summary`), drawing it for one or more runs (`diversity_figure`) and saying in words
how the rules compare once the memories are full (`late_means`, `describe_rules`).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ddgd.experiments import statistics
from ddgd.experiments.comparisons import paired_phrase
from ddgd.method.checkpoints import read_checkpoint
from ddgd.method.memory_stats import LOG_COLUMNS

MEASURES = {"mean_cos": "mean pairwise cosine similarity (lower: more diverse)",
            "vendi": "Vendi score (effective number of distinct items)"}
MEMORIES = {"real": "$M_{real}$", "gen": "$M_{gen}$"}


def memory_history(run_dir: str | Path) -> pd.DataFrame:
    """The memory log of a run (LOG_COLUMNS): memory_log.csv of a finished run, else its checkpoint's log."""
    run_dir = Path(run_dir)
    if (run_dir / "memory_log.csv").is_file():
        return pd.read_csv(run_dir / "memory_log.csv")
    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the fine-tuning first (ddgd.experiments.pipeline.distill)")
    blob = read_checkpoint(path, keys=("history",))
    log = pd.DataFrame(blob.get("memory_log", []), columns=list(LOG_COLUMNS))
    return log.astype({"step": int, "class": int, "items": int, "mean_cos": float, "vendi": float})


def class_summary(log: pd.DataFrame) -> pd.DataFrame:
    """Per (memory, step): the mean over classes of each measure, and its smallest and largest class value."""
    g = log.groupby(["memory", "step"], sort=True)
    parts = {f"{m}_{agg}": g[m].agg(agg) for m in MEASURES for agg in ("mean", "min", "max")}
    return pd.DataFrame(parts).join(g["items"].mean().rename("items")).reset_index()


def _late(log: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """The rows of the last `fraction` of the logged steps (empty for an empty log)."""
    steps = sorted(log.step.unique())
    return log[log.step >= steps[int(len(steps) * (1 - fraction))]] if steps else log


def late_means(logs: dict[str, pd.DataFrame], fraction: float = 0.5) -> pd.DataFrame:
    """Mean of each measure over classes and over the last `fraction` of the logged steps: [run x (memory, measure)]."""
    rows = {label: _late(log, fraction).groupby("memory")[list(MEASURES)].mean().stack()
            for label, log in logs.items() if not log.empty}  # a run shorter than its log interval has no row
    return pd.DataFrame(rows).T


def by_class(logs: dict[str, pd.DataFrame], adaptive: str, fifo: str, memory: str, measure: str,
             fraction: float = 0.5) -> str:
    """The two runs' late class means of one measure, paired by class (the tables' bootstrap interval), in words.

    The difference is adaptive - FIFO over the classes of one run each; the verdict reads the sign
    as diversity (a lower similarity, a higher Vendi score: more diverse). It says how consistent
    the difference is across classes, not across seeds.
    """
    a, f = (_late(logs[r], fraction).groupby(["memory", "class"])[measure].mean().loc[memory] for r in (adaptive, fifo))
    p = statistics.paired_statistics(statistics.pair_by_seed(a.index, a, f.index, f))
    up, down = ("more diverse", "less diverse") if measure == "vendi" else ("less diverse", "more diverse")
    said = {statistics.BETTER: up, statistics.WORSE: down}.get(p.verdict, p.verdict)
    return paired_phrase(p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low, p.ci_high, said, None,
                         decimals=3 if measure == "mean_cos" else 2, unit="", pair_word="class")


def describe_rules(late: pd.DataFrame, adaptive: str, fifo: str, memory: str = "gen",
                   logs: dict[str, pd.DataFrame] | None = None) -> str:
    """Sentences comparing the two runs' `memory` (late means): which keeps it more diverse, by both measures.

    With the runs' `logs`, each measure's difference is also paired by class (`by_class`).
    """
    a, f = late.loc[adaptive, memory], late.loc[fifo, memory]
    name = {"gen": "M_gen", "real": "M_real"}[memory]
    cos = "lower" if a.mean_cos < f.mean_cos else "higher"
    ven = "higher" if a.vendi > f.vendi else "lower"
    both = cos == "lower" and ven == "higher"
    neither = cos == "higher" and ven == "lower"
    verdict = ("more diverse by both measures" if both else "less diverse by both measures" if neither
               else "more diverse by one measure and less by the other")
    text = (f"Under {adaptive}, {name} has a {cos} mean pairwise similarity ({a.mean_cos:.3f} against "
            f"{f.mean_cos:.3f} under {fifo}) and a {ven} Vendi score ({a.vendi:.2f} against {f.vendi:.2f}): "
            f"{verdict}.")
    if logs is None:
        return text
    return (text + f" Paired by class ({adaptive} - {fifo}): similarity "
            f"{by_class(logs, adaptive, fifo, memory, 'mean_cos')}; Vendi score "
            f"{by_class(logs, adaptive, fifo, memory, 'vendi')}.")


def diversity_figure(logs: dict[str, pd.DataFrame], title: str = ""):
    """One panel per measure: the class mean over steps per run (colour) and memory (solid M_real, dashed
    M_gen), with the range over classes shaded."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(MEASURES), figsize=(12, 3.6))
    for i, (label, log) in enumerate(logs.items()):
        if log.empty:  # fewer steps than the log interval
            continue
        s = class_summary(log)
        for memory, style in (("real", "-"), ("gen", "--")):
            part = s[s.memory == memory]
            for ax, m in zip(axes, MEASURES):
                ax.plot(part.step, part[f"{m}_mean"], style, color=f"C{i}", label=f"{label}, {MEMORIES[memory]}")
                ax.fill_between(part.step, part[f"{m}_min"], part[f"{m}_max"], color=f"C{i}", alpha=0.12)
    for ax, (m, what) in zip(axes, MEASURES.items()):
        ax.set(xlabel="fine-tuning step", ylabel=m.replace("_", " "), title=what)
    if any(not log.empty for log in logs.values()):
        axes[0].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no memory log (fewer steps than finetune.memory_log_every)", ha="center",
                     transform=axes[0].transAxes)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
