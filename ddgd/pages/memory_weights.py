"""The Figure 4 page's section "The memory weights at CPU scale": eq-grad-ratio measured on real models.

`balance` draws batches as fine-tuning draws them (real latents, uniform timesteps, fresh noise),
fills each class's memories (M_real: real latents of the class; M_gen: the model's own predicted
latents of other items of the class), and measures per item the ratio of eq-grad-ratio with
autograd (`ddgd.method.gradient_balance`) and per batch the gradients of the three terms over the
model's trainable parameters. `by_latent_size` does the same for DiTs that differ only in the latent
side (8x8 of the CPU default, 32x32 of DiT-XL/2 at 256 px), on unit-variance stand-in latents.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from diffusers import DiTTransformer2DModel

from ddgd.method.diffusion import Schedule, predicted_x0, q_sample
from ddgd.method.gradient_balance import output_gradients, parameter_gradients, predicted_ratio
from ddgd.method.hub import SMALL_CONFIGS
from ddgd.config import RunConfig
from ddgd.method.models import load_transformer, select_trainable, tie_embedders


@torch.no_grad()
def _memories(model, z0: torch.Tensor, labels: torch.Tensor, schedule: Schedule, n: int,
              g: torch.Generator) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """M_real[c]: n real latents of class c; M_gen[c]: the model's predicted latents of n other ones (fewer for a small class)."""
    memories = {}
    for c in labels.unique().tolist():
        pool = torch.nonzero(labels == c).squeeze(1)
        k = max(1, min(n, len(pool) // 2))  # a small class splits its items between the two memories
        pick = pool[torch.randperm(len(pool), generator=g)[:2 * k]]
        real, other = z0[pick[:k]], z0[pick[k:]]
        t = torch.randint(0, len(schedule), (len(other),), generator=g)
        z_t = q_sample(other, t, torch.randn(other.shape, generator=g), schedule)
        y = torch.full((len(other),), c, dtype=torch.long)
        eps = model(z_t, timestep=t, class_labels=y).sample[:, :other.shape[1]]
        memories[c] = (real, predicted_x0(z_t, eps, schedule.alphas_cumprod, t))
    return memories


def balance(model, z0: torch.Tensor, labels: torch.Tensor, lambda_r: float, lambda_g: float, batches: int = 8,
            batch_size: int = 8, n_memory: int = 16, seed: int = 0,
            schedule: Schedule | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per item (the items a memory term picks) and per batch, the balance of the memory terms against L_diff.

    z0 [N, C, H, W] real latents with class labels [N] (the DiT's class ids). Items: t, kappa,
    sin_theta, residual_rms, zhat_rms, the measured ratio and eq-grad-ratio's prediction. Batches: the
    parameter-gradient norms of L_diff, lambda_r L_real and lambda_g L_gen and the two ratios.
    `schedule`: the diffusion's (None: DiT's linear 1000-step one).
    """
    g, schedule = torch.Generator().manual_seed(seed), schedule or Schedule.linear()
    memories = _memories(model, z0, labels, schedule, n_memory, g)
    items, rows = [], []
    for b in range(batches):
        idx = torch.randperm(len(z0), generator=g)[:batch_size]
        x, y = z0[idx], labels[idx]
        t = torch.randint(0, len(schedule), (batch_size,), generator=g)
        eps = torch.randn(x.shape, generator=g)
        norms, z_t, eps_pred = parameter_gradients(model, x, y, y, t, eps, schedule, memories, lambda_r, lambda_g)
        rows.append({"batch": b, **norms, "ratio_real": norms["real"] / norms["diff"],
                     "ratio_gen": norms["gen"] / norms["diff"]})
        out = output_gradients(eps_pred, eps, z_t, t, schedule, y, memories, lambda_g)
        rho = predicted_ratio(lambda_g, batch_size, out["classes"], out["kappa"], out["sin_theta"],
                              out["residual_rms"], out["zhat_rms"])
        for i in torch.nonzero(out["picked"]).squeeze(1).tolist():
            items.append({"batch": b, "t": int(t[i]), **{k: float(out[k][i]) for k in
                          ("kappa", "sin_theta", "residual_rms", "zhat_rms")},
                          "measured": float(out["gen"][i] / out["diff"][i]), "predicted": float(rho[i])})
    return pd.DataFrame(items), pd.DataFrame(rows)


def embedded_balance(cfg: RunConfig, batches: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`balance` of the config's DiT (its fine-tuned parameters only) on the real latents of its data, at its weights.

    The real images are the config's (a walk-through config: the first `data.train_per_class` per class).
    """
    from ddgd.experiments.pipeline import load_data  # deferred: the pipeline imports the whole method
    from ddgd.pages.walkthrough import encode_subset

    data = load_data(cfg)
    cache = encode_subset(cfg, data)
    model = load_transformer(cfg.model.dit, numerics=cfg.model.dit_numerics).eval()
    select_trainable(model, cfg.finetune.difffit, cfg.finetune.bitfit)  # the parameters fine-tuning trains
    labels = torch.as_tensor(data.dit_labels)[cache.labels]  # the DiT's class ids
    z0 = cache.sample(torch.arange(len(cache)), torch.Generator().manual_seed(0))  # [N, c, h, w]
    m = cfg.model
    return balance(model, z0, labels, cfg.finetune.lambda_r, cfg.finetune.lambda_g, batches, cfg.finetune.batch_size,
                   schedule=Schedule.linear(m.num_timesteps, m.beta_start, m.beta_end))


def random_dit(side: int, seed: int = 0) -> DiTTransformer2DModel:
    """The embedded model's DiT architecture (`SMALL_CONFIGS['fashion']`) on latents of side `side`, random weights."""
    torch.manual_seed(seed)
    model = DiTTransformer2DModel(**{**SMALL_CONFIGS["fashion"]["dit"], "sample_size": side})
    tie_embedders(model)
    return model


def by_latent_size(sides: Sequence[int] = (8, 32), lambda_r: float = 0.002, lambda_g: float = 0.008,
                   per_class: int = 40, batches: int = 8, seed: int = 0) -> pd.DataFrame:
    """Median ratios of the parameter gradients for DiTs that differ only in the latent side.

    Stand-in latents: N(0, 1) draws (unit root mean square, as a VAE's scaled latents) with 10
    class means of norm 1 per element, so that each class has a direction of its own.
    """
    rows = []
    for side in sides:
        g = torch.Generator().manual_seed(seed)
        shape = (4, side, side)
        means = torch.randn(10, *shape, generator=g)
        labels = torch.arange(10).repeat_interleave(per_class)
        z0 = (means[labels] + torch.randn(len(labels), *shape, generator=g)) / 2 ** 0.5
        items, steps = balance(random_dit(side, seed), z0, labels, lambda_r, lambda_g, batches, seed=seed)
        rows.append({"latent": f"{shape[0]}x{side}x{side}", "d": shape[0] * side * side,
                     "ratio_gen": steps["ratio_gen"].median(), "ratio_real": steps["ratio_real"].median(),
                     "item_ratio": items["measured"].median(), "residual_rms": items["residual_rms"].median(),
                     "zhat_rms": items["zhat_rms"].median()})
    return pd.DataFrame(rows)


RESOLUTION = 1.1  # a ratio of the two sizes' pulls under 1.1 is not read as a direction (one seed, 8 batches)


def size_conclusion(small: pd.Series, large: pd.Series) -> str:
    """What the latent-size measurement (`by_latent_size`: its smallest and largest rows) says of the CPU's
    memory weights: no reason to raise them where the small latents pull at least as hard in both terms
    (or weaker by less than RESOLUTION), else at most the factor by which they pull more weakly."""
    weaker = max(large[k] / small[k] for k in ("ratio_gen", "ratio_real"))  # above 1: the small latents pull less
    if weaker < RESOLUTION:
        return "gives no reason to raise the memory weights on the CPU"
    return f"would at most justify weights {weaker:.1f} times larger on the CPU"

