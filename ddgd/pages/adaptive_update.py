"""The page "Adaptive update": the self-adaptive memory rule against FIFO, step by step (book page The method, `eq-adaptive`).

`track_rule` replays a stream of items through one registered rule and records what it keeps;
`naive_adaptive` is the rule written out as a loop, the reference the registered one is checked
against on the page and in the tests.
"""
from __future__ import annotations
import math
import pandas as pd
import torch
import torch.nn.functional as F
from ddgd.method.memory import UPDATE_RULES
from ddgd.pages.memory_initialisation import diversity_stats


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
        u = F.normalize(flat[keep], dim=1)
        s = (u @ u.T).sum(1)
        k = int(torch.argmax(s)) if largest else int(torch.argmin(s))  # first index on ties
        keep = torch.cat([keep[:k], keep[k + 1:]])
    return keep
