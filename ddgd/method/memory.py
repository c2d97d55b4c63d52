"""Per-class memories and their update rules (book page "The method", eq-adaptive).

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

A rule is registered as a chooser ``choose(store) -> slot`` (the next item to remove) and is
callable as a pure function ``rule(items [m, d], capacity) -> keep`` (LongTensor of kept row
indices, in their original order), so that it can be tested exactly and timed alone. A
`MemoryBank` keeps its items in a `SlotStore`: fixed slots that a new item fills in place, with the
unit-normalised items and their similarity matrix, so that a new item costs its dot products with
the m stored ones (O(m d)), a removal one column of S, and nothing is copied. Every choice stays on
the device (no host synchronisation on a GPU).
"""
from __future__ import annotations

from typing import Callable

import torch

from ddgd.method.similarity import unit

Rule = Callable[[torch.Tensor, int], torch.Tensor]
UPDATE_RULES: dict[str, Rule] = {}

# Ties are broken by the first index (the oldest item). S is built in blocks as items arrive, so
# values that are equal in exact arithmetic can differ by rounding; it is kept in float64 and values
# within this tolerance of the extreme count as tied.
TIE_TOLERANCE = 1e-9
_FREE = torch.iinfo(torch.int64).max  # the insertion number of an empty slot


class SlotStore:
    """Items in slots, with insertion numbers (`seq`, the order) and, for the similarity rules, S.

    raw [slots, d]: the items as given; unit [slots, d] float64: normalised; sim [slots, slots]:
    u_i . u_j. A slot is empty when its seq is _FREE. `count` is known on the host.
    """

    def __init__(self, similarity: bool):
        self.similarity = similarity
        self.raw = self.unit = self.sim = self.seq = None
        self.count, self.next_seq = 0, 0

    def _grow(self, slots: int, like: torch.Tensor) -> None:
        old = 0 if self.raw is None else self.raw.shape[0]
        pad = slots - old
        dev, d = like.device, like.shape[1]
        cat = lambda t, extra: extra if t is None else torch.cat([t, extra])  # noqa: E731
        self.raw = cat(self.raw, like.new_zeros(pad, d))
        self.seq = cat(self.seq, torch.full((pad,), _FREE, dtype=torch.int64, device=dev))
        if self.similarity:
            self.unit = cat(self.unit, torch.zeros(pad, d, dtype=torch.float64, device=dev))
            sim = torch.zeros(slots, slots, dtype=torch.float64, device=dev)
            if old:
                sim[:old, :old] = self.sim
            self.sim = sim

    def add(self, new: torch.Tensor) -> None:
        """Write the rows of `new` [n, d] into empty slots (growing the slots when too few are empty)."""
        n = new.shape[0]
        if self.raw is None or self.raw.shape[0] < self.count + n:
            self._grow(self.count + n, new)
        free = torch.argsort((self.seq != _FREE).to(torch.uint8), stable=True)[:n]  # empty slots first
        self.raw.index_copy_(0, free, new.to(self.raw))
        self.seq.index_copy_(0, free, torch.arange(self.next_seq, self.next_seq + n, device=free.device))
        self.count, self.next_seq = self.count + n, self.next_seq + n
        if self.similarity:
            u = unit(new.double())  # [n, d]
            self.unit.index_copy_(0, free, u)
            cross = self.unit @ u.T  # [slots, n]: the new items against every slot (empty ones are masked)
            self.sim.index_copy_(1, free, cross)
            self.sim.index_copy_(0, free, cross.T.contiguous())

    def alive(self) -> torch.Tensor:
        return self.seq != _FREE

    def shrink(self, capacity: int, choose: Callable[["SlotStore", torch.Tensor], torch.Tensor]) -> None:
        """Remove items one at a time, the slot `choose(self, s)` picks, until `capacity` remain."""
        if self.count <= capacity:
            return
        s = (self.sim * self.alive()[None]).sum(1) if self.similarity else None  # s_i over the stored items
        for _ in range(self.count - capacity):  # a count known on the host
            k = choose(self, s)
            self.seq = torch.where(torch.arange(len(self.seq), device=k.device) == k, _FREE, self.seq)
            if s is not None:
                s = s - self.sim[:, k]
        self.count = capacity

    def oldest_among(self, candidates: torch.Tensor) -> torch.Tensor:
        """The slot with the smallest insertion number among `candidates` (a mask): the first index."""
        return torch.argmin(torch.where(candidates & self.alive(), self.seq, _FREE))

    def extreme(self, s: torch.Tensor, largest: bool) -> torch.Tensor:
        alive = self.alive()
        fill = torch.tensor(float("-inf") if largest else float("inf"), dtype=s.dtype, device=s.device)
        masked = torch.where(alive, s, fill)
        top = masked.max() if largest else masked.min()
        return self.oldest_among((masked - top).abs() <= TIE_TOLERANCE * top.abs().clamp(min=1.0))

    def order(self) -> torch.Tensor:
        """The occupied slots in insertion order."""
        return torch.argsort(self.seq)[: self.count]

    def items(self) -> torch.Tensor:
        return self.raw.index_select(0, self.order())


