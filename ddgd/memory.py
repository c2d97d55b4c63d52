"""Per-class memories and their update rules (SPEC section 3; the paper's self-adaptive memory).

DDGD keeps two memories per class: M_real (real latents z0) and M_gen (predicted latents zhat).
Each is a `MemoryBank` of fixed capacity. When a batch pushes a bank past its capacity, an update
rule from `UPDATE_RULES` removes items until it fits:

* ``fifo``: drop the oldest items (Minimax diffusion, Gu et al. 2024).
* ``adaptive``: the paper's self-adaptive update. With S the cosine-similarity matrix of all items
  (diagonal included), the similarity vector is s_i = sum_j S_ij; the item with the largest s_i
  (the most redundant one, first index on ties) is removed, and s is recomputed, until the bank
  fits. A new item may be removed at once.
* ``adaptive-min``: the opposite choice (remove the smallest s_i), known to the released code.

Minimax and DDGD therefore differ by one word: the rule's name.

Rules are pure functions ``rule(items [m, d], capacity) -> keep (LongTensor of kept row indices,
in their original order)``, so that they can be tested exactly and timed alone.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Rule = Callable[[torch.Tensor, int], torch.Tensor]
UPDATE_RULES: dict[str, Rule] = {}

# Ties are broken by the first index. The incremental update of s below subtracts one column per
# removal, so values that are equal in exact arithmetic can differ by rounding; sums are kept in
# float64 and values within this tolerance of the extreme count as tied.
TIE_TOLERANCE = 1e-9


def register(name: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        UPDATE_RULES[name] = fn
        return fn

    return wrap


@register("fifo")
def fifo(items: torch.Tensor, capacity: int) -> torch.Tensor:
    """Keep the newest `capacity` items (rows are in insertion order)."""
    m = items.shape[0]
    return torch.arange(max(0, m - capacity), m, device=items.device)


def _similarity_removal(items: torch.Tensor, capacity: int, largest: bool) -> torch.Tensor:
    """Remove, one at a time, the item whose similarity sum s_i = sum_j S_ij is extreme.

    S = U U^T with U the row-normalised items (cosine similarity, diagonal included). After removing
    item k, every s_i loses S_ik: one column update instead of rebuilding S, and no copy of the
    bank per removal (removed items are masked out).
    """
    m = items.shape[0]
    if m <= capacity:
        return torch.arange(m, device=items.device)
    u = F.normalize(items.reshape(m, -1).double(), dim=1)  # [m, d]
    sim = u @ u.T  # [m, m]
    s = sim.sum(dim=1)  # [m] similarity vector
    alive = torch.ones(m, dtype=torch.bool, device=items.device)
    fill = float("-inf") if largest else float("inf")
    for _ in range(m - capacity):
        masked = torch.where(alive, s, torch.full_like(s, fill))
        extreme = masked.max() if largest else masked.min()
        tied = (masked - extreme).abs() <= TIE_TOLERANCE * max(1.0, float(extreme.abs()))
        k = int(torch.nonzero(tied)[0])  # first index on ties
        alive[k] = False
        s -= sim[:, k]
    return torch.nonzero(alive).squeeze(1)


@register("adaptive")
def adaptive(items: torch.Tensor, capacity: int) -> torch.Tensor:
    """DDGD's self-adaptive rule: repeatedly drop the item with the largest similarity sum."""
    return _similarity_removal(items, capacity, largest=True)


@register("adaptive-min")
def adaptive_min(items: torch.Tensor, capacity: int) -> torch.Tensor:
    """The released code's alternative: repeatedly drop the item with the smallest similarity sum."""
    return _similarity_removal(items, capacity, largest=False)


