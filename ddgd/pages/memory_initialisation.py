"""The page "Memory initialisation": how the memories fill, and what they hold (book page The method, `eq-real`, `eq-gen`).

`fill_history` replays the label stream of the first steps of fine-tuning into the memories,
`memory_sizes` and `fill_milestones` read the filling off it; `memory_tensors` reads the memories
of a checkpoint, `sizes_agree` checks them against the stream, `memory_rows` decodes a few of their
items, and `diversity_stats` / `memory_summary` measure what they hold, per class. The page's
sentences come from `describe_all_full`, `describe_agreement` and `describe_similarity`.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import torch

from ddgd.method.checkpoints import read_checkpoint
from ddgd.method.similarity import cosine_matrix, unit
from ddgd.pages.walkthrough import decode_items

Memories = Mapping[int, tuple[torch.Tensor, torch.Tensor]]  # class -> (M_real[class] [m, d], M_gen[class] [m', d])


def fill_history(stream: Sequence[torch.Tensor], n_real: int, n_gen: int) -> pd.DataFrame:
    """Memory sizes of every class after every step, and whether the class added a term at that step.

    Both memories of class c receive one item per batch item of c (after the step's terms); whatever
    the rule, a memory holds min(size, items seen). `counted` is True when c is in the batch and its
    memories were non-empty before the step: a class seen for the first time adds no term (book page: The method).
    """
    classes = sorted(set(torch.cat(list(stream)).tolist()))
    seen = dict.fromkeys(classes, 0)
    rows = []
    for step, y in enumerate(stream, start=1):
        counts = Counter(y.tolist())
        for c in classes:
            n = counts.get(c, 0)
            rows.append(dict(step=step, label=c, in_batch=n > 0, counted=n > 0 and seen[c] > 0,
                             real=min(n_real, seen[c] + n), gen=min(n_gen, seen[c] + n)))
            seen[c] += n
    return pd.DataFrame(rows)


def memory_sizes(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """From `fill_history`: sizes of M_real and of M_gen [step x class], and per step the classes in the
    batch (`in_batch`) and those adding a memory term (`counted`)."""
    real = history.pivot(index="step", columns="label", values="real")
    gen = history.pivot(index="step", columns="label", values="gen")
    per_step = history.groupby("step").agg(in_batch=("in_batch", "sum"), counted=("counted", "sum"))
    return real, gen, per_step


def describe_all_full(step: int | None, stream_steps: int) -> str:
    """When every memory of every class is full: "after step N", or not within the stream followed (None)."""
    if step is None:
        return f"not within these {stream_steps} steps (raise stream_steps)"
    return f"after step {step}"


def fill_milestones(history: pd.DataFrame, n_real: int, n_gen: int, stream_steps: int) -> dict[str, object]:
    """What the page states about the filling, keyed as it glues them (`mi-<key>`).

    all-seen: the first step after which every class has items ("never" within the stream);
    all-full: `describe_all_full`; skipped: class terms skipped at a class's first appearance
    (eq-real, eq-gen); first-terms: the memory terms of the first step.
    """
    real, gen, per_step = memory_sizes(history)
    all_seen = real.index[(real > 0).all(axis=1)]
    all_full = real.index[((real == n_real) & (gen == n_gen)).all(axis=1)]
    return {"all-seen": int(all_seen[0]) if len(all_seen) else "never",
            "all-full": describe_all_full(int(all_full[0]) if len(all_full) else None, stream_steps),
            "skipped": int((history.in_batch & ~history.counted).sum()),
            "first-terms": int(per_step.counted.iloc[0])}


def memory_tensors(run_dir: str | Path) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """(M_real[c], M_gen[c]) of every class, [m, d] each, read from a fine-tuning run's checkpoint."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the fine-tuning first (ddgd.experiments.pipeline.distill)")
    state = read_checkpoint(path, keys=("memories",))["memories"]
    if state is None:
        raise ValueError(f"the run in {run_dir} keeps no memories: use method minimax or ddgd")
    return {int(c): (state["real"][c]["items"], state["gen"][c]["items"]) for c in sorted(state["real"], key=int)}


def sizes_agree(memories: Memories, stream: Sequence[torch.Tensor], steps: int, n_real: int, n_gen: int) -> bool:
    """Whether every class's memory sizes equal those `fill_history` predicts after `steps` of the stream."""
    expected = fill_history(stream[:steps], n_real, n_gen).query("step == @steps").set_index("label")
    return all((len(r), len(g)) == tuple(expected.loc[c, ["real", "gen"]]) for c, (r, g) in memories.items())


def describe_agreement(agree: bool) -> str:
    """The page's sentence on `sizes_agree`."""
    if agree:
        return "The sizes in the checkpoint are exactly those the label stream predicts."
    return "The sizes in the checkpoint differ from those the label stream predicts."


def memory_rows(vae, memories: Memories, names: Sequence[str], n_classes: int, n_show: int,
                shape: Sequence[int]) -> tuple[list[torch.Tensor], list[str]]:
    """Image rows for `image_grid`: the first `n_show` items of M_real and of M_gen of the first
    `n_classes` classes, decoded (uint8 [n, C, H, W] each), and their row labels."""
    rows, labels = [], []
    for c in list(memories)[:n_classes]:
        real, gen = memories[c]
        rows += [decode_items(vae, real[:n_show], shape), decode_items(vae, gen[:n_show], shape)]
        labels += [f"{names[c]}: real", f"{names[c]}: generated"]
    return rows, labels


def diversity_stats(items: torch.Tensor) -> dict[str, float]:
    """Redundancy of a memory [m, d]: mean and largest off-diagonal cosine, largest s_i (eq-adaptive)."""
    m = items.shape[0]
    u = unit(items.double())
    sim = u @ u.T  # [m, m], the S of eq-adaptive
    off = sim[~torch.eye(m, dtype=torch.bool)]
    nan = float("nan")
    return {"mean_cos": float(off.mean()) if m > 1 else nan, "max_cos": float(off.max()) if m > 1 else nan,
            "max_s": float(sim.sum(1).max()) if m else nan}


def memory_summary(memories: Memories) -> pd.DataFrame:
    """Per class: sizes, mean pairwise cosine inside M_real and inside M_gen, and between the two."""
    rows = [dict(label=c, n_real=len(r), n_gen=len(g), real_mean_cos=diversity_stats(r)["mean_cos"],
                 gen_mean_cos=diversity_stats(g)["mean_cos"], cross_mean_cos=float(cosine_matrix(r, g).mean()))
            for c, (r, g) in sorted(memories.items())]
    return pd.DataFrame(rows)


def describe_similarity(gen_cos: float, real_cos: float) -> str:
    """Whether the predictions are "more" or "less" alike among themselves than the real latents (mean cosine)."""
    return "more" if gen_cos > real_cos else "less"
