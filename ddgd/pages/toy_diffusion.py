"""The 2-D diffusion model of Figure 1: a noise-prediction MLP, its training with the memory terms,
and its sampling paths (book page: Figure 1).

Trained with the package's own losses and memories (`ddgd.method`), so the toy runs the same
equations as the DiT: the diffusion loss, and for ``minimax`` / ``ddgd`` the two memory terms (`eq-real`,
`eq-gen`) with FIFO or self-adaptive memories.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ddgd.method.diffusion import Schedule, gather, posterior_mean, predicted_x0, q_sample
from ddgd.method.losses import diffusion_loss, minimax_terms, total_loss
from ddgd.method.memory import ClassMemories
from ddgd.method.models import EMA


# ----------------------------------------------------------------------------- model
def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t [B] -> [B, dim] (Transformer / DDPM style)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)  # [half]
    args = t.float()[:, None] * freqs[None]  # [B, half]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ToyDenoiser(nn.Module):
    """eps_theta(x_t, t): an MLP on [x_t, embedding(t)] predicting the noise of 2-D points."""

    def __init__(self, hidden: int = 128, time_dim: int = 32, depth: int = 3):
        super().__init__()
        self.time_dim = time_dim
        layers: list[nn.Module] = [nn.Linear(2 + time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # x [B, 2], t [B] -> [B, 2]
        return self.net(torch.cat([x, time_embedding(t, self.time_dim)], dim=1))


# ----------------------------------------------------------------------------- training and sampling
def train(model: ToyDenoiser, data: torch.Tensor, schedule: Schedule, steps: int, batch_size: int, lr: float,
          g: torch.Generator, memories: ClassMemories | None = None, lambda_r: float = 0.0,
          lambda_g: float = 0.0, ema_decay: float | None = None) -> list[dict]:
    """Train in place on points data [N, 2]; with `memories`, add the memory terms (book page: The method).

    With `ema_decay`, the model ends with the EMA of its weights (started from the initial ones),
    as the paper samples from the EMA (book page: The method).
    All points form one class (label 0), so the memory terms are one scalar each per step. As in
    the fine-tuning code, the memories are updated after the step's terms are computed.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ema = EMA(model, ema_decay) if ema_decay else None
    log = []
    for _ in range(steps):
        idx = torch.randint(0, len(data), (batch_size,), generator=g)
        x0 = data[idx]  # [B, 2]
        y = torch.zeros(batch_size, dtype=torch.long)
        t = torch.randint(0, len(schedule), (batch_size,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        x_t = q_sample(x0, t, eps, schedule)
        eps_pred = model(x_t, t)
        l_diff = diffusion_loss(eps_pred, eps)
        terms, present = None, {}
        if memories is not None:
            zhat = predicted_x0(x_t, eps_pred, schedule.alphas_cumprod, t)  # [B, 2]
            present = {0: m} if (m := memories.tensors(0)) is not None else {}
            terms = minimax_terms(zhat, y, present)
        loss = total_loss(l_diff, None, terms, lambda_r, lambda_g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if memories is not None:
            memories.update(y, x0, zhat.detach())
        if ema is not None:
            ema.update(model)
        nan = float("nan")  # no memory term this step (no memories, or none filled yet)
        log.append({"loss": loss.item(), "l_diff": l_diff.item(),
                    "l_real": terms.l_real.item() if present else nan, "l_gen": terms.l_gen.item() if present else nan})
    if ema is not None:
        ema.copy_to(model)
    return log


@torch.no_grad()
def sample_paths(model: ToyDenoiser, schedule: Schedule, noise: torch.Tensor) -> torch.Tensor:
    """Ancestral DDPM from fixed noise [T + 1, n, 2] (start point, then one draw per step).

    Returns the whole path [T + 1, n, 2]: paths[0] is the starting noise x_T, paths[-1] the
    distilled points. The reverse step uses the posterior mean given the predicted x0 and the
    posterior variance beta_tilde_t (no noise at t = 0).
    """
    num = len(schedule)
    if noise.shape[0] != num + 1:
        raise ValueError(f"noise has {noise.shape[0]} draws, the sampler needs T + 1 = {num + 1}")
    x = noise[0]
    path = [x]
    sigma = schedule.posterior_variance.sqrt()
    for i, step in enumerate(range(num - 1, -1, -1)):
        t = torch.full((x.shape[0],), step, dtype=torch.long)
        x0 = predicted_x0(x, model(x, t), schedule.alphas_cumprod, t)
        x = posterior_mean(x0, x, t, schedule)
        if step > 0:
            x = x + gather(sigma, t, x) * noise[i + 1]
        path.append(x)
    return torch.stack(path)


@torch.no_grad()
def score_field(model: ToyDenoiser, schedule: Schedule, t: int, lim: float, n: int = 21) -> tuple[np.ndarray, ...]:
    """The denoising drift -eps_theta / sqrt(1 - abar_t) (the learned score) on an n x n grid."""
    axis = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    xy = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [n*n, 2]
    tt = torch.full((len(xy),), t, dtype=torch.long)
    score = -model(xy, tt) / gather((1 - schedule.alphas_cumprod).sqrt(), tt, xy)
    return gx.numpy(), gy.numpy(), score[:, 0].reshape(n, n).numpy(), score[:, 1].reshape(n, n).numpy()
