"""The page "Adaptive update": the self-adaptive memory rule against FIFO, step by step (book page The method, `eq-adaptive`).

`track_rule` replays a stream of items through one registered rule and records what it keeps;
`kept_items`, `full_means`, `survivor_table` and `evenly_spaced` read the replays; `naive_adaptive`
is the rule written out as a loop, the reference the registered one is checked and timed against
on the page (`timing_table`) and in the tests. The page's sentences come from `describe_ranking`,
`describe_verdict`, `describe_shape`, `describe_speed` and `describe_same`.
"""
from __future__ import annotations

import math

from typing import Mapping, Sequence

import pandas as pd
import torch

from ddgd.config import PRESETS
from ddgd.method.memory import UPDATE_RULES, adaptive
from ddgd.method.similarity import unit
from ddgd.pages.memory_initialisation import diversity_stats
from ddgd.pages.walkthrough import time_call

Tracks = Mapping[str, tuple[pd.DataFrame, torch.Tensor]]  # rule -> `track_rule` (per-step stats, alive [steps, T])


# ------------------------------------------------------------------------------- update rules over a stream
def track_rule(stream: torch.Tensor, capacity: int, rule: str, per_step: int = 1) -> tuple[pd.DataFrame, torch.Tensor]:
    """Feed stream [T, ...] to one memory, `per_step` items a step, exactly as `MemoryBank.add` does.

    Returns per-step statistics (size, `diversity_stats`, mean and largest age in steps) and
    alive [steps, T]: True where stream item j is in the memory after step k.
    """
    flat = stream.reshape(len(stream), -1)
    steps = math.ceil(len(flat) / per_step)
    ids, alive, rows = torch.empty(0, dtype=torch.long), torch.zeros(steps, len(flat), dtype=torch.bool), []
    for k in range(steps):
        ids = torch.cat([ids, torch.arange(k * per_step, min((k + 1) * per_step, len(flat)))])
        if len(ids) > capacity:
            ids = ids[UPDATE_RULES[rule](flat[ids], capacity)]
        alive[k, ids] = True
        ages = k - torch.div(ids, per_step, rounding_mode="floor")
        rows.append(dict(step=k + 1, rule=rule, size=len(ids), **diversity_stats(flat[ids]),
                         mean_age=float(ages.float().mean()), max_age=int(ages.max())))
    return pd.DataFrame(rows), alive


def naive_adaptive(items: torch.Tensor, capacity: int, largest: bool = True) -> torch.Tensor:
    """eq-adaptive as written: rebuild S from the kept items after every removal. Kept row indices."""
    keep = torch.arange(items.shape[0])
    flat = items.reshape(items.shape[0], -1).double()
    while len(keep) > capacity:
        u = unit(flat[keep])
        s = (u @ u.T).sum(1)
        k = int(torch.argmax(s)) if largest else int(torch.argmin(s))  # first index on ties
        keep = torch.cat([keep[:k], keep[k + 1:]])
    return keep


# ------------------------------------------------------------------------------- what the rules keep
def kept_items(tracks: Tracks) -> dict[str, torch.Tensor]:
    """Per rule: the stream indices (arrival order) in the memory at the end of the stream."""
    return {rule: torch.nonzero(alive[-1]).squeeze(1) for rule, (_, alive) in tracks.items()}


def full_means(stats: pd.DataFrame, capacity: int) -> pd.DataFrame:
    """Per rule (in order of appearance): mean and largest cosine averaged over the steps the memory is full."""
    return stats[stats["size"] == capacity].groupby("rule", sort=False)[["mean_cos", "max_cos"]].mean()


def survivor_table(stats: pd.DataFrame, kept: Mapping[str, torch.Tensor], capacity: int) -> pd.DataFrame:
    """Per rule, at the end of the stream: oldest kept item, how many of the first `capacity` survive, mean
    age, and the redundancy of the kept memory (eq-similarity) at the end and while full."""
    rules = list(kept)
    final = stats.groupby("rule", sort=False).tail(1).set_index("rule")
    full = full_means(stats, capacity)
    return pd.DataFrame({
        "oldest kept item": [int(kept[r].min()) for r in rules],
        f"kept of the first {capacity}": [int((kept[r] < capacity).sum()) for r in rules],
        "mean age (steps)": final.mean_age, "mean cosine at the end": final.mean_cos,
        "mean cosine while full": full.mean_cos, "largest cosine while full": full.max_cos}, index=rules)


def evenly_spaced(indices: torch.Tensor, n: int) -> torch.Tensor:
    """At most n of `indices`, evenly spaced from the first to the last."""
    return indices[torch.linspace(0, len(indices) - 1, min(n, len(indices))).long()]


def describe_ranking(mean_cos: pd.Series) -> str:
    """The rules from the most diverse memory to the least: "adaptive (0.430), then fifo (0.512)..."."""
    return ", then ".join(f"{r} ({v:.3f})" for r, v in mean_cos.sort_values().items())


def describe_verdict(mean_cos: pd.Series) -> str:
    """Whether the self-adaptive memory (rule `adaptive`) is the least redundant: lowest mean cosine while full."""
    if mean_cos.sort_values().index[0] == "adaptive":
        return "As the rule intends, the self-adaptive memory is the least redundant of the three."
    return "Here the self-adaptive memory is not the least redundant of the three."


# ------------------------------------------------------------------------------- the cost of the rule
def timing_table(new_items: Sequence[int], capacity: int, dim: int, repeats: int,
                 generator: torch.Generator) -> pd.DataFrame:
    """Time `naive_adaptive` against `ddgd.method.memory.adaptive` (eq-adaptive) on random items.

    For each n in `new_items`, a full memory of `capacity` items [dim] receives n more; both rules
    bring it back to `capacity` (best of `repeats` calls, `time_call`), and `same items kept` says
    whether they agree.
    """
    rows = []
    for n_new in new_items:
        items = torch.randn(capacity + n_new, dim, generator=generator)
        same = torch.equal(adaptive(items, capacity), naive_adaptive(items, capacity))
        fast = time_call(lambda: adaptive(items, capacity), repeats)
        naive = time_call(lambda: naive_adaptive(items, capacity), repeats)
        rows.append({"new items": n_new, "naive (ms)": 1000 * naive, "incremental (ms)": 1000 * fast,
                     "speed-up": naive / fast, "same items kept": same})
    return pd.DataFrame(rows)


def paper_shape() -> tuple[int, int]:
    """The paper's memory for the timing: N_R items of 4 x (resolution / 8)^2 numbers (4 x 32 x 32 at 256 px)."""
    paper = PRESETS["imagewoof"]
    return paper.finetune.n_real, 4 * (paper.data.resolution // 8) ** 2


def describe_shape(capacity: int, dim: int, paper: tuple[int, int]) -> str:
    """Whether the timing runs at the paper's memory shape `paper` = (items, numbers per item)."""
    if (capacity, dim) == paper:
        return "the paper's shape"
    return f"smaller than the paper's {paper[0]} items of {paper[1]} numbers"


def describe_speed(speedup: float) -> str:
    """The page's remark when the rebuild is not slower than the incremental update (empty when it is)."""
    return "" if speedup > 1 else "At this small shape the loop's overhead outweighs the matrix products it saves."


def describe_same(same: pd.Series) -> str:
    """Whether both implementations kept the same items in every timed case: "always" or "not always"."""
    return "always" if same.all() else "not always"
