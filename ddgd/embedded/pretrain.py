"""Pretraining the embedded stand-in for DiT-XL/2 + SD VAE on Fashion-MNIST (book page: The embedded model).

Readers without a GPU, ImageNet or the DiT-XL/2 weights still run the whole method on a small latent
diffusion model of the same kind: a diffusers `AutoencoderKL` (32 px, 1 channel -> 4 x 8 x 8
latents) and a class-conditional `DiTTransformer2DModel` (6 blocks, hidden 256, patch 2, 10 classes
plus the null class), trained here the way DiT was: the hybrid loss (MSE + L_vb) with class dropout
0.1, EMA weights saved. The result ships in data/fashion-ldm with a model card of its quality figures.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base.files import partial_dir
from ddgd.base.provenance import provenance
from ddgd.embedded.card import QUALITY_SAMPLER, RECONSTRUCTION_IMAGES, model_card, weights_digests
from ddgd.method.diffusion import Schedule, q_sample
from ddgd.method.latents import build_cache, to_model_range
from ddgd.method.losses import diffusion_loss, vb_term
from ddgd.method.models import EMA, drop_labels, load_transformer, load_vae, untied_copy


@dataclass(frozen=True)
class PretrainConfig:
    size: str = "fashion"  # a key of ddgd.method.hub.SMALL_CONFIGS
    vae_steps: int = 1200
    vae_batch: int = 64
    vae_lr: float = 1e-3
    kl_weight: float = 1e-5
    dit_steps: int = 3500
    dit_batch: int = 128
    dit_lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    class_dropout: float = 0.1
    judge_epochs: int = 2
    eval_per_class: int = 100  # samples per class for the quality figures
    seed: int = 0


def train_vae(images: torch.Tensor, cfg: PretrainConfig, progress: bool = True):
    """AutoencoderKL on uint8 images [N, 1, 32, 32]: L1 + MSE reconstruction + a small KL term."""
    vae = load_vae(cfg.size, seed=cfg.seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(cfg.seed)
    vae.train()
    for step in tqdm(range(cfg.vae_steps), desc="pretrain VAE", disable=not progress):
        lr = cfg.vae_lr * 0.5 * (1 + math.cos(math.pi * step / cfg.vae_steps))  # cosine decay
        for group in opt.param_groups:
            group["lr"] = lr
        x = to_model_range(images[torch.randint(0, len(images), (cfg.vae_batch,), generator=g)])
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + cfg.kl_weight * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    # Scale latents to unit variance as SD does (s = 1 / std of the posterior means).
    with torch.no_grad():
        sample = to_model_range(images[torch.randperm(len(images), generator=g)[:2000]])
        std = float(vae.encode(sample).latent_dist.mean.std())
    vae.register_to_config(scaling_factor=1.0 / std)
    return vae


@torch.no_grad()
def reconstruction_error(vae, images: torch.Tensor) -> dict:
    """Mean squared and absolute error (pixel scale [0, 1]) of decode(encode mean) on held-out images."""
    x = to_model_range(images)
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    diff = (rec - x) / 2
    return {"mse": float((diff**2).mean()), "mae": float(diff.abs().mean()),
            "psnr_db": float(10 * torch.log10(1 / (diff**2).mean()))}


def train_dit(cache, cfg: PretrainConfig, progress: bool = True):
    """DiT with DiT's hybrid loss on cached latents, class dropout, AdamW with warm-up, EMA."""
    model = load_transformer(cfg.size, seed=cfg.seed)
    model.train()
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.dit_lr, weight_decay=0.0)
    schedule = Schedule.linear()
    g = torch.Generator().manual_seed(cfg.seed + 1)
    null = model.config.num_embeds_ada_norm
    c = model.config.in_channels
    for step in tqdm(range(cfg.dit_steps), desc="pretrain DiT", disable=not progress):
        for group in opt.param_groups:
            group["lr"] = cfg.dit_lr * min(1.0, (step + 1) / cfg.warmup)
        idx = torch.randint(0, len(cache), (cfg.dit_batch,), generator=g)
        z0 = cache.sample(idx, g)
        y = drop_labels(cache.labels[idx], null, cfg.class_dropout, g)
        t = torch.randint(0, len(schedule), (len(idx),), generator=g)
        eps = torch.randn(z0.shape, generator=g)
        z_t = q_sample(z0, t, eps, schedule)
        out = model(z_t, timestep=t, class_labels=y).sample
        loss = diffusion_loss(out[:, :c], eps) + vb_term(out[:, :c], out[:, c:], z0, z_t, t, schedule)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
    ema.copy_to(model)
    return model.eval()


