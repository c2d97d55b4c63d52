"""Memories in fixed slots, with what the self-adaptive rule needs (book page The method, eq-adaptive).

A `SlotStore` holds many memories at once (`ddgd.method.memory.Banks` puts M_real and M_gen of
every class in one): row r of each buffer is one memory, each column a slot that an item fills in
place, so that a batch updates every memory it touches with the same few tensor operations.

For the similarity rules the store keeps S, the cosine-similarity matrix of each row's items, in
float64. A new item costs its m dot products, computed in float64 from the float32 items (each
product exact) in one pass over the row, and a removal one column of S. The same pass can compare
other items with the row (`probes`): the memory terms use it to compare the batch's predictions
with the memory before the batch enters it, so that a training step reads each memory once.

Counts are known on the host; every choice of a slot stays on the device (no host
synchronisation on a GPU).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NamedTuple

import torch

# Ties are broken by the first index (the oldest item). S is built in blocks as items arrive, so
# values that are equal in exact arithmetic can differ by rounding; it is kept in float64 and values
# within this tolerance of the extreme count as tied.
TIE_TOLERANCE = 1e-9
FREE = torch.iinfo(torch.int64).max  # the insertion number of an empty slot

Groups = list[tuple[int, int]]  # (row, k): the next k items of a batch go to row `row`; rows distinct


class Rows:
    """The rows being shrunk: their insertion numbers seq [P, slots] (a copy, written back when done).

    A rule's chooser sees this object and returns one slot per row [P]: the next item to remove.
    """

    def __init__(self, seq: torch.Tensor):
        self.seq = seq

    def head(self, p: int) -> Rows:
        """The first p rows (a view: what it removes is removed here)."""
        return self if p == len(self.seq) else Rows(self.seq[:p])

    def alive(self) -> torch.Tensor:
        return self.seq != FREE  # [P, slots]

    def oldest_among(self, candidates: torch.Tensor) -> torch.Tensor:
        """Per row, the slot with the smallest insertion number among `candidates` [P, slots] (stored items only)."""
        return torch.where(candidates, self.seq, FREE).argmin(1)  # an empty slot's FREE never wins

    def extreme(self, s: torch.Tensor, largest: bool) -> torch.Tensor:
        """Per row, the oldest stored item whose s [P, slots] is the largest (or smallest), within TIE_TOLERANCE."""
        masked = s.masked_fill(self.seq == FREE, float("-inf") if largest else float("inf"))  # empty: never a pick
        top = masked.amax(1, keepdim=True) if largest else masked.amin(1, keepdim=True)  # [P, 1]
        # |masked - top|, exactly (rounding is symmetric in sign), without the abs
        gap = torch.sub(top, masked) if largest else torch.sub(masked, top)
        return self.oldest_among(gap <= top.abs().clamp_(min=1.0).mul_(TIE_TOLERANCE))

    def remove(self, k: torch.Tensor) -> None:
        """Empty slot k[p] of every row p."""
        self.seq.scatter_(1, k[:, None], FREE)


Chooser = Callable[[Rows, "torch.Tensor | None"], torch.Tensor]


def lengths(x: torch.Tensor) -> torch.Tensor:
    """|x_i| of x [n, d] in float64, floored as F.normalize floors it; finite exactly when x_i is (squares of
    float32 values cannot overflow float64)."""
    return torch.linalg.vector_norm(x, dim=1, dtype=torch.float64).clamp_min(1e-12)


class Found(NamedTuple):
    """What `SlotStore.add` compared: cos [R, slots] float64, the cosine similarities of items with rows;
    empty [G, slots], True where group g's row held no item before the add; spans {row: (g, start, p, k)}:
    rows start..start+p+k of cos are the row's p probes, then its own k items (group g)."""
    cos: torch.Tensor
    empty: torch.Tensor
    spans: dict[int, tuple[int, int, int, int]]


