"""Exact tests of the loss terms (book page The method, `eq-diffusion` to `eq-total`) on hand-computable tensors."""
import math

import pytest
import torch

from ddgd.method.diffusion import Schedule, q_sample, space_timesteps
from ddgd.method.losses import diversity, minimax_terms, representativeness, total_loss, vb_term
from ddgd.method.diffusion import predicted_x0


def test_predicted_x0_inverts_q_sample():
    sched = Schedule.linear()
    z0 = torch.randn(5, 4, 2, 2)
    eps = torch.randn_like(z0)
    t = torch.tensor([0, 10, 500, 900, 999])
    z_t = q_sample(z0, t, eps, sched)
    assert torch.allclose(predicted_x0(z_t, eps, sched.alphas_cumprod, t), z0, atol=1e-3)


def test_representativeness_and_diversity_orthogonal():
    e = torch.eye(3)
    pred = e[:2]  # e0, e1
    # real memory holds e0 only: similarities 1 and 0 -> min 0 -> r = 1
    assert representativeness(pred, e[:1]) == pytest.approx(1.0)
    # memory e0, e1 and pred e0, e1: min over all pairs is 0
    assert representativeness(pred, e[:2]) == pytest.approx(1.0)
    # pred identical to memory item: max 1
    assert diversity(pred, e[1:2]) == pytest.approx(1.0)
    assert diversity(pred, e[2:3]) == pytest.approx(0.0)
    # 45 degrees
    v = torch.tensor([[1.0, 1.0, 0.0]])
    assert diversity(v, e[:1]) == pytest.approx(1 / math.sqrt(2))
    assert representativeness(v, e[:2]) == pytest.approx(1 - 1 / math.sqrt(2))


def test_minimax_terms_average_over_batch_classes():
    e = torch.eye(4)
    pred = torch.stack([e[0], e[1], e[2]])
    labels = torch.tensor([0, 0, 1])
    memories = {0: (e[:1], e[1:2]), 1: (e[2:3], e[3:4])}
    terms = minimax_terms(pred, labels, memories)
    # class 0: r = 1 - min(1, 0) = 1, g = max(0, 1) = 1; class 1: r = 0, g = 0
    assert float(terms.l_real) == pytest.approx(0.5)
    assert float(terms.l_gen) == pytest.approx(0.5)


def test_class_without_memory_adds_nothing_but_counts_in_k():
    e = torch.eye(2)
    terms = minimax_terms(e, torch.tensor([0, 1]), {0: (e[1:2], e[1:2])})
    assert float(terms.l_real) == pytest.approx(0.5) and float(terms.l_gen) == pytest.approx(0.0)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_cumulative_multiplicities(k):
    labels = torch.arange(k)
    pred = torch.randn(k, 6)
    memories = {c: (torch.randn(2, 6), torch.randn(2, 6)) for c in range(k)}
    once = minimax_terms(pred, labels, memories, "once")
    cum = minimax_terms(pred, labels, memories, "cumulative")
    assert [cum.weights[c] for c in range(k)] == [k - j for j in range(k)]
    expected = sum((k - j) * float(once.per_class[c][0]) for j, c in enumerate(range(k))) / k
    assert float(cum.l_real) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        minimax_terms(pred, labels, memories, "twice")


def test_gradients_flow_through_prediction_only():
    pred = torch.randn(3, 5, requires_grad=True)
    mem = torch.randn(4, 5, requires_grad=True)
    terms = minimax_terms(pred, torch.tensor([0, 0, 1]), {0: (mem, mem), 1: (mem, mem)})
    total_loss(torch.tensor(0.0), None, terms, 0.002, 0.008).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_vb_term_is_minimal_at_true_posterior_variance():
    torch.manual_seed(0)
    sched = Schedule.linear()
    z0 = torch.randn(64, 4, 2, 2)
    eps = torch.randn_like(z0)
    t = torch.full((64,), 1)  # early t: beta_t and beta_tilde_t differ by a factor ~2
    z_t = q_sample(z0, t, eps, sched)
    # the exact eps and v = -1 (beta_tilde, the true posterior variance) give KL 0
    assert float(vb_term(eps, -torch.ones_like(z0), z0, z_t, t, sched)) == pytest.approx(0.0, abs=1e-4)
    assert float(vb_term(eps, torch.ones_like(z0), z0, z_t, t, sched)) > 1e-4


