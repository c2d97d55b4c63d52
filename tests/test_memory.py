"""Exact tests of the memory update rules (book page The method, `eq-adaptive`) on hand-computable tensors."""
import pytest
import torch

from ddgd.method.memory import UPDATE_RULES, ClassMemories, MemoryBank, adaptive, adaptive_min, fifo


def reference_adaptive(items, capacity, largest=True):
    """The rule as written: rebuild S after every removal (the slow reference)."""
    keep = list(range(items.shape[0]))
    while len(keep) > capacity:
        u = torch.nn.functional.normalize(items[keep].double(), dim=1)
        s = (u @ u.T).sum(1)
        k = int(torch.argmax(s)) if largest else int(torch.argmin(s))
        keep.pop(k)
    return torch.tensor(keep)


def test_registry_names():
    assert {"fifo", "adaptive", "adaptive-min"} <= set(UPDATE_RULES)


def test_fifo_keeps_newest():
    items = torch.arange(5.0).reshape(5, 1)
    assert fifo(items, 3).tolist() == [2, 3, 4]
    assert fifo(items, 10).tolist() == [0, 1, 2, 3, 4]


def test_adaptive_removes_duplicate_first():
    # e0, e1, e2 orthogonal, plus a second copy of e0: s = [2, 1, 1, 2] -> remove index 0 (first on ties)
    items = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [2.0, 0, 0]])
    assert adaptive(items, 3).tolist() == [1, 2, 3]


def test_adaptive_recomputes_after_each_removal():
    # two pairs of duplicates and one lone vector: s = [2, 2, 2, 2, 1]
    items = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    # remove 0 (first of the ties) -> s = [-, 1, 2, 2, 1] -> remove 2 -> keep [1, 3, 4]
    assert adaptive(items, 3).tolist() == [1, 3, 4]


def test_adaptive_min_removes_least_similar():
    items = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    assert adaptive_min(items, 2).tolist() == [0, 1]


