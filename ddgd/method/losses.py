"""The losses of DDGD (book page: The method): diffusion loss, VB term, and the two memory terms.

Notation (the book's page The method): z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps, eps_theta the model's
noise prediction, zhat the predicted clean latent, sigma(a, b) the cosine similarity of two
latents flattened to vectors, M_real[c] and M_gen[c] the memories of class c.

    L = L_diff + lambda_r L_real + lambda_g L_gen                                       (eq-total)
    r_c = 1 - min_{i, m} sigma(Zhat_c[i], M_real[c][m])                                 (eq-real)
    g_c = max_{i, m} sigma(Zhat_c[i], M_gen[c][m])                                      (eq-gen)
    L_real = sum_c r_c / K,   L_gen = sum_c g_c / K     (K distinct classes in the batch)

Everything here is a pure tensor function: no I/O, no config objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import torch
import torch.nn.functional as F

from ddgd.method.diffusion import Schedule, gather, learned_log_variance, posterior_mean, predicted_x0
from ddgd.method.similarity import cosine_matrix


def representativeness(pred: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """r_c = 1 - min over all pairs of sigma(pred_i, memory_m): pull every prediction towards the real memory."""
    return 1 - cosine_matrix(pred, memory).min()


def diversity(pred: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """g_c = max over all pairs of sigma(pred_i, memory_m): push predictions away from earlier generations."""
    return cosine_matrix(pred, memory).max()


@dataclass
class MinimaxTerms:
    l_real: torch.Tensor
    l_gen: torch.Tensor
    per_class: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # c -> (r_c, g_c), detached
    weights: dict[int, int] = field(default_factory=dict)  # c -> how many times the class is counted


def minimax_terms(
    pred: torch.Tensor,
    labels: torch.Tensor,
    memories: Mapping[int, tuple[torch.Tensor, torch.Tensor]],
    accumulate: str = "once",
) -> MinimaxTerms:
    """L_real and L_gen of a batch (eq-real, eq-gen), one scalar per class, averaged over the K classes.

    pred [B, ...] are the predicted latents, labels [B], and `memories[c] = (M_real[c], M_gen[c])`
    for the classes that have memories (a class seen for the first time has none and adds nothing).

    accumulate="once" counts each class once (paper, Minimax). "cumulative" reproduces the released
    code, which adds the running sums to the loss inside the per-class loop (ascending labels), so the
    j-th of K classes is counted K - j + 1 times.
    """
    if accumulate not in ("once", "cumulative"):
        raise ValueError(f"accumulate must be 'once' or 'cumulative', got {accumulate!r}")
    labels = labels.cpu()  # the class blocks are chosen on the host: no device sync on a GPU when labels live there
    classes = sorted(set(labels.tolist()))
    k = len(classes)
    zero = pred.new_zeros(())
    l_real, l_gen = zero, zero
    terms = MinimaxTerms(zero, zero)
    for j, c in enumerate(classes):
        weight = 1 if accumulate == "once" else k - j
        terms.weights[c] = weight
        if c not in memories:
            continue
        m_real, m_gen = memories[c]
        rows = torch.nonzero(labels == c).squeeze(1).to(pred.device, non_blocking=True)
        block = pred.index_select(0, rows)  # Zhat_c: the batch items of class c
        r_c = representativeness(block, m_real)
        g_c = diversity(block, m_gen)
        terms.per_class[c] = (r_c.detach(), g_c.detach())  # tensors: reading them now would sync a GPU
        l_real = l_real + weight * r_c
        l_gen = l_gen + weight * g_c
    terms.l_real, terms.l_gen = l_real / max(k, 1), l_gen / max(k, 1)
    return terms


def diffusion_loss(eps_pred: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """L_diff = ||eps_theta(z_t, t, c) - eps||^2, averaged over all elements (eq-diffusion)."""
    return F.mse_loss(eps_pred, eps)


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """log-likelihood of x in [-1, 1] under a Gaussian discretised to 256 bins (improved DDPM)."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def vb_term(
    eps_pred: torch.Tensor, v: torch.Tensor, z0: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor, schedule: Schedule
) -> torch.Tensor:
    """Improved DDPM's L_vb for the learned variance, in bits per dimension, averaged over the batch.

    The mean is detached (eps_pred.detach()), so this term trains only the variance head v, as in
    DiT's "hybrid" loss. At t = 0 it is the discretised decoder NLL, elsewhere the posterior KL.
    """
    zhat = predicted_x0(z_t, eps_pred.detach(), schedule.alphas_cumprod, t)
    model_mean = posterior_mean(zhat, z_t, t, schedule)
    model_log_var = learned_log_variance(v, t, schedule)
    true_mean = posterior_mean(z0, z_t, t, schedule)
    true_log_var = gather(schedule.posterior_log_variance_clipped, t, z_t)
    kl = normal_kl(true_mean, true_log_var, model_mean, model_log_var).flatten(1).mean(1) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(z0, model_mean, 0.5 * model_log_var).flatten(1).mean(1) / math.log(2.0)
    return torch.where(t == 0, nll, kl).mean()


def total_loss(l_diff, l_vb, terms: MinimaxTerms | None, lambda_r: float, lambda_g: float) -> torch.Tensor:
    """L = L_diff (+ L_vb) + lambda_r L_real + lambda_g L_gen  (eq-total)."""
    loss = l_diff if l_vb is None else l_diff + l_vb
    if terms is not None:
        loss = loss + lambda_r * terms.l_real + lambda_g * terms.l_gen
    return loss