def test_space_timesteps_like_improved_ddpm():
    steps = space_timesteps(1000, 50)
    assert len(steps) == 50 and steps[0] == 0 and steps[-1] == 999
    sched = Schedule.linear().respaced(50)
    # the respaced process keeps abar at the kept steps
    assert torch.allclose(sched.alphas_cumprod, Schedule.linear().alphas_cumprod[steps])


def _memories(rule, g, n_real=4, n_gen=3, d=6, steps=5):
    from ddgd.method.memory import ClassMemories

    mem = ClassMemories(n_real, n_gen, rule)
    for _ in range(steps):
        mem.update(torch.randint(0, 4, (6,), generator=g), torch.randn(6, d, generator=g), torch.randn(6, d, generator=g))
    return mem


@pytest.mark.parametrize("rule", ["fifo", "adaptive"])
@pytest.mark.parametrize("accumulate", ["once", "cumulative"])
def test_memory_terms_are_minimax_terms_then_the_update(rule, accumulate):
    # One pass over each memory gives what `minimax_terms` gives against the memories as they were, with the
    # same gradient to the bit (the same pair, sigma computed alike), and leaves the memories as `update` does.
    import copy

    from ddgd.method.memory_terms import memory_terms

    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        mem = _memories(rule, g)
        twin = copy.deepcopy(mem)
        labels = torch.randint(0, 5, (6,), generator=g)  # class 4: seen for the first time, no term
        pred0, z0 = torch.randn(6, 6, generator=g), torch.randn(6, 6, generator=g)
        a, b = pred0.clone().requires_grad_(), pred0.clone().requires_grad_()
        present = {c: m for c in set(labels.tolist()) if (m := mem.tensors(c)) is not None}
        expected = minimax_terms(a, labels, present, accumulate)
        mem.update(labels, z0, a.detach())
        got = memory_terms(twin, b, labels, z0, accumulate)
        assert float(got.l_real) == pytest.approx(float(expected.l_real), abs=1e-6)
        assert float(got.l_gen) == pytest.approx(float(expected.l_gen), abs=1e-6)
        assert got.weights == expected.weights and set(got.per_class) == set(expected.per_class)
        total_loss(torch.tensor(0.0), None, expected, 0.002, 0.008).backward()
        total_loss(torch.tensor(0.0), None, got, 0.002, 0.008).backward()
        assert torch.equal(a.grad, b.grad)
        for c in mem.real:
            assert all(torch.equal(x, y) for x, y in zip(mem.tensors(c), twin.tensors(c)))


def test_memory_terms_on_hand_computable_memories():
    from ddgd.method.memory import ClassMemories
    from ddgd.method.memory_terms import memory_terms

    e = torch.eye(3)
    mem = ClassMemories(4, 4, "adaptive")
    mem.update(torch.tensor([0, 0]), e[:2], torch.stack([e[2], e[0]]))  # M_real[0] = {e0, e1}, M_gen[0] = {e2, e0}
    pred = torch.stack([e[0], e[1]]).requires_grad_()  # class 0, and class 1 (no memory yet)
    terms = memory_terms(mem, pred, torch.tensor([0, 1]), torch.stack([e[2], e[2]]))
    # class 0: pred e0 against {e0, e1}: min 0 -> r = 1; against {e2, e0}: max 1 -> g = 1; K = 2 classes
    assert float(terms.l_real) == pytest.approx(0.5) and float(terms.l_gen) == pytest.approx(0.5)
    assert set(terms.per_class) == {0} and terms.weights == {0: 1, 1: 1}
    assert len(mem.real[0]) == 3 and len(mem.real[1]) == 1  # the batch went in after the terms
    with pytest.raises(ValueError, match="accumulate"):
        memory_terms(mem, pred, torch.tensor([0, 1]), pred.detach(), "twice")