def evaluate_generator(model, vae, real_train, train_labels, real_test, test_labels, cfg: PretrainConfig,
                       progress: bool = True) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Quality figures of the guided sampler (`QUALITY_SAMPLER`): judge accuracy and diversity."""
    from ddgd.embedded.quality import conditional_accuracy, diversity_ratio, train_judge
    from ddgd.method.sample import generate

    judge = train_judge(real_train, train_labels, cfg.judge_epochs, cfg.seed, progress)
    judge_test = conditional_accuracy(judge, real_test, test_labels)
    images, labels = generate(model, vae, list(range(10)), cfg.eval_per_class, cfg.seed, progress=progress,
                              batch_size=250, **QUALITY_SAMPLER)
    div = diversity_ratio(judge, images, labels, real_train, train_labels)
    return {
        "judge_test_accuracy": judge_test,
        "conditional_accuracy": conditional_accuracy(judge, images, labels),
        "diversity_ratio_mean": sum(div.values()) / len(div),
        "diversity_ratio_per_class": {str(k): v for k, v in div.items()},
    }, images, labels


class _Stages:
    """The VAE stage of an interrupted pretraining, reused when the config matches (saves minutes)."""

    def __init__(self, tmp: Path, cfg: PretrainConfig):
        self.tmp, self.cfg, self.vae, self.vae_seconds, self.dit_seconds = tmp, cfg, None, 0.0, 0.0
        meta = tmp / "vae_stage.json"
        if meta.is_file() and json.loads(meta.read_text())["config"] == asdict(cfg):
            from diffusers import AutoencoderKL

            self.vae = AutoencoderKL.from_pretrained(tmp / "vae").eval()
            self.vae_seconds = json.loads(meta.read_text())["wall_s"]
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def dit(self):
        """The DiT of a finished DiT stage (saved before the quality figures), or None."""
        meta = self.tmp / "dit_stage.json"
        if meta.is_file() and json.loads(meta.read_text())["config"] == asdict(self.cfg):
            self.dit_seconds = json.loads(meta.read_text())["wall_s"]
            return load_transformer(str(self.tmp / "transformer")).eval()
        return None

    def save_dit(self, model, seconds: float):
        untied_copy(model).save_pretrained(self.tmp / "transformer")
        (self.tmp / "dit_stage.json").write_text(json.dumps({"config": asdict(self.cfg), "wall_s": seconds}))
        self.dit_seconds = seconds
        return model

    def save_vae(self, vae, seconds: float):
        vae.save_pretrained(self.tmp / "vae")
        (self.tmp / "vae_stage.json").write_text(json.dumps({"config": asdict(self.cfg), "wall_s": seconds}))
        self.vae_seconds = seconds
        return vae


def pretrain(out_dir: str | Path, cfg: PretrainConfig = PretrainConfig(), data_root: str | None = None,
             download: bool = False, progress: bool = True, command: str | None = None) -> dict:
    """Train VAE then DiT, measure them, and save both with save_pretrained plus card.json (atomically)."""
    from ddgd.protocol.data import load_real

    torch.manual_seed(cfg.seed)
    start = time.time()
    train_x, train_y = load_real("fashion-mnist", "train", root=data_root, resolution=32, download=download)
    test_x, test_y = load_real("fashion-mnist", "test", root=data_root, resolution=32, download=download)
    out = Path(out_dir)
    tmp = partial_dir(out)  # stages land here and survive a kill (the next start resumes); renamed at the end
    stage = _Stages(tmp, cfg)
    vae = stage.vae or stage.save_vae(train_vae(train_x, cfg, progress), time.time() - start)
    t_dit = time.time()
    model = stage.dit()
    if model is None:
        cache = build_cache(vae, train_x, train_y, batch_size=500, progress=progress)
        model = stage.save_dit(train_dit(cache, cfg, progress), time.time() - t_dit)
    t_eval = time.time()
    recon = reconstruction_error(vae, test_x[:RECONSTRUCTION_IMAGES])
    quality, images, labels = evaluate_generator(model, vae, train_x, train_y, test_x, test_y, cfg, progress)

    card = {
        "command": command,
        "config": asdict(cfg),
        "reconstruction": recon,
        "quality": quality,
        "wall_s": {"vae": stage.vae_seconds, "train_total": stage.vae_seconds + stage.dit_seconds,
                   "total": stage.vae_seconds + stage.dit_seconds + time.time() - t_eval},
        "parameters": {"vae": sum(p.numel() for p in vae.parameters()),
                       "transformer": sum(p.numel() for p in model.parameters())},
        "provenance": provenance(),
    }
    card["weights_sha256"] = weights_digests(tmp)  # lets a rebuild show that it made the same weights
    (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    (tmp / "README.md").write_text(model_card(card))
    torch.save({"images": images[:: max(1, cfg.eval_per_class // 10)], "labels": labels[:: max(1, cfg.eval_per_class // 10)]},
               tmp / "sample_grid.pt")
    for marker in ("vae_stage.json", "dit_stage.json"):
        (tmp / marker).unlink()
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return card
