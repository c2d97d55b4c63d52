"""The memory terms of a batch and the update of the memories, in one pass over each memory (book page The method).

Algorithm 1 computes L_real and L_gen against the memories (eq-real, eq-gen) and then adds the
batch to them (eq-adaptive). Both compare the batch with every item of its classes' memories, and
reading the memories is what the memory work of a step at paper shapes costs: `memory_terms` does
the two in the update's single pass over each memory (`ClassMemories.update_compared`).

The terms are those of `ddgd.method.losses.minimax_terms`, to the bit in their gradients: the pair
(i, m) that sets r_c (the smallest similarity) or g_c (the largest) is found with the update's
float64 similarities, and the term is sigma of that pair computed as `minimax_terms` computes it,
unit(pred_i) . unit(item_m) in the predictions' dtype. Where two pairs are within float32 rounding
of each other the float64 comparison decides; exact ties go to the first pair (batch order, then
slot) instead of sharing the gradient. The pairs of all classes and both memories are found, and
their terms computed, with one set of tensor operations; only the 2P picked items are normalised.
"""
from __future__ import annotations

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
    listed = labels.tolist()
    classes = sorted(set(listed))
    k = len(classes)
    weights = {c: 1 if accumulate == "once" else k - j for j, c in enumerate(classes)}
    found, blocks = memories.update_compared(labels, z0, pred)  # the memories as they were, then the update
    counted = [c for c in classes if c in blocks]
    if not counted:
        return MinimaxTerms(pred.new_zeros(()), pred.new_zeros(()), weights=weights)
    p, slots = len(counted), found.cos.shape[1]
    rows = {c: [] for c in counted}  # the batch rows of each class, in batch order (the rows of its blocks)
    for i, c in enumerate(listed):
        if c in rows:
            rows[c].append(i)
    # All 2P pairs at once, M_real's blocks then M_gen's, each [n_c, slots] padded to `width` rows by repeating
    # its last row (a repeat never comes first). Sent in one tensor: the rows of found.cos, the batch row of each,
    # the blocks' groups (empty slots) and store rows, and the classes' weights.
    width = max(len(rows[c]) for c in counted)
    pairs = [(rows[c], blocks[c][m]) for m in (0, 1) for c in counted]
    spread = [[min(i, len(block) - 1) for i in range(width)] for block, _ in pairs]  # the rows of each padded block
    lists = [[a + j for (_, (a, _, _)), js in zip(pairs, spread) for j in js],
             [block[j] for (block, _), js in zip(pairs, spread) for j in js], [g for _, (_, g, _) in pairs],
             [r * slots for _, (_, _, r) in pairs], [weights[c] for c in counted] if accumulate != "once" else []]
    index = torch.tensor([i for part in lists for i in part]).to(pred.device, non_blocking=True)
    at, batch_row, group, base, w = index.split([len(part) for part in lists])
    sims = found.cos.index_select(0, at).view(2 * p, width, slots)
    sims[p:].neg_()  # M_gen's largest similarity as the smallest of the negated ones (exact)
    sims.masked_fill_(found.empty.index_select(0, group)[:, None], float("inf"))  # a slot that held no item: never
    flat = sims.view(2 * p, -1).argmin(1)  # i * slots + m of each pair: the first on ties (batch order, then slot)
    i = torch.div(flat, slots, rounding_mode="floor")
    items = memories.unit_at(base + flat % slots)  # [2P, d]
    pick = batch_row.view(2 * p, width).gather(1, i[:, None]).view(-1)  # [2P]
    # sigma(pred_i, M[c][m]) as `minimax_terms` computes it, unit(pred_i) . unit(item_m): the predictions are
    # normalised here, as `representativeness` and `diversity` normalise them (same gradient).
    sigma = (unit(pred.index_select(0, pick)) * items.to(pred)).sum(1)
    r, g = 1 - sigma[:p], sigma[p:]  # r_c (eq-real), g_c (eq-gen)
    per_class = dict(zip(counted, zip(r.detach().unbind(), g.detach().unbind())))  # tensors: no GPU sync
    if accumulate == "once":
        l_real, l_gen = r.sum(), g.sum()
    else:
        w = w.to(r.dtype)
        l_real, l_gen = (w * r).sum(), (w * g).sum()
    return MinimaxTerms(l_real / k, l_gen / k, per_class, weights)
