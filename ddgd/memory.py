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

Rules are functions ``rule(items [m, d], capacity, cache=None) -> keep`` (LongTensor of kept row
indices, in their original order), so that they can be tested exactly and timed alone. A
`MemoryBank` passes its `SimilarityCache`: the normalised items and their similarity sums kept
across adds, so a new item costs its m dot products (O(m d)) instead of a rebuilt m x m matrix,
and every removal one column (O(m d)). The choice of each removal stays on the device (no host
synchronisation on a GPU).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Rule = Callable[..., torch.Tensor]
UPDATE_RULES: dict[str, Rule] = {}

# Ties are broken by the first index. The incremental update of s subtracts one column per removal
# and adds one row per new item, so values that are equal in exact arithmetic can differ by
# rounding; sums are kept in float64 and values within this tolerance of the extreme count as tied.
TIE_TOLERANCE = 1e-9


def register(name: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        UPDATE_RULES[name] = fn
        return fn

    return wrap


class SimilarityCache:
    """Unit-normalised items u_i (float64) and similarity sums s_i = sum_j u_i . u_j, row-aligned with a bank."""

    def __init__(self):
        self.unit: torch.Tensor | None = None  # [m, d]
        self.sums: torch.Tensor | None = None  # [m]

    def __len__(self) -> int:
        return 0 if self.unit is None else self.unit.shape[0]

    def extend(self, items: torch.Tensor) -> None:
        """Take in the rows of `items` beyond those cached: each costs its dot products with all items."""
        new = F.normalize(items[len(self):].reshape(items.shape[0] - len(self), -1).double(), dim=1)  # [n, d]
        if self.unit is None:
            self.unit, self.sums = new, (new @ new.T).sum(1)
            return
        cross = self.unit @ new.T  # [m, n]
        self.sums = torch.cat([self.sums + cross.sum(1), cross.sum(0) + (new @ new.T).sum(1)])
        self.unit = torch.cat([self.unit, new])

    def keep(self, rows: torch.Tensor) -> None:
        self.unit, self.sums = self.unit[rows], self.sums[rows]


@register("fifo")
def fifo(items: torch.Tensor, capacity: int, cache: SimilarityCache | None = None) -> torch.Tensor:
    """Keep the newest `capacity` items (rows are in insertion order)."""
    m = items.shape[0]
    return torch.arange(max(0, m - capacity), m, device=items.device)


def _similarity_removal(items: torch.Tensor, capacity: int, largest: bool,
                        cache: SimilarityCache | None = None) -> torch.Tensor:
    """Remove, one at a time, the item whose similarity sum s_i = sum_j S_ij is extreme (eq-update).

    S = U U^T with U the row-normalised items (cosine similarity, diagonal included). After removing
    item k, every s_i loses S_ik = u_i . u_k: one column instead of a rebuilt S, and no copy of the
    bank per removal (removed items are masked out). With a `cache` the sums of earlier adds are
    reused, and the cache is left aligned with the kept rows.
    """
    m = items.shape[0]
    cache = cache if cache is not None else SimilarityCache()
    if len(cache) != m:
        cache.extend(items)
    if m <= capacity:
        return torch.arange(m, device=items.device)
    u, s = cache.unit, cache.sums.clone()
    alive = torch.ones(m, dtype=torch.bool, device=u.device)
    fill = torch.tensor(float("-inf") if largest else float("inf"), dtype=s.dtype, device=s.device)
    for _ in range(m - capacity):  # a count known on the host; every choice stays on the device
        masked = torch.where(alive, s, fill)
        extreme = masked.max() if largest else masked.min()
        tied = (masked - extreme).abs() <= TIE_TOLERANCE * extreme.abs().clamp(min=1.0)
        k = torch.argmax(tied.to(torch.uint8))  # the first index on ties
        alive = alive & (torch.arange(m, device=u.device) != k)
        s = s - u @ u[k]
    keep = torch.nonzero(alive).squeeze(1)
    cache.unit, cache.sums = u[keep], s[keep]
    return keep


@register("adaptive")
def adaptive(items: torch.Tensor, capacity: int, cache: SimilarityCache | None = None) -> torch.Tensor:
    """DDGD's self-adaptive rule: repeatedly drop the item with the largest similarity sum."""
    return _similarity_removal(items, capacity, largest=True, cache=cache)


@register("adaptive-min")
def adaptive_min(items: torch.Tensor, capacity: int, cache: SimilarityCache | None = None) -> torch.Tensor:
    """The released code's alternative: repeatedly drop the item with the smallest similarity sum."""
    return _similarity_removal(items, capacity, largest=False, cache=cache)


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
        self._cache = SimilarityCache() if rule != "fifo" else None  # the similarity rules' running sums
        self._finite: torch.Tensor | None = None  # on a GPU the NaN check waits for the next state_dict

    def __len__(self) -> int:
        return 0 if self._items is None else self._items.shape[0]

    def add(self, latents: torch.Tensor) -> None:
        """Append a batch of latents [n, ...] (stored as [n, d], detached), then apply the rule."""
        new = latents.detach().reshape(latents.shape[0], -1)
        if new.shape[0] == 0:
            return
        if self._items is not None and self._items.shape[1] != new.shape[1]:
            raise ValueError(f"latent size {new.shape[1]} does not match the memory's {self._items.shape[1]}")
        finite = torch.isfinite(new).all()
        if new.device.type == "cpu":
            self._check_finite(finite)
        else:  # reading the flag now would stop the GPU every step
            self._finite = finite if self._finite is None else self._finite & finite
        items = new.clone() if self._items is None else torch.cat([self._items, new.to(self._items)])
        if items.shape[0] > self.capacity:
            items = items[UPDATE_RULES[self.rule](items, self.capacity, cache=self._cache)]
        elif self._cache is not None:
            self._cache.extend(items)
        self._items = items

    @staticmethod
    def _check_finite(finite: torch.Tensor) -> None:
        if not bool(finite):
            raise ValueError("latents with NaN or inf reached the memory: the model diverged (lower "
                             "finetune.lr, or check the timestep schedule)")

    def tensor(self) -> torch.Tensor:
        """The stored items [m, d] (an empty [0, 0] tensor before the first add)."""
        return torch.empty(0, 0) if self._items is None else self._items

    def state_dict(self) -> dict:
        if self._finite is not None:
            self._check_finite(self._finite)
            self._finite = None
        return {"capacity": self.capacity, "rule": self.rule, "items": self._items}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["rule"] != self.rule:
            raise ValueError(
                f"memory state (capacity {state['capacity']}, rule {state['rule']}) does not match this bank "
                f"(capacity {self.capacity}, rule {self.rule}): resume with the config of the checkpoint"
            )
        self._items = state["items"]
        if self._cache is not None:  # rebuilt from the items: the sums are a function of them
            self._cache = SimilarityCache()
            if self._items is not None:
                self._cache.extend(self._items)


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
        labels = labels.cpu()  # class blocks chosen on the host (labels on a GPU would cost a sync)
        for c in sorted(set(labels.tolist())):
            real, gen = self.banks(c)
            rows = torch.nonzero(labels == c).squeeze(1).to(z0.device, non_blocking=True)
            real.add(z0.index_select(0, rows))
            gen.add(zhat.index_select(0, rows))

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
