"""The memory terms of a batch and the update of the memories, in one pass over each memory (book page The method).

Algorithm 1 computes L_real and L_gen against the memories (eq-real, eq-gen) and then adds the
batch to them (eq-adaptive). Both compare the batch with every item of its classes' memories, and
reading the memories is what the memory work of a step at paper shapes costs: `memory_terms` does
the two in the update's single pass over each memory (`ClassMemories.compare_and_update`).

The terms are those of `ddgd.method.losses.minimax_terms`, to the bit in their gradients: the pair
(i, m) that sets r_c (the smallest similarity) or g_c (the largest) is found with the update's
float64 similarities, and the term is sigma of that pair computed as `minimax_terms` computes it,
unit(pred_i) . unit(item_m) in the predictions' dtype. Where two pairs are within float32 rounding
of each other the float64 comparison decides; exact ties go to the first pair (batch order, then
slot) instead of sharing the gradient.
"""
from __future__ import annotations

import itertools
from collections import Counter

import torch

from ddgd.method.losses import MinimaxTerms
from ddgd.method.memory import ClassMemories
from ddgd.method.similarity import unit


def memory_terms(memories: ClassMemories, pred: torch.Tensor, labels: torch.Tensor, z0: torch.Tensor,
                 accumulate: str = "once") -> MinimaxTerms:
    """L_real and L_gen of the batch (eq-real, eq-gen) against the memories as they are; then the memories' update.

    pred [B, ...] are the predicted latents (their gradient flows), labels [B] (host or device), z0
    [B, ...] the real latents: the memories then hold what `ClassMemories.update(labels, z0, pred)`
    leaves. `accumulate` and the result as in `minimax_terms`.
    """
    if accumulate not in ("once", "cumulative"):
        raise ValueError(f"accumulate must be 'once' or 'cumulative', got {accumulate!r}")
    labels = labels.cpu()  # the class blocks are chosen on the host: no device sync on a GPU
    classes = sorted(set(labels.tolist()))
    k = len(classes)
    weights = {c: 1 if accumulate == "once" else k - j for j, c in enumerate(classes)}
    terms = MinimaxTerms(pred.new_zeros(()), pred.new_zeros(()), weights=weights)
    found = memories.compare_and_update(labels, z0, pred)  # {c: (M_real's, M_gen's (sims, empty))}, as they were
    counted = [c for c in classes if c in found]
    if not counted:
        return terms
    slots = found[counted[0]][0][0].shape[1]
    # Flat index i * slots + m of the extreme pair of each class; a slot that held no item never counts.
    low = torch.stack([s.masked_fill(e, float("inf")).argmin() for (s, e), _ in map(found.get, counted)])
    high = torch.stack([s.masked_fill(e, float("-inf")).argmax() for _, (s, e) in map(found.get, counted)])
    sizes = Counter(labels.tolist())
    starts = dict(zip(classes, itertools.accumulate([sizes[c] for c in classes], initial=0)))
    # order[starts[c] + i]: the batch row of the i-th item of class c (sims rows are in batch order within a class)
    index = torch.cat([torch.argsort(labels, stable=True), torch.tensor([starts[c] for c in counted])])
    order, first = index.to(pred.device, non_blocking=True).split([len(labels), len(counted)])

    def sigma(memory: str, flat: torch.Tensor) -> torch.Tensor:
        """sigma(pred_i, M[c][m]) of each class's pair [P] as `minimax_terms` computes it, unit(pred_i) . unit(item_m):
        each term normalises its predictions itself, as `representativeness` and `diversity` do (same gradient)."""
        rows = order.index_select(0, first + torch.div(flat, slots, rounding_mode="floor"))  # [P]
        items = memories.unit_items(memory, counted, flat % slots)  # [P, d]
        return (unit(pred.index_select(0, rows)) * items.to(pred)).sum(1)

    r = 1 - sigma("real", low)  # r_c (eq-real)
    g = sigma("gen", high)  # g_c (eq-gen)
    terms.per_class = dict(zip(counted, zip(r.detach().unbind(), g.detach().unbind())))  # tensors: no GPU sync
    if accumulate == "once":
        l_real, l_gen = r.sum(), g.sum()
    else:
        w = torch.tensor([weights[c] for c in counted], dtype=r.dtype).to(r.device, non_blocking=True)
        l_real, l_gen = (w * r).sum(), (w * g).sum()
    terms.l_real, terms.l_gen = l_real / k, l_gen / k
    return terms
