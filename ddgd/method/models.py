"""The latent diffusion model: a diffusers DiT and SD-style VAE, DiffFit selection, EMA (book page: The method).

`load_transformer` and `load_vae` take a hub id (``facebook/DiT-XL-2-256`` reads its ``transformer``
subfolder), a local folder written by ``save_pretrained``, or the name of a small config from
`ddgd.method.hub.SMALL_CONFIGS` (random weights, for tests and pretraining). The same code path serves all three.

Two fixes to diffusers' DiT layout (documented on the deviations page):
* diffusers keeps a copy of the timestep/class embedder in every block; `tie_embedders` makes all
  blocks share block 0's, so the class embedding is one table trained once, as in the original DiT.
* label dropout for guidance happens inside every block's embedder, independently per block; we
  switch it off there and drop labels once per sample in the training loop (`drop_labels`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
from diffusers import AutoencoderKL, DiTTransformer2DModel

from ddgd.method.hub import load_model

def load_transformer(spec: str, seed: int = 0, numerics: str = "diffusers") -> DiTTransformer2DModel:
    """The class-conditional DiT; its embedders are tied and its per-block label dropout is off.

    `numerics="original"` makes the model compute what the original DiT code computes
    (`original_numerics`): the definitions the hub's DiT-XL/2 weights were trained with.
    """
    model = load_model(DiTTransformer2DModel, spec, "transformer", "dit", seed)
    tie_embedders(model)
    if numerics == "original":
        original_numerics(model)
    elif numerics != "diffusers":
        raise ValueError(f"numerics={numerics!r}: choose 'original' or 'diffusers'")
    return model


# The original DiT (Peebles & Xie 2023, models.py) normalises with eps 1e-6 everywhere.
ORIGINAL_LAYERNORM_EPS = 1e-6


def original_numerics(model: DiTTransformer2DModel) -> None:
    """Correct diffusers' DiT to the original definitions, in place (book page: deviations).

    * Timestep embedding: DiT uses frequencies exp(-ln(10000) k / half), k = 0..half-1; diffusers'
      `Timesteps(downscale_freq_shift=1)` divides by half - 1 instead. Shift 0 restores DiT's.
    * The LayerNorm before the MLP (`norm3`) uses diffusers' `norm_eps` 1e-5; DiT's uses 1e-6 (the
      one before attention and the final one already use 1e-6 in diffusers).
    With the same weights, depth 28 and hidden 1152, the two definitions differ by up to 0.03 in
    the output (random weights); corrected, by float rounding (tests/test_parity.py).
    """
    for block in model.transformer_blocks:
        block.norm1.emb.time_proj.downscale_freq_shift = 0  # tied: block 0's embedder serves all
        block.norm3.eps = ORIGINAL_LAYERNORM_EPS


def load_vae(spec: str, seed: int = 0) -> AutoencoderKL:
    """The VAE; a hub id like ``stabilityai/sd-vae-ft-mse`` is a repo of its own (no subfolder)."""
    return load_model(AutoencoderKL, spec, "vae", "vae", seed)


def num_classes(model: DiTTransformer2DModel) -> int:
    """Number of real classes; the null class used for guidance is this index (the last row)."""
    return int(model.config.num_embeds_ada_norm)


def tie_embedders(model: DiTTransformer2DModel) -> None:
    """Share block 0's timestep/class embedder with every block; disable per-block label dropout."""
    shared = model.transformer_blocks[0].norm1.emb
    shared.class_embedder.dropout_prob = 0.0  # labels are dropped once, in the training loop
    for block in model.transformer_blocks[1:]:
        block.norm1.emb = shared


def untied_copy(model: DiTTransformer2DModel) -> DiTTransformer2DModel:
    """A copy in diffusers' own layout (one embedder per block), for save_pretrained."""
    out = copy.deepcopy(model)
    shared = out.transformer_blocks[0].norm1.emb
    for block in out.transformer_blocks[1:]:
        block.norm1.emb = copy.deepcopy(shared)
    return out


