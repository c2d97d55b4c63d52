"""The page "Minimax losses": the two memory terms on one batch, class by class (book page The method, `eq-similarity`, `eq-real`, `eq-gen`).

`predict_batch` computes the predicted x0 of a batch and `warm_up` fills the memories with it from
a frozen model; `class_blocks` and `term_pairs` show which memory item each sample is pulled to
(representativeness) and pushed from (diversity); `weighted_terms` weighs the terms of eq-total;
`gradient_table` and `gradient_effects` show what each loss's gradient does to the predicted x0;
`multiplicity_table` and `accumulate_ratios` what the `accumulate` switch changes. The page's
sentences come from `describe_gradient_share` and `describe_gradient_reach`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ddgd.config import FinetuneConfig
from ddgd.method.diffusion import Schedule, predicted_x0, q_sample
from ddgd.method.finetune import batch_indices
from ddgd.method.latents import LatentCache
from ddgd.method.losses import MinimaxTerms
from ddgd.method.memory import ClassMemories
from ddgd.method.similarity import cosine_matrix
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
def predict_batch(model, cache: LatentCache, idx: torch.Tensor, dit_labels: torch.Tensor, schedule: Schedule,
                  generator: torch.Generator) -> Batch:
    """Sample z0 of images idx from the cache, noise them and predict eps and zhat (no label dropout)."""
    y = cache.labels[idx]
    z0 = cache.sample(idx, generator)
    t = torch.randint(0, len(schedule), (len(idx),), generator=generator)
    eps = torch.randn(z0.shape, generator=generator)
    z_t = q_sample(z0, t, eps, schedule)
    eps_pred = model(z_t, timestep=t, class_labels=dit_labels[y]).sample[:, : z0.shape[1]]
    return Batch(y, z0, t, z_t, eps, eps_pred, predicted_x0(z_t, eps_pred, schedule.alphas_cumprod, t))


def warm_up(model, cache: LatentCache, dit_labels: torch.Tensor, schedule: Schedule, ft: FinetuneConfig,
            rule: str, steps: int, seed: int, generator: torch.Generator) -> tuple[ClassMemories, Batch]:
    """Fill the memories as fine-tuning does, from a frozen model, over `steps` batches; then the next batch.

    Batch k holds the images `batch_indices(len(cache), ft.batch_size, k, seed)`; after each one its
    real latents enter M_real and its predictions (eq-x0) M_gen under `rule`. Returns the memories
    and batch `steps`, the one the page examines (not stored).
    """
    memories = ClassMemories(ft.n_real, ft.n_gen, rule)
    for step in range(steps):
        b = predict_batch(model, cache, batch_indices(len(cache), ft.batch_size, step, seed), dit_labels, schedule,
                          generator)
        memories.update(b.y, b.z0, b.zhat)
    batch = predict_batch(model, cache, batch_indices(len(cache), ft.batch_size, steps, seed), dit_labels, schedule,
                          generator)
    return memories, batch


def present_memories(memories: ClassMemories, labels: torch.Tensor) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """(M_real[c], M_gen[c]) of the classes in `labels` that have memories, in ascending order.

    Refuses a batch none of whose classes has memories yet (nothing to compare with), naming the fix.
    """
    present = {c: m for c in sorted(set(labels.tolist())) if (m := memories.tensors(c)) is not None}
    if not present:
        raise ValueError(f"no class of the examined batch ({sorted(set(labels.tolist()))}) has memories yet: raise "
                         "warmup_steps, so that the batches before it hold its classes")
    return present


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


def pair_means(pairs: pd.DataFrame) -> dict[str, float]:
    """Mean r_c and g_c over the classes of `term_pairs` (0 without any): keys l-real, l-gen."""
    return {"l-real": float(pairs.r_c.mean()) if len(pairs) else 0.0,
            "l-gen": float(pairs.g_c.mean()) if len(pairs) else 0.0}


def weighted_terms(eps_pred: torch.Tensor, losses: Mapping[str, torch.Tensor],
                   weights: Mapping[str, float]) -> pd.DataFrame:
    """The terms of eq-total: value, weight, and the norm of their gradient w.r.t. eps_pred, plain and weighted.

    `losses` and `weights` share their keys (the terms); a term that does not depend on eps_pred
    has gradient norm 0.
    """
    norms = {k: float(torch.autograd.grad(v, eps_pred, retain_graph=True, allow_unused=True)[0].norm())
             if v.requires_grad else 0.0 for k, v in losses.items()}
    total = pd.DataFrame({"term": list(losses), "value": [float(v.detach()) for v in losses.values()],
                          "weight": [weights[k] for k in losses]})
    total["weighted value"] = total.value * total.weight
    total["gradient norm"] = [norms[k] for k in losses]
    total["weighted gradient norm"] = total["gradient norm"] * total.weight
    return total


def gradient_shares(total: pd.DataFrame) -> dict[str, float]:
    """Weighted gradient norms of L_real and L_gen over that of L_diffusion (`weighted_terms`), and the larger."""
    norm = total.set_index("term")["gradient norm"]
    weight = total.set_index("term")["weight"]
    real, gen = float(weight["L_real"]) * float(norm["L_real"]), float(weight["L_gen"]) * float(norm["L_gen"])
    diff = float(norm["L_diffusion"])
    return {"share-real": real / diff, "share-gen": gen / diff, "largest": max(real, gen) / diff}


def describe_gradient_share(largest_share: float) -> str:
    """The page's sentence on the larger weighted memory gradient against the diffusion loss's (small below 0.1)."""
    if largest_share < 0.1:
        return "The memory terms are a small steer on top of the denoising objective, not a replacement for it"
    return "At these weights the memory terms pull about as hard as the denoising objective, or harder"


def gradient_effects(zhat: torch.Tensor, terms: MinimaxTerms, labels: torch.Tensor, memories: Memories,
                     nudge: float) -> pd.DataFrame:
    """`gradient_table` of the gradients of terms.l_real and terms.l_gen w.r.t. zhat, with `pure`.

    `pure` is +sqrt(1 - sigma^2) for the real term, -sqrt(1 - sigma^2) for the generated one: the
    alignment of a pure pull or push (eq-similarity). Without memories the gradients are zero.
    """
    grads = {which: torch.autograd.grad(loss, zhat, retain_graph=True)[0] if memories else torch.zeros_like(zhat)
             for which, loss in (("real", terms.l_real), ("gen", terms.l_gen))}
    effects = gradient_table(zhat, grads, labels, memories, nudge)
    effects["pure"] = np.where(effects.term == "real", 1, -1) * np.sqrt(1 - effects.similarity**2)
    return effects


def describe_gradient_reach(effects: pd.DataFrame) -> str:
    """How many batch items of a class receive each term's gradient: "exactly one item" unless ties spread it."""
    return "exactly one item" if (effects.items_with_grad == 1).all() else "more than one item (ties)"


