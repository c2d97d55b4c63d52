"""Pretraining the embedded stand-in for DiT-XL/2 + SD VAE on Fashion-MNIST (issue: the CPU benchmark).

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

from ddgd.method.diffusion import Schedule, q_sample
from ddgd.method.latents import build_cache, decode, to_model_range
from ddgd.method.losses import diffusion_loss, vb_term
from ddgd.method.models import EMA, drop_labels, load_transformer, load_vae, untied_copy


FASHION_TEST_IMAGES = 10_000  # the judge's test accuracy is measured on all of them
RECONSTRUCTION_IMAGES = 2_000  # the first test images, for the VAE's reconstruction error
QUALITY_SAMPLER = dict(steps=50, guidance=4.0)  # the guided sampler whose samples the card judges
WEIGHTS = "diffusion_pytorch_model.safetensors"  # the file `save_pretrained` writes


@dataclass(frozen=True)
class PretrainConfig:
    size: str = "fashion"  # a key of models.SMALL_CONFIGS
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
    tmp = out.with_name(out.name + ".partial")  # stages land here; renamed into place at the end
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
    from ddgd.experiments.report import provenance  # floor 1; imported late so pretraining needs no report tooling

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


def model_card(card: dict) -> str:
    """The model card (markdown) of a pretrained model, rendered from its card.json."""
    q, r, p, w = card["quality"], card["reconstruction"], card["provenance"], card["wall_s"]
    per_class = ", ".join(f"{k}: {v:.2f}" for k, v in sorted(q["diversity_ratio_per_class"].items(),
                                                                key=lambda kv: int(kv[0])))
    return f"""# Fashion-MNIST latent diffusion model (the embedded stand-in for DiT-XL/2 + SD VAE)

A diffusers `AutoencoderKL` (`vae/`, 1 x 32 x 32 images -> 4 x 8 x 8 latents, scaling factor in its
config) and a class-conditional `DiTTransformer2DModel` (`transformer/`, 10 classes + the null class
10 for guidance, EMA weights), trained on the 60,000 Fashion-MNIST training images padded to 32 px.
Load them with `ddgd.method.models.load_vae("data/fashion-ldm/vae")` and
`ddgd.method.models.load_transformer("data/fashion-ldm/transformer")`.

## How it was made

    {card["command"]}

Configuration (`ddgd.embedded.pretrain.PretrainConfig`): `{json.dumps(card["config"], sort_keys=True)}`

Wall time: VAE {w["vae"] / 60:.1f} min, VAE + DiT {w["train_total"] / 60:.1f} min, total with the quality
figures {w["total"] / 60:.1f} min, on {p.get("hardware", "unknown hardware")}; torch {p.get("torch")},
diffusers {p.get("diffusers")}, ddgd {p.get("ddgd")}, commit {p.get("commit")}.
Parameters: VAE {card["parameters"]["vae"]:,}, DiT {card["parameters"]["transformer"]:,}.

## Quality (computed by `ddgd pretrain`, stored in card.json)

- VAE reconstruction of {RECONSTRUCTION_IMAGES:,} test images (posterior mean): MSE {r["mse"]:.5f}, MAE {r["mae"]:.4f}
  (pixels in [0, 1]), PSNR {r["psnr_db"]:.1f} dB.
- Class-conditional accuracy of guided samples (guidance {QUALITY_SAMPLER["guidance"]}, {QUALITY_SAMPLER["steps"]} steps, {card["config"]["eval_per_class"]}
  per class): {q["conditional_accuracy"]:.1f} % are labelled with the class they were asked for by a
  judge CNN trained on the real training images (the judge's own test accuracy:
  {q["judge_test_accuracy"]:.1f} %).
- Intra-class diversity ratio of the samples (mean pairwise judge-feature distance of samples over
  that of real images of the class; 1.0 = as diverse as the real data): mean
  {q["diversity_ratio_mean"]:.2f}; per class {per_class}. Guided sampling typically lowers it, which is
  the problem DDGD addresses.
"""


# ------------------------------------------------------------------------ reading and comparing model cards
def load_card(model_dir: str | Path) -> dict:
    """The card.json that `pretrain` wrote beside a model, with a clear error when there is none."""
    path = Path(model_dir) / "card.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give the folder that `ddgd pretrain --out` wrote")
    return json.loads(path.read_text())


def _binomial_se(percent: float, n: int) -> float:
    p = percent / 100.0
    return 100.0 * math.sqrt(p * (1.0 - p) / n)


def card_figures(card: dict) -> list[tuple[str, float, float]]:
    """(figure, value, noise) of a card. Noise: the binomial standard error of an accuracy over its n
    images, the standard error over classes of the mean diversity ratio, NaN where one run gives none."""
    q, r = card["quality"], card["reconstruction"]
    n_samples = 10 * card["config"]["eval_per_class"]
    per_class = torch.tensor(list(q["diversity_ratio_per_class"].values()))
    return [
        ("conditional accuracy of guided samples (%)", q["conditional_accuracy"],
         _binomial_se(q["conditional_accuracy"], n_samples)),
        ("judge accuracy on the real test set (%)", q["judge_test_accuracy"],
         _binomial_se(q["judge_test_accuracy"], FASHION_TEST_IMAGES)),
        ("intra-class diversity ratio (mean)", q["diversity_ratio_mean"],
         float(per_class.std() / math.sqrt(len(per_class)))),
        ("VAE reconstruction PSNR (dB)", r["psnr_db"], float("nan")),
        ("VAE reconstruction MSE", r["mse"], float("nan")),
    ]


def compare_cards(shipped: dict, rebuilt: dict):
    """One row per quality figure: both values, their difference, the noise scale of the shipped one
    (`card_figures`) and whether the difference lies within two noise scales (None: no noise scale)."""
    import pandas as pd

    rows = []
    for (name, a, noise), (_, b, _) in zip(card_figures(shipped), card_figures(rebuilt)):
        rows.append({"figure": name, "shipped": a, "rebuilt": b, "difference": b - a, "noise": noise,
                     "within_noise": None if math.isnan(noise) else abs(b - a) <= 2 * noise})
    return pd.DataFrame(rows)


def weights_digests(model_dir: str | Path) -> dict[str, str]:
    """SHA-256 of the saved weights of the VAE and of the DiT of a model folder."""
    import hashlib

    return {part: hashlib.sha256((Path(model_dir) / part / WEIGHTS).read_bytes()).hexdigest()
            for part in ("vae", "transformer")}


def same_weights(model_a: str | Path, model_b: str | Path) -> dict[str, bool]:
    """Whether the saved weights of the VAE and of the DiT are byte for byte the same in two models."""
    a, b = weights_digests(model_a), weights_digests(model_b)
    return {part: a[part] == b[part] for part in a}