def drop_labels(labels: torch.Tensor, null: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each label by the null class with probability p (classifier-free guidance training)."""
    drop = torch.rand(labels.shape, generator=generator) < p
    return torch.where(drop.to(labels.device), torch.full_like(labels, null), labels)


# ---------------------------------------------------------------------------------------------- DiffFit
GAMMA = "ddgd_gamma"


def _times_gamma(module: nn.Module, args, out: torch.Tensor) -> torch.Tensor:
    return out * getattr(module, GAMMA)


def _scale_output(module: nn.Module, size: int) -> nn.Parameter:
    """Give `module` a gamma (init 1) that multiplies its output: DiffFit's scale factor."""
    gamma = nn.Parameter(torch.ones(size))
    module.register_parameter(GAMMA, gamma)
    module.register_forward_hook(_times_gamma)
    return gamma


def apply_difffit(model: DiTTransformer2DModel) -> list[str]:
    """Select DiffFit's trainable parameters (Xie et al. 2023) and freeze the rest; returns their names.

    Trainable: all biases, the (tied) class embedding, and gammas on the attention qkv, attention
    output and both residual branches of the first half of the blocks.
    """
    dim = model.inner_dim
    for block in model.transformer_blocks[: len(model.transformer_blocks) // 2]:
        for proj in (block.attn1.to_q, block.attn1.to_k, block.attn1.to_v, block.attn1.to_out[0]):
            _scale_output(proj, dim)
        _scale_output(block.attn1, dim)  # residual branch of attention
        _scale_output(block.ff, dim)  # residual branch of the MLP
    names = []
    for name, p in model.named_parameters():
        train = name.endswith("bias") or GAMMA in name or "class_embedder" in name
        p.requires_grad_(train)
        if train:
            names.append(name)
    return names


def _output_linear(module: nn.Module) -> nn.Linear:
    """The Linear that produces `module`'s output: itself, attention's `to_out[0]`, or the MLP's last one."""
    if isinstance(module, nn.Linear):
        return module
    if hasattr(module, "to_out"):  # diffusers Attention: to_out = [Linear, Dropout]
        return module.to_out[0]
    return [m for m in module.net if isinstance(m, nn.Linear)][-1]  # FeedForward: GELU(proj), Dropout, Linear


@torch.no_grad()
def fold_difffit(model: DiTTransformer2DModel) -> DiTTransformer2DModel:
    """A copy with every DiffFit gamma multiplied into the layer whose output it scales, in diffusers' layout.

    gamma * (W x + b) = (diag(gamma) W) x + gamma b, so the copy computes the same function (to float
    rounding) with plain diffusers modules: no extra parameters, no hooks, one embedder per block
    (`untied_copy`), which `save_pretrained` writes and `DiTTransformer2DModel.from_pretrained` reads.
    A gamma on a whole residual branch (attention, MLP) acts on that branch's output Linear, beside
    the Linear's own gamma; the branch's dropouts are elementwise and commute with it.
    """
    out = untied_copy(model)
    for module in [m for m in out.modules() if GAMMA in m._parameters]:  # diagonal scalings commute: any order
        gamma = module._parameters.pop(GAMMA).detach()
        linear = _output_linear(module)
        linear.weight.mul_(gamma[:, None])
        if linear.bias is not None:
            linear.bias.mul_(gamma)
        for key, hook in list(module._forward_hooks.items()):
            if hook is _times_gamma:
                del module._forward_hooks[key]
    return out.requires_grad_(False)


def apply_bitfit(model: DiTTransformer2DModel) -> list[str]:
    """BitFit (Ben Zaken et al. 2022), Minimax's `is_bitfit` option: train the biases only."""
    names = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith("bias"))
        if p.requires_grad:
            names.append(name)
    return names


def select_trainable(model: DiTTransformer2DModel, difffit: bool, bitfit: bool = False) -> list[str]:
    """The trainable parameters: BitFit's biases, DiffFit's selection, or (both off) every parameter."""
    if bitfit:
        return apply_bitfit(model)
    if difffit:
        return apply_difffit(model)
    model.requires_grad_(True)
    return [n for n, _ in model.named_parameters()]


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters by name (named_parameters lists a tied parameter once)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def copy_parameters(model: nn.Module, values: dict[str, torch.Tensor]) -> None:
    """Write `values` (name -> tensor, as `trainable_state` makes them) into the model's parameters."""
    params = dict(model.named_parameters())
    unknown = sorted(set(values) - set(params))
    if unknown:
        raise KeyError(f"the model has no parameters {unknown[:3]}{' ...' if len(unknown) > 3 else ''}: "
                       "the weights come from another architecture")
    for n, v in values.items():
        params[n].copy_(v)


class EMA:
    """Exponential moving average of the trainable parameters, started from the pretrained weights."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = trainable_state(model)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)

    def copy_to(self, model: nn.Module) -> None:
        copy_parameters(model, self.shadow)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.shadow = state["decay"], state["shadow"]
