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

from collections.abc import Callable

import torch

from ddgd.method.similarity import unit

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

    def __init__(self, seq: torch.Tensor, slot: torch.Tensor | None = None):
        self.seq = seq
        self._slot = torch.arange(seq.shape[1], device=seq.device) if slot is None else slot  # [slots]

    def head(self, p: int) -> Rows:
        """The first p rows (a view: what it removes is removed here)."""
        return Rows(self.seq[:p], self._slot)

    def alive(self) -> torch.Tensor:
        return self.seq != FREE  # [P, slots]

    def oldest_among(self, candidates: torch.Tensor) -> torch.Tensor:
        """Per row, the slot with the smallest insertion number among `candidates` [P, slots] (stored items only)."""
        return torch.argmin(self.seq.masked_fill(~candidates, FREE), dim=1)  # an empty slot's FREE never wins

    def extreme(self, s: torch.Tensor, largest: bool) -> torch.Tensor:
        """Per row, the oldest stored item whose s [P, slots] is the largest (or smallest), within TIE_TOLERANCE."""
        masked = s.masked_fill(self.seq == FREE, float("-inf") if largest else float("inf"))  # empty: never a pick
        top = masked.amax(1, keepdim=True) if largest else masked.amin(1, keepdim=True)  # [P, 1]
        return self.oldest_among((masked - top).abs_() <= top.abs().clamp_(min=1.0).mul_(TIE_TOLERANCE))

    def remove(self, k: torch.Tensor) -> None:
        """Empty slot k[p] of every row p."""
        self.seq.masked_fill_(self._slot == k[:, None], FREE)


Chooser = Callable[[Rows, "torch.Tensor | None"], torch.Tensor]


def lengths(x: torch.Tensor) -> torch.Tensor:
    """|x_i| of x [n, d] in float64, floored as F.normalize floors it; finite exactly when x_i is (squares of
    float32 values cannot overflow float64)."""
    return torch.linalg.vector_norm(x, dim=1, dtype=torch.float64).clamp_min(1e-12)


