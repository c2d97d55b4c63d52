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

A rule is registered as a chooser ``choose(rows, s) -> slots`` (the next item to remove from each
row being shrunk, `ddgd.method.slots.Rows`, given the similarity sums s [rows, slots]) and is
callable as a pure function ``rule(items [m, d], capacity) -> keep`` (LongTensor of kept row
indices, in their original order), so that it can be tested exactly and timed alone.

Both memories of every class are rows of one `SlotStore` (`Banks`; a `MemoryBank` is one row), so
that a batch updates all of them with the same few tensor operations, and
`ClassMemories.compare_and_update` (in bulk: `update_compared`) also returns what the memory terms
need from the memories as they were, from the same pass over each memory (`ddgd.method.memory_terms`).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

import torch

from ddgd.method.similarity import unit
from ddgd.method.slots import TIE_TOLERANCE, Chooser, Found, Rows, SlotStore, lengths  # noqa: F401 (TIE_TOLERANCE)

Rule = Callable[[torch.Tensor, int], torch.Tensor]
UPDATE_RULES: dict[str, Rule] = {}


def register(name: str, similarity: bool = True):
    """Register a chooser `choose(rows, s) -> slots` as the update rule `name`, callable as rule(items, capacity)."""

    def wrap(choose: Chooser):
        def rule(items: torch.Tensor, capacity: int) -> torch.Tensor:
            store = SlotStore(similarity)
            store.add([(0, items.shape[0])], items.reshape(items.shape[0], -1))
            store.shrink(capacity, choose)
            if store.seq is None:
                return torch.empty(0, dtype=torch.int64)
            return store.seq[0].index_select(0, store.order(0))  # kept rows: insertion number = row index

        rule.choose, rule.similarity = choose, similarity
        rule.__name__, rule.__doc__ = choose.__name__, choose.__doc__
        UPDATE_RULES[name] = rule
        return rule

    return wrap


@register("fifo", similarity=False)
def fifo(rows: Rows, s=None) -> torch.Tensor:
    """Keep the newest `capacity` items: remove the oldest."""
    return rows.oldest_among(rows.alive())


@register("adaptive")
def adaptive(rows: Rows, s: torch.Tensor) -> torch.Tensor:
    """DDGD's self-adaptive rule: repeatedly drop the item with the largest similarity sum."""
    return rows.extreme(s, largest=True)


@register("adaptive-min")
def adaptive_min(rows: Rows, s: torch.Tensor) -> torch.Tensor:
    """The released code's alternative: repeatedly drop the item with the smallest similarity sum."""
    return rows.extreme(s, largest=False)


Key = tuple[str, int]  # (memory, class label), e.g. ("real", 3)
Compared = tuple[torch.Tensor, torch.Tensor]  # (cosine similarities [n, slots], empty slots [slots])
Block = tuple[int, int, int]  # (first row of Found.cos, group of Found.empty, row of the store)