def test_adaptive_new_item_can_be_removed_at_once():
    bank = MemoryBank(2, "adaptive")
    bank.add(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    bank.add(torch.tensor([[1.0, 1.0]]))  # similar to both: s is largest for the newcomer
    assert torch.equal(bank.tensor(), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("largest", [True, False])
def test_adaptive_matches_reference_on_random_items(largest):
    g = torch.Generator().manual_seed(0)
    items = torch.randn(40, 16, generator=g)
    fast = (adaptive if largest else adaptive_min)(items, 25)
    assert fast.tolist() == reference_adaptive(items, 25, largest).tolist()


def test_memory_bank_flattens_detaches_and_caps():
    bank = MemoryBank(4, "fifo")
    x = torch.randn(6, 2, 3, requires_grad=True)
    bank.add(x)
    assert len(bank) == 4 and bank.tensor().shape == (4, 6)
    assert not bank.tensor().requires_grad
    assert torch.equal(bank.tensor(), x.detach().reshape(6, 6)[2:])


def test_memory_bank_rejects_bad_input():
    with pytest.raises(ValueError, match="positive"):
        MemoryBank(0)
    with pytest.raises(ValueError, match="unknown memory rule"):
        MemoryBank(3, "lifo")
    bank = MemoryBank(3)
    bank.add(torch.randn(2, 4))
    with pytest.raises(ValueError, match="does not match"):
        bank.add(torch.randn(2, 5))


def test_class_memories_are_per_class_and_roundtrip():
    mem = ClassMemories(2, 3, "fifo")
    labels = torch.tensor([0, 1, 0, 0])
    z0 = torch.arange(4.0).reshape(4, 1)
    mem.update(labels, z0, z0 + 10)
    real, gen = mem.tensors(0)
    assert real.flatten().tolist() == [2.0, 3.0] and gen.flatten().tolist() == [10.0, 12.0, 13.0]
    assert mem.tensors(5) is None
    other = ClassMemories(2, 3, "fifo")
    other.load_state_dict(mem.state_dict())
    assert torch.equal(other.tensors(1)[0], mem.tensors(1)[0])
    with pytest.raises(ValueError):
        ClassMemories(2, 3, "adaptive").load_state_dict(mem.state_dict())


def test_non_finite_latents_are_refused_clearly():
    bank = MemoryBank(2, "adaptive")
    with pytest.raises(ValueError, match="diverged"):
        bank.add(torch.tensor([[float("nan"), 1.0]]))


@pytest.mark.parametrize("rule", ["adaptive", "adaptive-min"])
def test_incremental_bank_keeps_what_the_rule_keeps_from_scratch(rule):
    # A bank that carries its similarity sums across 60 adds holds, after every add, exactly the items
    # that the pure rule keeps when given the previous contents plus the new batch afresh.
    g = torch.Generator().manual_seed(1)
    bank, plain = MemoryBank(8, rule), None
    for step in range(60):
        new = torch.randn(int(torch.randint(1, 4, (1,), generator=g)), 5, generator=g)
        if step % 7 == 0:
            new[0] = bank.tensor()[0] if len(bank) else new[0]  # exact duplicates: ties on purpose
        bank.add(new)
        plain = new if plain is None else torch.cat([plain, new])
        if plain.shape[0] > 8:
            plain = plain[UPDATE_RULES[rule](plain, 8)]
        assert torch.equal(bank.tensor(), plain), step


def test_a_restored_bank_continues_as_the_original():
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(3, 4, generator=g) for _ in range(12)]
    whole, part = MemoryBank(5, "adaptive"), MemoryBank(5, "adaptive")
    for b in batches[:6]:
        whole.add(b)
        part.add(b)
    resumed = MemoryBank(5, "adaptive")
    resumed.load_state_dict(part.state_dict())  # its sums are rebuilt from the items
    for b in batches[6:]:
        whole.add(b)
        resumed.add(b)
    assert torch.equal(whole.tensor(), resumed.tensor())


@pytest.mark.parametrize("rule", ["fifo", "adaptive", "adaptive-min"])
def test_class_memories_update_every_class_at_once_as_banks_would_one_by_one(rule):
    # ClassMemories keeps all memories in one slot store (M_real and M_gen of different sizes, classes arriving
    # over time, the store growing); each must hold exactly what a bank of its own holds after the same adds.
    g = torch.Generator().manual_seed(3)
    mem = ClassMemories(4, 3, rule)
    alone = {}
    for step in range(25):
        labels = torch.randint(0, 2 + step // 5, (6,), generator=g)
        z0, zhat = torch.randn(6, 2, 3, generator=g), torch.randn(6, 2, 3, generator=g)
        if step % 6 == 0:
            zhat[1] = zhat[0]  # exact duplicates: ties on purpose
        mem.update(labels, z0, zhat)
        for c in sorted(set(labels.tolist())):
            real, gen = alone.setdefault(c, (MemoryBank(4, rule), MemoryBank(3, rule)))
            real.add(z0[labels == c])
            gen.add(zhat[labels == c])
        for c, (real, gen) in alone.items():
            assert torch.equal(mem.tensors(c)[0], real.tensor()) and torch.equal(mem.tensors(c)[1], gen.tensor()), step


def test_compare_and_update_compares_with_the_memories_as_they_were():
    # M_real[0] = {e0, e1}, M_gen[0] = {e2}. A batch with zhat = e0 + e2 (cosine 1/sqrt(2) with e0 and with e2,
    # 0 with e1) and z0 = e0: the similarities are those with the old items only (the slot z0 takes was empty).
    e = torch.eye(3)
    mem = ClassMemories(3, 3, "adaptive")
    mem.update(torch.tensor([0, 0]), e[:2], e[2:3].expand(2, 3))  # M_gen[0] = {e2, e2}
    found = mem.compare_and_update(torch.tensor([0]), e[:1], (e[0] + e[2])[None])
    (sims_r, empty_r), (sims_g, empty_g) = found[0]
    assert sorted(sims_r[0][~empty_r].tolist()) == pytest.approx([0.0, 2 ** -0.5])  # e1, e0: not the new z0
    assert sims_g[0][~empty_g].tolist() == pytest.approx([2 ** -0.5] * 2)
    assert int((~empty_r).sum()) == 2 and int((~empty_g).sum()) == 2
    best = sims_r[0].masked_fill(empty_r, -1).argmax()
    assert torch.equal(mem.unit_items("real", [0], best[None]), e[:1])  # the slot of e0 holds unit(e0)
    assert len(mem.real[0]) == 3 and len(mem.gen[0]) == 3  # and the batch went in
    assert mem.compare_and_update(torch.tensor([5]), e[:1], e[:1]) == {}  # a new class has nothing to compare with


def test_compare_and_update_matches_cosines_with_the_previous_items():
    g = torch.Generator().manual_seed(4)
    mem = ClassMemories(5, 4, "adaptive")
    for _ in range(4):
        mem.update(torch.randint(0, 3, (8,), generator=g), torch.randn(8, 7, generator=g), torch.randn(8, 7, generator=g))
    labels, z0, zhat = torch.randint(0, 3, (8,), generator=g), torch.randn(8, 7, generator=g), torch.randn(8, 7, generator=g)
    before = {c: mem.tensors(c) for c in range(3)}
    found = mem.compare_and_update(labels, z0, zhat)
    for c, pairs in found.items():
        for (sims, empty), items in zip(pairs, before[c]):
            expected = torch.nn.functional.normalize(zhat[labels == c].double(), dim=1) @ \
                torch.nn.functional.normalize(items.double(), dim=1).T
            got = sims[:, ~empty]  # the old items, in slot order: compare as sorted rows
            assert torch.allclose(got.sort(1).values, expected.sort(1).values, atol=1e-12)


def test_unit_items_normalise_the_stored_items_when_asked_as_minimax_terms_would():
    # No unit vectors are stored: unit_items normalises the gathered items, to the bit what F.normalize gives
    # for the whole memory (as `minimax_terms` normalises it). Hand-computable: (3, 4, 0) -> (0.6, 0.8, 0).
    mem = ClassMemories(3, 3, "adaptive")
    mem.update(torch.tensor([0, 0]), torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]), torch.ones(2, 3))
    slots = mem._banks.store.order(mem._banks.rows[("real", 0)])
    got = mem.unit_items("real", [0, 0], slots)
    assert torch.allclose(got, torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]))
    g = torch.Generator().manual_seed(6)
    mem = ClassMemories(16, 8, "adaptive")
    for _ in range(5):
        mem.update(torch.randint(0, 3, (8,), generator=g), torch.randn(8, 4, 8, 8, generator=g),
                   torch.randn(8, 4, 8, 8, generator=g))
    for c in range(3):
        for m, items in zip(("real", "gen"), mem.tensors(c)):
            slots = mem._banks.store.order(mem._banks.rows[(m, c)])
            assert torch.equal(mem.unit_items(m, [c] * len(slots), slots), torch.nn.functional.normalize(items, dim=1))