def register(name: str, similarity: bool = True):
    """Register a chooser `choose(store, s) -> slot` as the update rule `name`, callable as rule(items, capacity)."""

    def wrap(choose):
        def rule(items: torch.Tensor, capacity: int) -> torch.Tensor:
            store = SlotStore(similarity)
            store.add(items.reshape(items.shape[0], -1))
            store.shrink(capacity, choose)
            return torch.sort(store.seq[store.order()]).values  # kept rows: insertion number = row index

        rule.choose, rule.similarity = choose, similarity
        rule.__name__, rule.__doc__ = choose.__name__, choose.__doc__
        UPDATE_RULES[name] = rule
        return rule

    return wrap


@register("fifo", similarity=False)
def fifo(store: SlotStore, s=None) -> torch.Tensor:
    """Keep the newest `capacity` items: remove the oldest."""
    return store.oldest_among(store.alive())


@register("adaptive")
def adaptive(store: SlotStore, s: torch.Tensor) -> torch.Tensor:
    """DDGD's self-adaptive rule: repeatedly drop the item with the largest similarity sum."""
    return store.extreme(s, largest=True)


@register("adaptive-min")
def adaptive_min(store: SlotStore, s: torch.Tensor) -> torch.Tensor:
    """The released code's alternative: repeatedly drop the item with the smallest similarity sum."""
    return store.extreme(s, largest=False)


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
        self._store = SlotStore(UPDATE_RULES[rule].similarity)
        self._finite: torch.Tensor | None = None  # on a GPU the NaN check waits for the next state_dict

    def __len__(self) -> int:
        return self._store.count

    def add(self, latents: torch.Tensor) -> None:
        """Append a batch of latents [n, ...] (stored as [n, d], detached), then apply the rule."""
        new = latents.detach().reshape(latents.shape[0], -1)
        if new.shape[0] == 0:
            return
        if self._store.raw is not None and self._store.raw.shape[1] != new.shape[1]:
            raise ValueError(f"latent size {new.shape[1]} does not match the memory's {self._store.raw.shape[1]}")
        finite = torch.isfinite(new).all()
        if new.device.type == "cpu":
            self._check_finite(finite)
        else:  # reading the flag now would stop the GPU every step
            self._finite = finite if self._finite is None else self._finite & finite
        self._store.add(new)
        self._store.shrink(self.capacity, UPDATE_RULES[self.rule].choose)

    @staticmethod
    def _check_finite(finite: torch.Tensor) -> None:
        if not bool(finite):
            raise ValueError("latents with NaN or inf reached the memory: the model diverged (lower "
                             "finetune.lr, or check the timestep schedule)")

    def tensor(self) -> torch.Tensor:
        """The stored items [m, d] (an empty [0, 0] tensor before the first add)."""
        return torch.empty(0, 0) if self._store.count == 0 else self._store.items()

    def state_dict(self) -> dict:
        if self._finite is not None:
            self._check_finite(self._finite)
            self._finite = None
        return {"capacity": self.capacity, "rule": self.rule, "items": self.tensor() if len(self) else None}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["rule"] != self.rule:
            raise ValueError(
                f"memory state (capacity {state['capacity']}, rule {state['rule']}) does not match this bank "
                f"(capacity {self.capacity}, rule {self.rule}): resume with the config of the checkpoint"
            )
        self._store = SlotStore(UPDATE_RULES[self.rule].similarity)  # S is rebuilt from the items
        if state["items"] is not None:
            self._store.add(state["items"])


class ClassMemories:
    """M_real and M_gen for every class, created on first sight of a class."""

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