class Banks:
    """Memories of one rule for every class in one `SlotStore`: a row per (memory, class), a capacity per memory.

    ClassMemories keeps M_real and M_gen of all classes here, so that a batch updates all of them at once.
    """

    def __init__(self, capacities: dict[str, int], rule: str = "adaptive"):
        for n in capacities.values():
            if n <= 0:
                raise ValueError(f"memory capacity must be a positive integer, got {n} (set n_real / n_gen > 0)")
        if rule not in UPDATE_RULES:
            raise ValueError(f"unknown memory rule {rule!r}: choose one of {', '.join(UPDATE_RULES)}")
        self.capacities, self.rule = dict(capacities), rule
        self.store = SlotStore(UPDATE_RULES[rule].similarity)
        self.rows: dict[Key, int] = {}  # (memory, label) -> row of the store
        self._keys: list[Key] = []  # row -> (memory, label)
        self._caps: list[int] = []  # row -> capacity
        self._finite: torch.Tensor | None = None  # on a GPU the NaN check waits for the next state_dict

    def row(self, key: Key) -> int:
        if key not in self.rows:
            self.rows[key] = len(self._keys)
            self._keys.append(key)
            self._caps.append(self.capacities[key[0]])
        return self.rows[key]

    def count(self, key: Key) -> int:
        row = self.rows.get(key)
        return self.store.counts[row] if row is not None and row < len(self.store.counts) else 0

    def add(self, groups: list[tuple[Key, int]], latents: torch.Tensor,
            probes: dict[Key, int] | None = None) -> Found | None:
        """Add latents [n, ...] by groups (key, k): the next k items go to memory `key`; then apply the rule.

        `probes`, keyed by memory, and the result as `SlotStore.add` (spans keyed by store row, `rows`;
        before the rule removes anything).
        """
        new = latents.detach().reshape(latents.shape[0], -1)
        groups = [(self.row(key), k) for key, k in groups if k]
        if not groups:
            return None
        if self.store.raw is not None and self.store.raw.shape[2] != new.shape[1]:
            raise ValueError(f"latent size {new.shape[1]} does not match the memory's {self.store.raw.shape[2]}")
        new = self.store.stored(new)
        wide = new.double()  # exact
        norm = lengths(wide)
        finite = torch.isfinite(norm).all()
        if new.device.type == "cpu":
            self._check_finite(finite)
        else:  # reading the flag now would stop the GPU every step
            self._finite = finite if self._finite is None else self._finite & finite
        probes = {self.rows[key]: p for key, p in (probes or {}).items()}
        found = self.store.add(groups, new, wide, norm, reserve=max(self.capacities.values()), probes=probes)
        self.store.shrink(self._caps, UPDATE_RULES[self.rule].choose)
        return found

    @staticmethod
    def _check_finite(finite: torch.Tensor) -> None:
        if not bool(finite):
            raise ValueError("latents with NaN or inf reached the memory: the model diverged (lower "
                             "finetune.lr, or check the timestep schedule)")

    def check_finite(self) -> None:
        if self._finite is not None:
            self._check_finite(self._finite)
            self._finite = None

    def items(self, key: Key) -> torch.Tensor:
        """The stored items of one memory [m, d] in insertion order (an empty [0, 0] tensor while it has none)."""
        return self.store.items(self.rows[key]) if self.count(key) else torch.empty(0, 0)

    def unit_items(self, keys: list[Key], slots: torch.Tensor) -> torch.Tensor:
        """unit(item) in slot slots[p] of memory keys[p]: [P, d], normalised now (row by row: to the bit what
        normalising the whole memory gives)."""
        rows = torch.tensor([self.rows[key] for key in keys]).to(slots.device, non_blocking=True)
        return unit(self.store.at(torch.add(slots, rows, alpha=self.store.seq.shape[1])))

    def load(self, key: Key, items: torch.Tensor | None) -> None:
        """Replace the items of one memory (S is rebuilt from them)."""
        self.store.clear(self.row(key))
        if items is not None and len(items):
            self.add([(key, items.shape[0])], items)


class MemoryBank:
    """The memory of one class: at most `capacity` flattened, detached latents (a row of `Banks`, its own by default).

    >>> bank = MemoryBank(2, "fifo"); bank.add(torch.eye(3)); bank.tensor()
    tensor([[0., 1., 0.],
            [0., 0., 1.]])
    """

    def __init__(self, capacity: int, rule: str = "adaptive", banks: Banks | None = None, key: Key = ("", 0)):
        self._banks = banks if banks is not None else Banks({key[0]: capacity}, rule)
        self.capacity, self.rule, self.key = capacity, rule, key
        self._banks.row(key)

    def __len__(self) -> int:
        return self._banks.count(self.key)

    def add(self, latents: torch.Tensor) -> None:
        """Append a batch of latents [n, ...] (stored as [n, d], detached), then apply the rule."""
        self._banks.add([(self.key, latents.shape[0])], latents)

    def tensor(self) -> torch.Tensor:
        """The stored items [m, d] (an empty [0, 0] tensor before the first add)."""
        return self._banks.items(self.key)

    def state_dict(self) -> dict:
        self._banks.check_finite()
        return {"capacity": self.capacity, "rule": self.rule, "items": self.tensor() if len(self) else None}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["rule"] != self.rule:
            raise ValueError(
                f"memory state (capacity {state['capacity']}, rule {state['rule']}) does not match this bank "
                f"(capacity {self.capacity}, rule {self.rule}): resume with the config of the checkpoint"
            )
        self._banks.load(self.key, state["items"])


