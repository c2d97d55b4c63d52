"""How hard the memory terms pull against the diffusion loss (book page: Figure 4, "The memory weights at CPU scale").

Take one batch item with predicted noise eps_theta, its residual r = eps_theta - eps of d elements
(root mean square s_r) and its predicted latent zhat (eq-x0, root mean square s_z). The diffusion
loss (eq-diffusion) is a mean over the B * d elements of the batch, so it sends 2 r / (B d) to
eps_theta: a gradient of norm 2 s_r / (B sqrt d). A memory term is the cosine similarity
sigma(zhat, m) (eq-similarity) of one item of its class; its gradient with respect to zhat,
(unit(m) - sigma unit(zhat)) / ||zhat||, has norm sin(theta) / ||zhat|| = sin(theta) / (s_z sqrt d),
and eq-x0 multiplies it by kappa_t = sqrt((1 - abar_t) / abar_t) on its way to eps_theta. Weighted
lambda / K (eq-total, K classes in the batch), the ratio of the two at the item the term picks is

    rho = lambda * (B / K) * kappa_t * sin(theta) / (2 * s_r * s_z)                          (eq-grad-ratio)

The latent dimension d cancels: both gradients shrink as 1 / sqrt(d). What moves rho between two
scales is the batch's class count, how well the model predicts the noise (s_r) and the scale of its
predicted latents (s_z), not the 4096 elements of a 32x32x4 latent against 256 of an 8x8x4 one.
`output_gradients` measures both gradients with autograd through the functions fine-tuning uses;
`parameter_gradients` follows them into a model's trainable parameters.
"""
from __future__ import annotations

import torch

from ddgd.method.diffusion import Schedule, predicted_x0, q_sample
from ddgd.method.losses import diffusion_loss, minimax_terms
from ddgd.method.similarity import cosine_matrix


def kappa(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """kappa_t = sqrt((1 - abar_t) / abar_t): d zhat / d eps_theta of eq-x0, up to its sign."""
    abar = alphas_cumprod[t]
    return ((1 - abar) / abar).sqrt()


def predicted_ratio(lam: float, batch: int, classes: int, kappa_t, sin_theta, residual_rms, zhat_rms):
    """rho of eq-grad-ratio: |grad of lambda * sigma / K| over |grad of L_diff| at the item a memory term picks.

    Works on floats or tensors alike; no latent dimension appears in it.
    """
    return lam * (batch / classes) * kappa_t * sin_theta / (2 * residual_rms * zhat_rms)


def output_gradients(eps_pred: torch.Tensor, eps: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor,
                     schedule: Schedule, labels: torch.Tensor, memories: dict, lambda_g: float) -> dict:
    """Per-item gradient norms of L_diff and of lambda_g * L_gen with respect to eps_theta, and eq-grad-ratio's inputs.

    eps_pred, eps, z_t [B, C, H, W]; memories[c] = (M_real[c], M_gen[c]) as `minimax_terms` takes them.
    Returns tensors [B]: `diff` and `gen` (0 where the term picked no item of the row), the `picked`
    mask, and per item `kappa`, `sin_theta` (against its most similar M_gen item), `residual_rms`,
    `zhat_rms`; and `classes`, the batch's class count K.
    """
    eps_pred = eps_pred.detach().requires_grad_(True)
    g_diff, = torch.autograd.grad(diffusion_loss(eps_pred, eps), eps_pred)
    zhat = predicted_x0(z_t, eps_pred, schedule.alphas_cumprod, t)
    terms = minimax_terms(zhat, labels, memories)
    g_gen, = torch.autograd.grad(lambda_g * terms.l_gen, eps_pred)
    flat = zhat.detach().flatten(1)
    cos = torch.empty(len(flat), dtype=flat.dtype)  # [B]: each item against the most similar item of its class's M_gen
    for c in labels.unique().tolist():
        rows = labels == c
        cos[rows] = cosine_matrix(flat[rows], memories[c][1]).max(1).values
    gen = g_gen.flatten(1).norm(dim=1)
    return {"diff": g_diff.flatten(1).norm(dim=1), "gen": gen, "picked": gen > 0,
            "kappa": kappa(schedule.alphas_cumprod, t), "sin_theta": (1 - cos.clamp(-1, 1) ** 2).sqrt(),
            "residual_rms": (eps_pred.detach() - eps).flatten(1).pow(2).mean(1).sqrt(),
            "zhat_rms": flat.pow(2).mean(1).sqrt(), "classes": len(set(labels.tolist()))}


def parameter_gradients(model, z0: torch.Tensor, labels: torch.Tensor, model_labels: torch.Tensor, t: torch.Tensor,
                        eps: torch.Tensor, schedule: Schedule, memories: dict, lambda_r: float,
                        lambda_g: float) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """Norms of the gradients of L_diff, lambda_r L_real and lambda_g L_gen over the model's trainable parameters.

    One forward pass as `ddgd.method.finetune.training_step` makes it (without the VB term and the
    memories' update): z0 [B, C, H, W] real latents, labels [B] the memories' classes, model_labels
    [B] the DiT's class ids, t [B] timesteps, eps [B, C, H, W] the noise. Returns the norms, and
    z_t and the predicted noise (detached) of that pass, for `output_gradients`.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    z_t = q_sample(z0, t, eps, schedule)
    eps_pred = model(z_t, timestep=t, class_labels=model_labels).sample[:, :z0.shape[1]]
    zhat = predicted_x0(z_t, eps_pred, schedule.alphas_cumprod, t)
    terms = minimax_terms(zhat, labels, memories)
    norms = {}
    for name, loss in (("diff", diffusion_loss(eps_pred, eps)), ("real", lambda_r * terms.l_real),
                       ("gen", lambda_g * terms.l_gen)):
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))
    return norms, z_t, eps_pred.detach()

