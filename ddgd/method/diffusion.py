"""The Gaussian diffusion process of DDPM / improved DDPM, as DiT uses it (book page: The method).

A `Schedule` holds beta_t and the derived quantities for a (possibly respaced) set of timesteps.
The forward process is z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps. The reverse step uses the
posterior q(z_{t-1} | z_t, z0) with DiT's learned variance: the model's extra output channels v in
[-1, 1] interpolate the log-variance between the posterior's beta_tilde_t and beta_t
(Nichol & Dhariwal 2021, eq. 15).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's linear schedule, scaled as DiT does for T = 1000 (float64)."""
    scale = 1000 / num_timesteps
    return torch.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=torch.float64)


def space_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """Evenly strided subset of {0..T-1} of size `steps`, as improved DDPM's ``space_timesteps(T, [steps])``.

    The stride is accumulated in floating point and each position rounded (half to even), exactly
    as DiT's `respace.py` does: rounding i * stride instead picks another step at some counts
    (21, 23, 31, ...), so the accumulation is part of the definition.
    """
    if not 0 < steps <= num_timesteps:
        raise ValueError(f"cannot take {steps} respaced steps out of {num_timesteps}")
    stride = 1 if steps == 1 else (num_timesteps - 1) / (steps - 1)
    taken, position = [], 0.0
    for _ in range(steps):
        taken.append(round(position))
        position += stride
    return sorted(set(taken))


@dataclass(frozen=True)
class Schedule:
    """beta_t and friends for the timesteps `timesteps` (model-facing indices into the original T)."""

    betas: torch.Tensor  # [S] float64
    timesteps: torch.Tensor  # [S] long: the original index of each respaced step

    @classmethod
    def linear(cls, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "Schedule":
        betas = linear_betas(num_timesteps, beta_start, beta_end)
        return cls(betas, torch.arange(num_timesteps))

    def respaced(self, steps: int) -> "Schedule":
        """The same process on `steps` timesteps: beta_i = 1 - abar_{t_i} / abar_{t_{i-1}}."""
        keep = space_timesteps(len(self.betas), steps)
        abar = self.alphas_cumprod[keep]
        prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
        return Schedule(1 - abar / prev, self.timesteps[keep])

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(1 - self.betas, dim=0)

    @property
    def alphas_cumprod_prev(self) -> torch.Tensor:
        return torch.cat([torch.ones(1, dtype=self.betas.dtype), self.alphas_cumprod[:-1]])

    @property
    def posterior_variance(self) -> torch.Tensor:
        """beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)."""
        return self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)

    @property
    def posterior_log_variance_clipped(self) -> torch.Tensor:
        """log beta_tilde_t with the t = 0 entry (zero variance) replaced by the t = 1 value."""
        var = self.posterior_variance
        return torch.log(torch.cat([var[1:2], var[1:]]))

    def __len__(self) -> int:
        return len(self.betas)


def gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as a float32 tensor broadcastable against `like` ([B] -> [B, 1, 1, 1])."""
    out = values.to(like.device)[t].to(like.dtype)
    return out.reshape(-1, *([1] * (like.dim() - 1)))


def q_sample(z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps."""
    abar = gather(schedule.alphas_cumprod, t, z0)
    return abar.sqrt() * z0 + (1 - abar).sqrt() * eps


def posterior_mean(z0: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Mean of q(z_{t-1} | z_t, z0) (Ho et al. 2020, eq. 7)."""
    abar, abar_prev = schedule.alphas_cumprod, schedule.alphas_cumprod_prev
    c0 = schedule.betas * abar_prev.sqrt() / (1 - abar)
    ct = (1 - abar_prev) * (1 - schedule.betas).sqrt() / (1 - abar)
    return gather(c0, t, z_t) * z0 + gather(ct, t, z_t) * z_t


def learned_log_variance(v: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """log Sigma = frac log beta_t + (1 - frac) log beta_tilde_t with frac = (v + 1) / 2."""
    min_log = gather(schedule.posterior_log_variance_clipped, t, v)
    max_log = gather(torch.log(schedule.betas), t, v)
    frac = (v + 1) / 2
    return frac * max_log + (1 - frac) * min_log


def predicted_x0(z_t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """zhat = (z_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t)  (eq-x0). Gradients flow through eps."""
    abar = gather(alphas_cumprod, t, z_t)
    return (z_t - (1 - abar).sqrt() * eps) / abar.sqrt()