def gradient_facts(effects: pd.DataFrame) -> dict[str, object]:
    """From `gradient_effects`: classes whose worst real pair the step pulls closer (pull), whose most similar
    generated pair it pushes apart (push), the classes (n-terms) and the largest |alignment - pure|."""
    real, gen = effects[effects.term == "real"], effects[effects.term == "gen"]
    return {"pull": int((real.after > real.similarity).sum()), "push": int((gen.after < gen.similarity).sum()),
            "n-terms": len(real),
            "align-err": float((effects.alignment - effects.pure).abs().max()) if len(effects) else 0.0}


def multiplicity_table(once: MinimaxTerms, cumulative: MinimaxTerms, memories: Memories,
                       names: Sequence[str]) -> pd.DataFrame:
    """How many times each class of the batch is counted under accumulate="once" and "cumulative"."""
    return pd.DataFrame({"class": [names[c] for c in once.weights],
                         "has memories": [c in memories for c in once.weights],
                         "once": list(once.weights.values()), "cumulative": list(cumulative.weights.values())})


def accumulate_ratios(once: MinimaxTerms, cumulative: MinimaxTerms) -> dict[str, float]:
    """L_real and L_gen under "cumulative" over those under "once" (NaN where "once" is zero): ratio-real, ratio-gen."""
    once_real, once_gen = float(once.l_real.detach()), float(once.l_gen.detach())
    return {"ratio-real": float(cumulative.l_real) / once_real if once_real else float("nan"),
            "ratio-gen": float(cumulative.l_gen) / once_gen if once_gen else float("nan")}