def test_update_compared_blocks_are_the_rows_compare_and_update_returns():
    import copy

    g = torch.Generator().manual_seed(7)
    mem = ClassMemories(5, 4, "adaptive")
    for _ in range(3):
        labels = torch.randint(0, 3, (8,), generator=g)
        mem.update(labels, torch.randn(8, 7, generator=g), torch.randn(8, 7, generator=g))
    twin = copy.deepcopy(mem)
    labels, z0, zhat = torch.tensor([2, 0, 2, 4]), torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    found, blocks = mem.update_compared(labels, z0, zhat)
    expected = twin.compare_and_update(labels, z0, zhat)
    assert set(blocks) == set(expected) == {0, 2}  # class 4 is new: nothing to compare with
    for c, n in ((0, 1), (2, 2)):
        for m, (first, group, row), (sims, empty) in zip(("real", "gen"), blocks[c], expected[c]):
            assert torch.equal(found.cos[first:first + n], sims) and torch.equal(found.empty[group], empty)
            assert row == mem._banks.rows[(m, c)]  # M_real's block, then M_gen's


def test_items_keep_the_dtype_of_the_first_ones():
    bank = MemoryBank(3, "adaptive")
    bank.add(torch.tensor([[1.0, 0.0]]))
    bank.add(torch.tensor([[0.1, 1.0]], dtype=torch.float64))  # stored as float32, as the first items were
    assert bank.tensor().dtype == torch.float32
    assert torch.equal(bank.tensor(), torch.tensor([[1.0, 0.0], [0.1, 1.0]]))