class SlotStore:
    """Memories in slots: raw [rows, slots, d], the items as given, in `dtype`, that of the first ones (no
    unit vectors: the memory terms normalise the few items they pick); seq [rows, slots] int64, insertion
    numbers (FREE: an empty slot); norm64 [rows, slots], the items' float64 lengths (1 in a slot never
    filled: every buffer stays finite, empty slots are masked rather than skipped); with `similarity`,
    sim [rows, slots, slots] float64, S_ij = x_i . x_j / (|x_i| |x_j|) within a row. `counts[r]`, the
    items of row r, is known on the host. A slot emptied by a removal keeps its item until an add fills
    it again.
    """

    def __init__(self, similarity: bool):
        self.similarity = similarity
        self.raw = self.norm64 = self.sim = self.seq = self.dtype = self._wide = self._wide_t = None
        self._rows: tuple[torch.Tensor, ...] = ()
        self.counts: list[int] = []
        self.next_seq = 0

    def stored(self, new: torch.Tensor) -> torch.Tensor:
        """new [n, d] as the store keeps it: in the dtype of the first items."""
        return new if self.dtype is None else new.to(self.dtype)

    def _grow(self, rows: int, slots: int, like: torch.Tensor) -> None:
        """Reallocate every buffer to `rows` x `slots` (the new ones empty), keeping what is stored."""
        dev, d = like.device, like.shape[1]

        def grown(old, shape, dtype, fill=0):
            new = torch.full(shape, fill, dtype=dtype, device=dev)
            if old is not None:
                new[tuple(slice(0, n) for n in old.shape)] = old
            return new

        self.dtype = like.dtype if self.dtype is None else self.dtype
        self.raw = grown(self.raw, (rows, slots, d), self.dtype)
        self._wide = torch.empty(slots, d, dtype=torch.float64, device=dev)  # one row in float64, during `add`
        self._rows, self._wide_t = self.raw.unbind(0), self._wide.T  # views made once, not at every add
        self.seq = grown(self.seq, (rows, slots), torch.int64, FREE)
        self.norm64 = grown(self.norm64, (rows, slots), torch.float64, 1)
        if self.similarity:
            self.sim = grown(self.sim, (rows, slots, slots), torch.float64)
        self.counts += [0] * (rows - len(self.counts))

    @torch.no_grad()  # memories hold detached items: no autograd bookkeeping
    def add(self, groups: Groups, new: torch.Tensor, wide: torch.Tensor | None = None,
            norm: torch.Tensor | None = None, reserve: int = 0, probes: dict[int, int] | None = None) -> Found | None:
        """Write the items `new` [n, d] into empty slots, group by group (`Groups`); `wide`: `stored(new)` in
        float64, and `norm`: its `lengths`, when the caller has them.

        The slots grow when a row has too few empty ones: doubling up to `reserve` (a capacity, so that
        a memory filled item by item reallocates rarely), then to what is needed.

        `probes[r] = p` asks for the cosine similarities with row r of the p items of `new` just before
        row r's own and of its own k, computed in the product that builds S: returned in `Found` (None
        when nothing was compared).
        """
        groups, probes = [(r, k) for r, k in groups if k], probes or {}
        if not groups:
            return None
        new = self.stored(new)
        wide = new.double() if wide is None else wide  # exact
        rows, slots = (0, 0) if self.seq is None else self.seq.shape
        counts = self.counts + [0] * max(0, max(r for r, _ in groups) + 1 - len(self.counts))
        need = max(counts[r] + k for r, k in groups)
        if self.seq is None or len(counts) > rows or need > slots:
            self._grow(max(len(counts), rows), max(slots, need, min(2 * slots, reserve)), new)
            slots = self.seq.shape[1]
        n, at = wide.shape[0], list(itertools.accumulate((k for _, k in groups), initial=0))  # group g: items at[g]..
        compare = [(g, r, k, probes.get(r, 0)) for g, (r, k) in enumerate(groups) if self.similarity or r in probes]
        # Every index made on the host, sent in one tensor. Per item: its row; its rank in its group's sorted row
        # (after the row's stored items); its insertion number. The groups' rows. Per compared row of `cos`
        # (a row's probes, then its own items): the item and the store row; for S, where the own items are.
        compared = [i for g, _, k, p in compare for i in range(at[g] - p, at[g] + k)]
        offsets = list(itertools.accumulate((p + k for _, _, k, p in compare), initial=0))  # of each row in cos
        own = [j for (_, _, k, p), o in zip(compare, offsets) for j in range(o + p, o + p + k)] \
            if self.similarity and any(p for *_, p in compare) else []  # without probes: every row of cos
        lists = [[r for r, k in groups for _ in range(k)],
                 [g * slots + counts[r] + i for g, (r, k) in enumerate(groups) for i in range(k)],
                 range(self.next_seq, self.next_seq + n), [r for r, _ in groups],
                 compared, [r for _, r, k, p in compare for _ in range(p + k)], own]
        index = torch.tensor([i for part in lists for i in part]).to(new.device, non_blocking=True)
        row, pick, seq, present, items, store_rows, own = index.split([len(part) for part in lists])
        old = self.seq.index_select(0, present)  # [G, slots]: the items before this add
        # Stored items first in insertion order, then the empty slots in slot order (a stable sort: FREE ties):
        # item i takes the first empty slot of its row after those its group's earlier items took.
        slot = torch.argsort(old, dim=1, stable=True).view(-1).index_select(0, pick)  # [n]
        flat = torch.add(slot, row, alpha=slots)  # row * slots + slot: into any buffer viewed as [rows * slots, ...]
        norm = lengths(wide) if norm is None else norm
        self.raw.view(-1, new.shape[1]).index_copy_(0, flat, new)
        self.seq.view(-1).index_copy_(0, flat, seq)
        self.norm64.view(-1).index_copy_(0, flat, norm)
        self.next_seq += n
        for r, k in groups:
            self.counts[r] += k
        if not compare:
            return None
        dots = [self._dots(wide[at[g] - p:at[g] + k], r) for g, r, k, p in compare]  # probes and own items
        dot = dots[0] if len(dots) == 1 else torch.cat(dots)
        cos = dot.div_(norm.index_select(0, items)[:, None] * self.norm64.index_select(0, store_rows))
        if self.similarity:  # S of the new items against every slot, theirs included (empty slots are masked)
            cross = cos.index_select(0, own) if len(own) else cos  # [n, slots]
            self.sim[row, :, slot] = cross  # the new columns, then the new rows (these win where both write)
            self.sim.view(-1, slots).index_copy_(0, flat, cross)
        spans = {r: (g, o, p, k) for (g, r, k, p), o in zip(compare, offsets)}
        return Found(cos, old == FREE, spans)

    def _dots(self, x: torch.Tensor, r: int) -> torch.Tensor:
        """x_i . x_j of x [k, d] float64 with every slot of row r [k, slots] (empty ones are masked later): one
        pass over the row, copied to float64 once (exact; half the bytes of a stored float64 copy to read)."""
        self._wide.copy_(self._rows[r])
        return torch.mm(x, self._wide_t)

    def alive(self) -> torch.Tensor:
        return self.seq != FREE  # [rows, slots]

    @torch.no_grad()
    def shrink(self, capacity: int | list[int], choose: Chooser) -> None:
        """Remove items from every row holding more than its capacity (per row, or one for all) as `choose` picks."""
        caps = capacity if isinstance(capacity, list) else [capacity] * len(self.counts)
        # The rows over capacity, most removals first: round j works on a prefix of them.
        over = sorted((r for r, n in enumerate(self.counts) if n > caps[r]), key=lambda r: caps[r] - self.counts[r])
        if not over:
            return
        excess = [self.counts[r] - caps[r] for r in over]  # removals per row, known on the host
        index = torch.tensor(over).to(self.seq.device, non_blocking=True)
        rows = Rows(self.seq.index_select(0, index))  # [P, slots]
        sim = self.sim.index_select(0, index) if self.similarity else None  # [P, slots, slots]
        s = (sim * rows.alive()[:, None, :]).sum(2) if self.similarity else None  # s_i over the stored items
        for j in range(excess[0]):
            p = sum(e > j for e in excess)  # rows that still hold too many
            head, sp = rows.head(p), None if s is None else s[:p] if p < len(over) else s
            k = choose(head, sp)  # [p]
            head.remove(k)
            if s is not None:  # minus column k: the removed item's similarities
                sp -= sim[:p].gather(2, k.view(p, 1, 1).expand(p, sim.shape[1], 1)).view(p, -1)
        self.seq.index_copy_(0, index, rows.seq)
        for r in over:
            self.counts[r] = caps[r]

    def clear(self, row: int) -> None:
        """Empty one row (its stale slots are masked like any empty slot)."""
        if self.seq is not None and row < len(self.counts):
            self.seq[row] = FREE
            self.counts[row] = 0

    def order(self, row: int) -> torch.Tensor:
        """The occupied slots of `row` in insertion order."""
        return torch.argsort(self.seq[row])[: self.counts[row]]

    def items(self, row: int) -> torch.Tensor:
        """The stored items of `row` [count, d] in insertion order, in `dtype`."""
        return self.raw[row].index_select(0, self.order(row))

    def at(self, flat: torch.Tensor) -> torch.Tensor:
        """The items in flat slots flat[p] = row * slots + slot [P], in `dtype`: [P, d], a copy."""
        return self.raw.view(-1, self.raw.shape[2]).index_select(0, flat)
