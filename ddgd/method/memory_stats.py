"""How diverse the memories are during fine-tuning: the mechanism the paper describes (book page The method).

The self-adaptive rule (eq-adaptive) removes the item with the largest similarity sum, to keep
M_real and M_gen diverse; FIFO (Minimax) keeps the newest items whatever they are. Every
`finetune.memory_log_every` steps `memory_log` records, per class and memory, two measures of the
items the memory holds at that step:

* the mean pairwise cosine similarity, the mean of S_ij (eq-similarity) over i != j: lower is more
  diverse. Of n items it is (sum_i s_i - n) / (n (n - 1)), with s the similarity sums of eq-adaptive;
* the Vendi score (Friedman and Dieng 2023) with the cosine kernel: exp(-sum_k lambda_k log lambda_k)
  over the eigenvalues lambda of S / n, the effective number of distinct items (1 for n copies of
  one item, n for n orthogonal ones).

Both are computed in float64 on the host from the items as stored. The Vendi score is written out
here rather than taken from the `vendi-score` package (an optional extra, and numpy-only) because
fine-tuning runs without the extras; tests check it against the package's `score_K`.
"""
from __future__ import annotations

import csv
import io
import math

import torch

from ddgd.method.similarity import unit

LOG_COLUMNS = ("step", "class", "memory", "items", "mean_cos", "vendi")


def cosine_matrix(items: torch.Tensor) -> torch.Tensor:
    """S [n, n] of items [n, ...]: S_ij = cos(x_i, x_j) (eq-similarity), in float64."""
    u = unit(items.detach().reshape(items.shape[0], -1).double())
    return u @ u.T


def mean_pairwise_cosine(items: torch.Tensor) -> float:
    """Mean of S_ij over the n (n - 1) ordered pairs i != j; NaN for fewer than two items."""
    n = items.shape[0]
    if n < 2:
        return math.nan
    s = cosine_matrix(items)
    return float((s.sum() - s.diagonal().sum()) / (n * (n - 1)))


def vendi_score(items: torch.Tensor) -> float:
    """exp of the Shannon entropy of the eigenvalues of S / n (Vendi score, order 1); NaN for no item.

    Eigenvalues that rounding makes zero or negative carry no mass (as the package drops them).
    """
    n = items.shape[0]
    if n == 0:
        return math.nan
    lam = torch.linalg.eigvalsh(cosine_matrix(items) / n)
    lam = lam[lam > 0]
    return float(torch.exp(-(lam * lam.log()).sum()))


def memory_log(memories, step: int) -> list[dict]:
    """One row (LOG_COLUMNS) per class and memory of `memories` (a `ClassMemories`) at `step`; None where a
    measure is undefined (mean_cos of fewer than two items).

    Reading the items is a host synchronisation on a GPU: it happens only at logged steps.
    """
    rows = []
    for label in sorted(memories.real):
        for name, bank in (("real", memories.real[label]), ("gen", memories.gen[label])):
            items = bank.tensor().cpu() if len(bank) else torch.empty(0, 1)
            rows.append(dict(step=int(step), **{"class": int(label)}, memory=name, items=int(items.shape[0]),
                             mean_cos=_value(mean_pairwise_cosine(items)), vendi=_value(vendi_score(items))))
    return rows


def _value(x: float) -> float | None:
    """None for an undefined measure (NaN), so that equal logs compare equal (a resumed run's checkpoint)."""
    return None if math.isnan(x) else x


def log_csv(rows: list[dict]) -> str:
    """The memory log as CSV text (LOG_COLUMNS), what a finished run writes as memory_log.csv."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(LOG_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
