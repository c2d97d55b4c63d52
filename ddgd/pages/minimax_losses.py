"""The page "Minimax losses": the two memory terms on one batch, class by class (book page The method, `eq-similarity`, `eq-real`, `eq-gen`).

`predict_batch` computes the predicted x0 of a batch; `class_blocks` and `term_pairs` show which
memory item each sample is pulled to (representativeness) and pushed from (diversity), and
`gradient_table` the size of each loss's gradient on the predicted x0.
"""
from __future__ import annotations
from typing import Mapping, Sequence
import numpy as np
import torch.nn.functional as F
from ddgd.method.diffusion import Schedule, q_sample
from ddgd.method.latents import LatentCache
from ddgd.method.losses import cosine_matrix, predicted_x0

from dataclasses import dataclass
import torch
import pandas as pd
from ddgd.pages.memory_initialisation import Memories


# ------------------------------------------------------------------------------- the minimax terms
@dataclass
class Batch:
    """One fine-tuning batch run through a frozen model: what `training_step` computes, without training."""

    y: torch.Tensor  # [B] local labels
    z0: torch.Tensor  # [B, c, h, w] real latents
    t: torch.Tensor  # [B] timesteps
    z_t: torch.Tensor  # [B, c, h, w] noisy latents (eq-forward)
    eps: torch.Tensor  # [B, c, h, w] the noise
    eps_pred: torch.Tensor  # [B, c, h, w] the model's noise prediction (detached)
    zhat: torch.Tensor  # [B, c, h, w] predicted clean latents (eq-x0, detached)


@torch.no_grad()
def predict_batch(model, cache: LatentCache, idx: torch.Tensor, class_index: torch.Tensor, schedule: Schedule,
                  generator: torch.Generator) -> Batch:
    """Sample z0 of images idx from the cache, noise them and predict eps and zhat (no label dropout)."""
    y = cache.labels[idx]
    z0 = cache.sample(idx, generator)
    t = torch.randint(0, len(schedule), (len(idx),), generator=generator)
    eps = torch.randn(z0.shape, generator=generator)
    z_t = q_sample(z0, t, eps, schedule)
    eps_pred = model(z_t, timestep=t, class_labels=class_index[y]).sample[:, : z0.shape[1]]
    return Batch(y, z0, t, z_t, eps, eps_pred, predicted_x0(z_t, eps_pred, schedule.alphas_cumprod, t))


def _extreme(pred: torch.Tensor, labels: torch.Tensor, c: int, items: torch.Tensor, largest: bool):
    """(batch index i, memory index m, sigma) of the smallest or largest similarity of class c's block."""
    idx = torch.nonzero(labels == c).squeeze(1)
    sim = cosine_matrix(pred[idx].detach(), items)  # [n_c, m]
    i, m = divmod(int(sim.argmax() if largest else sim.argmin()), sim.shape[1])
    return int(idx[i]), m, float(sim[i, m])


def _present(labels: torch.Tensor, memories: Memories) -> list[int]:
    return [c for c in sorted(set(labels.tolist())) if c in memories]


def class_blocks(pred: torch.Tensor, labels: torch.Tensor, memories: Memories, which: str):
    """The cosine blocks behind eq-real (`which="real"`) or eq-gen ("gen"), stacked for a heatmap.

    Returns (matrix [B, width] with NaN where a row's memory is shorter, order: the batch index of
    each row (sorted by class), marks: c -> (row, column) of the min (real) or max (gen) pair).
    """
    k = {"real": 0, "gen": 1}[which]
    order = torch.argsort(labels, stable=True)
    width = max([len(memories[c][k]) for c in _present(labels, memories)], default=0)
    matrix, marks = np.full((len(labels), width), np.nan), {}
    for c in _present(labels, memories):
        rows = torch.nonzero(labels[order] == c).squeeze(1)
        sim = cosine_matrix(pred[labels == c].detach(), memories[c][k])
        matrix[rows.numpy(), : sim.shape[1]] = sim.numpy()
        i, m, _ = _extreme(pred, labels, c, memories[c][k], largest=which == "gen")
        marks[c] = (int(torch.nonzero(order == i)), m)
    return matrix, order, marks


def term_pairs(pred: torch.Tensor, labels: torch.Tensor, memories: Memories) -> pd.DataFrame:
    """Per class: r_c (eq-real), g_c (eq-gen) and the (batch item, memory item) pair that sets each."""
    rows = []
    for c in _present(labels, memories):
        ri, rm, rs = _extreme(pred, labels, c, memories[c][0], largest=False)
        gi, gm, gs = _extreme(pred, labels, c, memories[c][1], largest=True)
        rows.append(dict(label=c, items=int((labels == c).sum()), r_c=1 - rs, real_item=ri, real_memory=rm,
                         g_c=gs, gen_item=gi, gen_memory=gm))
    return pd.DataFrame(rows)


def gradient_table(pred: torch.Tensor, grads: Mapping[str, torch.Tensor], labels: torch.Tensor, memories: Memories,
                   nudge: float = 0.05) -> pd.DataFrame:
    """What the gradient of L_real and L_gen (w.r.t. the predictions) does, per class and term.

    `grads["real"]`, `grads["gen"]`: [B, ...]. For the pair (i, m) that sets the term: how many items of
    the class get a gradient, its norm, `alignment` = sigma(-grad_i, memory item m) (eq-similarity;
    +sqrt(1 - sigma^2) is a pure pull, -sqrt(1 - sigma^2) a pure push), and sigma before and after
    moving pred_i by `nudge` * |pred_i| along -grad_i.
    """
    rows = []
    for c in _present(labels, memories):
        for k, term in enumerate(("real", "gen")):
            i, m, before = _extreme(pred, labels, c, memories[c][k], largest=term == "gen")
            g, p, item = grads[term][i].flatten(), pred[i].detach().flatten(), memories[c][k][m].flatten()
            moved = p - nudge * p.norm() * g / g.norm()
            rows.append(dict(label=c, term=term, item=i, memory_item=m, similarity=before,
                             after=float(F.cosine_similarity(moved, item.to(moved), dim=0)),
                             alignment=float(F.cosine_similarity(-g, item.to(g), dim=0)), grad_norm=float(g.norm()),
                             items_with_grad=int((grads[term][labels == c].flatten(1).norm(dim=1) > 0).sum())))
    return pd.DataFrame(rows)


def mean_multiplicity(stream: Sequence[torch.Tensor]) -> float:
    """Mean weight of a class term under accumulate="cumulative": (K + 1) / 2 for K classes, over batches."""
    return float(np.mean([(len(set(y.tolist())) + 1) / 2 for y in stream]))
