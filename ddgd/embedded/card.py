"""The embedded model's card: its quality figures as JSON and Markdown, and comparisons of two builds.

`ddgd pretrain` writes ``card.json`` and ``README.md`` beside the weights (book page: The embedded
model); a rebuild is compared with the shipped model figure by figure, with binomial standard
errors for the accuracies, and weight file by weight file (SHA-256).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

FASHION_TEST_IMAGES = 10_000  # the judge's test accuracy is measured on all of them
RECONSTRUCTION_IMAGES = 2_000  # the first test images, for the VAE's reconstruction error
QUALITY_SAMPLER = dict(steps=50, guidance=4.0)  # the guided sampler whose samples the card judges


WEIGHTS = "diffusion_pytorch_model.safetensors"  # the file `save_pretrained` writes


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

    return {part: hashlib.sha256((Path(model_dir) / part / WEIGHTS).read_bytes()).hexdigest()
            for part in ("vae", "transformer")}


def same_weights(model_a: str | Path, model_b: str | Path) -> dict[str, bool]:
    """Whether the saved weights of the VAE and of the DiT are byte for byte the same in two models."""
    a, b = weights_digests(model_a), weights_digests(model_b)
    return {part: a[part] == b[part] for part in a}