class SlotStore:
    """Memories in slots: raw [rows, slots, d], the items as given, in the dtype of the first ones;
    unit [rows, slots, d], unit(item), for the memory terms; seq [rows, slots] int64, insertion
    numbers (FREE: an empty slot); norm64 [rows, slots], the items' float64 lengths (1 in a slot
    never filled: every buffer stays finite, empty slots are masked rather than skipped); with
    `similarity`, sim [rows, slots, slots] float64, S_ij = x_i . x_j / (|x_i| |x_j|) within a row.
    `counts[r]`, the items of row r, is known on the host.
    """

    def __init__(self, similarity: bool):
        self.similarity = similarity
        self.raw = self.unit = self.norm64 = self.sim = self.seq = self._wide = None
        self.counts: list[int] = []
        self.next_seq = 0

    def _grow(self, rows: int, slots: int, like: torch.Tensor) -> None:
        """Reallocate every buffer to `rows` x `slots` (the new ones empty), keeping what is stored."""
        dev, d = like.device, like.shape[1]

        def grown(old, shape, dtype, fill=0):
            new = torch.full(shape, fill, dtype=dtype, device=dev)
            if old is not None:
                new[tuple(slice(0, n) for n in old.shape)] = old
            return new

        dtype = like.dtype if self.raw is None else self.raw.dtype
        self.raw = grown(self.raw, (rows, slots, d), dtype)
        self.unit = grown(self.unit, (rows, slots, d), dtype)
        self.seq = grown(self.seq, (rows, slots), torch.int64, FREE)
        self.norm64 = grown(self.norm64, (rows, slots), torch.float64, 1)
        self._wide = torch.empty(slots, d, dtype=torch.float64, device=dev)  # one row in float64, during `add`
        if self.similarity:
            self.sim = grown(self.sim, (rows, slots, slots), torch.float64)
        self.counts += [0] * (rows - len(self.counts))

    @torch.no_grad()  # memories hold detached items: no autograd bookkeeping
    def add(self, groups: Groups, new: torch.Tensor, new64: torch.Tensor | None = None, reserve: int = 0,
            probes: dict[int, int] | None = None) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Write the items `new` [n, d] into empty slots, group by group (`Groups`); `new64`: new in float64.

        The slots grow when a row has too few empty ones: doubling up to `reserve` (a capacity, so that
        a memory filled item by item reallocates rarely), then to what is needed.

        `probes[r] = p` asks for the cosine similarities with row r of the p items of `new` just before
        row r's own and of its own k, computed in the pass that builds S: returned as {r: (sims
        [p + k, slots] float64, empty [slots] True where the row held no item before this add)}.
        """
        groups, probes = [(r, k) for r, k in groups if k], probes or {}
        if not groups:
            return {}
        rows, slots = (0, 0) if self.seq is None else self.seq.shape
        counts = self.counts + [0] * max(0, max(r for r, _ in groups) + 1 - len(self.counts))
        need = max(counts[r] + k for r, k in groups)
        if self.seq is None or len(counts) > rows or need > slots:
            self._grow(max(len(counts), rows), max(slots, need, min(2 * slots, reserve)), new)
        dev, n = new.device, new.shape[0]
        # Where each item goes, made on the host: its row, its rank within its group, its group; the groups' rows.
        where = [r for r, k in groups for _ in range(k)] + [i for _, k in groups for i in range(k)]
        where += [g for g, (_, k) in enumerate(groups) for _ in range(k)] + [r for r, _ in groups]
        row, rank, group, present = torch.tensor(where).to(dev, non_blocking=True).split([n, n, n, len(groups)])
        held = self.seq.index_select(0, present) != FREE  # [G, slots]: the items before this add
        # Empty slots first, each row in slot order (stable): item i takes its row's rank[i]-th empty slot.
        slot = torch.argsort(held.to(torch.uint8), dim=1, stable=True)[group, rank]  # [n]
        if new.dtype != self.raw.dtype:  # stored as the first items were
            new, new64 = new.to(self.raw), None
        new64 = new.double() if new64 is None else new64  # exact
        self.raw[row, slot] = new
        self.unit[row, slot] = unit(new)  # as the memory terms normalise items, row by row
        self.seq[row, slot] = torch.arange(self.next_seq, self.next_seq + n, device=dev)
        self.norm64[row, slot] = norm = lengths(new64)
        self.next_seq += n
        for r, k in groups:
            self.counts[r] += k
        if not (self.similarity or probes):
            return {}
        cos, spans = self._compare(groups, new64, norm, probes)
        if self.similarity:  # S of the new items against every slot, theirs included (empty slots are masked)
            own = [i for _, _, end, k in spans for i in range(end - k, end)]  # their rows in `cos`
            own = torch.tensor(own).to(dev, non_blocking=True) if len(own) < len(cos) else None
            cross = cos if own is None else cos.index_select(0, own)  # [n, slots]
            self.sim[row, :, slot] = cross  # the new columns, then the new rows
            self.sim[row, slot] = cross
        empty = ~held
        return {r: (cos[end - k - probes[r]:end], empty[g]) for g, r, end, k in spans if r in probes}

    def _compare(self, groups: Groups, new64: torch.Tensor, norm: torch.Tensor, probes: dict[int, int]):
        """Float64 cosines [R, slots] of the items compared with each row (its probes, then its own items),
        and for each compared group (g, row, end, k): its rows of the result end at `end`, its own k last."""
        spans, dots, items, store_rows, start = [], [], [], [], 0
        for g, (r, k) in enumerate(groups):
            if self.similarity or r in probes:  # one pass over row r: copied to float64 once, compared there
                a = start - probes.get(r, 0)
                self._wide.copy_(self.raw[r])  # exact; half the bytes of a stored float64 copy to read
                dots.append(new64[a:start + k] @ self._wide.T)  # x_i . x_j
                items += range(a, start + k)
                store_rows += [r] * (start + k - a)
                spans.append((g, r, len(items), k))
            start += k
        index = torch.tensor(items + store_rows).to(new64.device, non_blocking=True)
        dot = dots[0] if len(dots) == 1 else torch.cat(dots)
        scale = norm.index_select(0, index[:len(items)])[:, None] * self.norm64.index_select(0, index[len(items):])
        return dot / scale, spans  # x_i . x_j / (|x_i| |x_j|)

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
        first = torch.arange(len(over), device=index.device)
        for j in range(excess[0]):
            p = sum(e > j for e in excess)  # rows that still hold too many
            k = choose(rows.head(p), None if s is None else s[:p])  # [p]
            rows.head(p).remove(k)
            if s is not None:
                s[:p] -= sim[first[:p], :, k]  # minus column k: the removed item's similarities
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
        return self.raw[row].index_select(0, self.order(row))  # [count, d]