class ClassMemories:
    """M_real and M_gen for every class, created on first sight of a class (all of them rows of one `Banks`)."""

    def __init__(self, n_real: int, n_gen: int, rule: str):
        self.n_real, self.n_gen, self.rule = n_real, n_gen, rule
        self._banks = Banks({"real": n_real, "gen": n_gen}, rule)
        self.real: dict[int, MemoryBank] = {}
        self.gen: dict[int, MemoryBank] = {}

    def banks(self, label: int) -> tuple[MemoryBank, MemoryBank]:
        if label not in self.real:
            self.real[label] = MemoryBank(self.n_real, self.rule, self._banks, ("real", label))
            self.gen[label] = MemoryBank(self.n_gen, self.rule, self._banks, ("gen", label))
        return self.real[label], self.gen[label]

    def update(self, labels: torch.Tensor, z0: torch.Tensor, zhat: torch.Tensor) -> None:
        """Add the batch's real latents and predicted latents to their class memories, all at once."""
        self.update_compared(labels, z0, zhat, compare=False)

    def compare_and_update(self, labels: torch.Tensor, z0: torch.Tensor, zhat: torch.Tensor,
                           compare: bool = True) -> dict[int, tuple[Compared, Compared]]:
        """`update`, returning for each class of the batch that had a memory the cosine similarities of its
        zhat with M_real[c] and with M_gen[c] as they were, from the update's one pass over each memory.

        {c: (M_real's, M_gen's)}, each (sims [n_c, slots] float64, rows in batch order; empty [slots], True
        where the memory held no item); a slot indexes `unit_items`.
        """
        found, blocks = self.update_compared(labels, z0, zhat, compare)
        n = Counter(labels.cpu().tolist())
        return {c: tuple((found.cos[a:a + n[c]], found.empty[g]) for a, g, _ in blocks[c]) for c in blocks}

    def update_compared(self, labels: torch.Tensor, z0: torch.Tensor, zhat: torch.Tensor,
                        compare: bool = True) -> tuple[Found | None, dict[int, tuple[Block, Block]]]:
        """`update`, and what it compared (`compare_and_update` in bulk, for `ddgd.method.memory_terms`):
        `Found`, and for each class c of the batch that had a memory {c: (M_real's, M_gen's)}, each a `Block`
        (first, group, row): rows first..first + n_c of found.cos compare zhat_c (batch order) with the
        memory as it was, masked by found.empty[group]; the memory is row `row` of the store (`unit_at`).
        """
        labels = labels.cpu().tolist()  # class blocks chosen on the host (labels on a GPU would cost a sync)
        sizes = sorted(Counter(labels).items())  # (class, items in the batch), ascending labels
        had = [c for c, _ in sizes if c in self.real and len(self.real[c])] if compare else []
        for c, _ in sizes:
            self.banks(c)
        # Class by class (ascending, batch order within), zhat_c then z0_c: M_gen[c] takes the first, M_real[c]
        # the second and is compared with the first just before its own (probes): each memory is read once.
        rows, b = {c: [] for c, _ in sizes}, len(labels)
        for i, c in enumerate(labels):
            rows[c].append(i)
        order = torch.tensor([i + shift for c, _ in sizes for shift in (0, b) for i in rows[c]])  # of [zhat; z0]
        new = torch.cat([zhat.detach().flatten(1), z0.flatten(1)])
        new = new.index_select(0, order.to(z0.device, non_blocking=True))
        groups = [((m, c), n) for c, n in sizes for m in ("gen", "real")]
        probes = {key: p for c, n in sizes if c in had for key, p in ((("gen", c), 0), (("real", c), n))}
        found = self._banks.add(groups, new, probes)
        at = {c: [self._banks.rows[(m, c)] for m in ("real", "gen")] for c in had}  # the store rows
        return found, {c: tuple((found.spans[r][1], found.spans[r][0], r) for r in at[c]) for c in had}

    def unit_items(self, memory: str, labels: list[int], slots: torch.Tensor) -> torch.Tensor:
        """unit(M[c][slot]) for memory "real" or "gen" of each class labels[p], slot slots[p]: [P, d]."""
        return self._banks.unit_items([(memory, c) for c in labels], slots)

    def unit_at(self, flat: torch.Tensor) -> torch.Tensor:
        """unit(item) in flat slots flat[p] = row * slots + slot of the store (`Block`): [P, d], a copy."""
        return unit(self._banks.store.at(flat))

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
