"""The page "Memory initialisation": how the memories fill, and what they hold (book page The method, `eq-real`, `eq-gen`).

`fill_history` replays the label stream of the first steps of fine-tuning into the memories;
`memory_tensors` reads the memories of a checkpoint, and `diversity_stats` / `memory_summary`
measure what they hold, per class.
"""
from __future__ import annotations
from collections import Counter
from typing import Sequence
import torch.nn.functional as F
from ddgd.method.finetune import read_checkpoint
from ddgd.method.losses import cosine_matrix

from pathlib import Path
import torch
import pandas as pd
from typing import Mapping

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


def memory_tensors(run_dir: str | Path) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """(M_real[c], M_gen[c]) of every class, [m, d] each, read from a fine-tuning run's checkpoint."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the fine-tuning first (ddgd.experiments.pipeline.distill)")
    state = read_checkpoint(path, keys=("memories",))["memories"]
    if state is None:
        raise ValueError(f"the run in {run_dir} keeps no memories: use method minimax or ddgd")
    return {int(c): (state["real"][c]["items"], state["gen"][c]["items"]) for c in sorted(state["real"], key=int)}


def diversity_stats(items: torch.Tensor) -> dict[str, float]:
    """Redundancy of a memory [m, d]: mean and largest off-diagonal cosine, largest s_i (eq-adaptive)."""
    m = items.shape[0]
    u = F.normalize(items.reshape(m, -1).double(), dim=1)
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
