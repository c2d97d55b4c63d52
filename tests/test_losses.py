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