class MemoryBank:
    """The memory of one class: at most `capacity` flattened, detached latents.

    >>> bank = MemoryBank(2, "fifo"); bank.add(torch.eye(3)); bank.tensor()
    tensor([[0., 1., 0.],
            [0., 0., 1.]])
    """

    def __init__(self, capacity: int, rule: str = "adaptive"):
        if capacity <= 0:
            raise ValueError(f"memory capacity must be a positive integer, got {capacity} (set n_real / n_gen > 0)")
        if rule not in UPDATE_RULES:
            raise ValueError(f"unknown memory rule {rule!r}: choose one of {', '.join(UPDATE_RULES)}")
        self.capacity = capacity
        self.rule = rule
        self._items: torch.Tensor | None = None  # [m, d]

    def __len__(self) -> int:
        return 0 if self._items is None else self._items.shape[0]

    def add(self, latents: torch.Tensor) -> None:
        """Append a batch of latents [n, ...] (stored as [n, d], detached), then apply the rule."""
        new = latents.detach().reshape(latents.shape[0], -1)
        if new.shape[0] == 0:
            return
        if not torch.isfinite(new).all():
            raise ValueError("latents with NaN or inf reached the memory: the model diverged (lower the "
                             "learning rate, or check the timestep schedule)")
        if self._items is not None and self._items.shape[1] != new.shape[1]:
            raise ValueError(f"latent size {new.shape[1]} does not match the memory's {self._items.shape[1]}")
        items = new.clone() if self._items is None else torch.cat([self._items, new.to(self._items)])
        if items.shape[0] > self.capacity:
            items = items[UPDATE_RULES[self.rule](items, self.capacity)]
        self._items = items

    def tensor(self) -> torch.Tensor:
        """The stored items [m, d] (an empty [0, 0] tensor before the first add)."""
        return torch.empty(0, 0) if self._items is None else self._items

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "rule": self.rule, "items": self._items}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["rule"] != self.rule:
            raise ValueError(
                f"memory state (capacity {state['capacity']}, rule {state['rule']}) does not match this bank "
                f"(capacity {self.capacity}, rule {self.rule}): resume with the config of the checkpoint"
            )
        self._items = state["items"]


class ClassMemories:
    """M_real and M_gen for every class, created on first sight of a class (SPEC section 3)."""

    def __init__(self, n_real: int, n_gen: int, rule: str):
        self.n_real, self.n_gen, self.rule = n_real, n_gen, rule
        self.real: dict[int, MemoryBank] = {}
        self.gen: dict[int, MemoryBank] = {}

    def banks(self, label: int) -> tuple[MemoryBank, MemoryBank]:
        if label not in self.real:
            self.real[label] = MemoryBank(self.n_real, self.rule)
            self.gen[label] = MemoryBank(self.n_gen, self.rule)
        return self.real[label], self.gen[label]

    def update(self, labels: torch.Tensor, z0: torch.Tensor, zhat: torch.Tensor) -> None:
        """Add the batch's real latents and predicted latents to their class memories."""
        for c in sorted(set(labels.tolist())):
            real, gen = self.banks(c)
            mask = (labels == c).to(z0.device)
            real.add(z0[mask])
            gen.add(zhat[mask])

    def tensors(self, label: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(M_real[c], M_gen[c]) as tensors, or None if the class has no memory yet."""
        if label not in self.real or len(self.real[label]) == 0:
            return None
        return self.real[label].tensor(), self.gen[label].tensor()

    def state_dict(self) -> dict:
        return {
            "n_real": self.n_real, "n_gen": self.n_gen, "rule": self.rule,
            "real": {c: b.state_dict() for c, b in self.real.items()},
            "gen": {c: b.state_dict() for c, b in self.gen.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if (state["n_real"], state["n_gen"], state["rule"]) != (self.n_real, self.n_gen, self.rule):
            raise ValueError("memory state was saved with other sizes or another rule: resume with the checkpoint's config")
        for c in state["real"]:
            real, gen = self.banks(int(c))
            real.load_state_dict(state["real"][c])
            gen.load_state_dict(state["gen"][c])
