"""The balance of the memory terms against the diffusion loss (eq-grad-ratio), by hand and against autograd."""
import pytest
import torch

from ddgd.method.diffusion import Schedule, q_sample
from ddgd.method.gradient_balance import kappa, output_gradients, parameter_gradients, predicted_ratio
from ddgd.method.models import load_transformer


def _half_schedule() -> Schedule:
    # one step with beta = 0.5: abar_0 = 0.5, so kappa_0 = sqrt(0.5 / 0.5) = 1
    return Schedule(torch.tensor([0.5], dtype=torch.float64), torch.arange(1))


def test_kappa_of_eq_x0():
    sched = Schedule.linear()
    t = torch.tensor([0, 999])
    abar = sched.alphas_cumprod[t]
    assert torch.allclose(kappa(sched.alphas_cumprod, t), ((1 - abar) / abar).sqrt())
    assert float(kappa(_half_schedule().alphas_cumprod, torch.tensor([0]))) == pytest.approx(1.0)


def test_gradients_by_hand():
    # d = 2, B = K = 1. eps_theta = (0, 0), z_t = (sqrt .5, 0): zhat = (z_t - sqrt .5 eps_theta) / sqrt .5 = (1, 0).
    # eps = (1, 0): r = (-1, 0), L_diff = mean(r^2) = 1/2, grad 2 r / (B d) = (-1, 0), norm 1.
    # M_gen = {(0, 1)}: sigma = 0, sin = 1; d sigma / d zhat = (unit(m) - 0) / |zhat| = (0, 1); d zhat / d eps = -1,
    # so lambda * L_gen sends norm lambda. rho = lambda; eq-grad-ratio: lambda * 1 * 1 * 1 / (2 sqrt.5 sqrt.5) = lambda.
    lam = 0.25
    eps_pred = torch.zeros(1, 1, 1, 2)
    eps = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    z_t = torch.tensor([0.5 ** 0.5, 0.0]).view(1, 1, 1, 2)
    memories = {0: (torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))}
    out = output_gradients(eps_pred, eps, z_t, torch.tensor([0]), _half_schedule(), torch.tensor([0]), memories, lam)
    assert float(out["diff"][0]) == pytest.approx(1.0)
    assert float(out["gen"][0]) == pytest.approx(lam)
    assert float(out["sin_theta"][0]) == pytest.approx(1.0)
    assert float(out["residual_rms"][0]) == pytest.approx(0.5 ** 0.5)
    assert float(out["zhat_rms"][0]) == pytest.approx(0.5 ** 0.5)
    rho = predicted_ratio(lam, 1, out["classes"], out["kappa"][0], out["sin_theta"][0], out["residual_rms"][0],
                          out["zhat_rms"][0])
    assert float(rho) == pytest.approx(lam)


@pytest.mark.parametrize("side", [8, 32])  # d = 4 * 8 * 8 = 256 (the CPU default) and 4 * 32 * 32 = 4096 (paper)
def test_formula_is_autograd_at_every_latent_size(side):
    g = torch.Generator().manual_seed(side)
    sched = Schedule.linear()
    b, shape = 8, (4, side, side)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    t = torch.randint(0, 1000, (b,), generator=g)
    z0, eps = torch.randn(b, *shape, generator=g), torch.randn(b, *shape, generator=g)
    eps_pred = eps + 0.3 * torch.randn(b, *shape, generator=g)
    z_t = q_sample(z0, t, eps, sched)
    memories = {c: (torch.randn(3, *shape, generator=g), torch.randn(3, *shape, generator=g)) for c in range(4)}
    out = output_gradients(eps_pred, eps, z_t, t, sched, labels, memories, 0.008)
    picked = out["picked"]
    assert int(picked.sum()) == 4  # one item per class carries L_gen's gradient
    measured = out["gen"][picked] / out["diff"][picked]
    rho = predicted_ratio(0.008, b, out["classes"], out["kappa"], out["sin_theta"], out["residual_rms"],
                          out["zhat_rms"])[picked]
    assert torch.allclose(measured, rho.to(measured), rtol=1e-4)


def test_parameter_gradients_of_a_real_dit():
    model = load_transformer("tiny", seed=0)
    g = torch.Generator().manual_seed(0)
    sched = Schedule.linear()
    z0, eps = torch.randn(4, 4, 4, 4, generator=g), torch.randn(4, 4, 4, 4, generator=g)
    labels = torch.tensor([0, 0, 1, 1])
    memories = {c: (torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)) for c in (0, 1)}
    t = torch.tensor([10, 200, 500, 900])
    norms, z_t, eps_pred = parameter_gradients(model, z0, labels, labels, t, eps, sched, memories, 0.002, 0.008)
    assert z_t.shape == eps_pred.shape == z0.shape and not eps_pred.requires_grad
    assert set(norms) == {"diff", "real", "gen"} and all(v > 0 for v in norms.values())
    doubled, _, _ = parameter_gradients(model, z0, labels, labels, t, eps, sched, memories, 0.004, 0.016)
    # the memory terms' gradients are linear in their weights; the diffusion loss's does not depend on them
    assert doubled["gen"] == pytest.approx(2 * norms["gen"], rel=1e-6)
    assert doubled["real"] == pytest.approx(2 * norms["real"], rel=1e-6)
    assert doubled["diff"] == pytest.approx(norms["diff"], rel=1e-9)


def test_the_latent_size_conclusion_follows_the_measured_direction():
    import pandas as pd

    from ddgd.pages.memory_weights import size_conclusion

    small = pd.Series({"ratio_gen": 0.2, "ratio_real": 0.4})
    # larger latents pull more weakly in both terms: no reason to raise the weights on small latents
    assert "no reason" in size_conclusion(small, pd.Series({"ratio_gen": 0.1, "ratio_real": 0.2}))
    # 5 % stronger on the large latents is under the 1.1 resolution: still no direction
    assert "no reason" in size_conclusion(small, pd.Series({"ratio_gen": 0.21, "ratio_real": 0.4}))
    # L_real pulls 0.4 on small and 1.2 on large latents: 1.2 / 0.4 = 3, the larger of the two terms' factors
    assert size_conclusion(small, pd.Series({"ratio_gen": 0.3, "ratio_real": 1.2})) == \
        "would at most justify weights 3.0 times larger on the CPU"
