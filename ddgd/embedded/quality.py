"""Sample quality figures: a judge classifier, class-conditional accuracy and intra-class diversity.

These measure the generator, not the distilled set: a small CNN trained on the real training images
(the "judge") labels generated images, giving the share labelled with the class they were asked
for; its penultimate features give a per-class diversity ratio (mean pairwise feature distance of
the samples over that of real images of the class: 1.0 is as diverse as the real data). Guided
sampling is known to lower that ratio, which is the problem DDGD targets.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.method.latents import to_model_range


class Judge(nn.Module):
    """A small CNN (two conv blocks of width 32/64) for 1- or 3-channel 32 px images."""

    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.GroupNorm(width, width), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.GroupNorm(2 * width, 2 * width), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_judge(images: torch.Tensor, labels: torch.Tensor, epochs: int = 2, seed: int = 0,
                progress: bool = True) -> Judge:
    """Train the judge on uint8 real images [N, C, H, W] (Adam, batch 128, random flips)."""
    torch.manual_seed(seed)
    judge = Judge(images.shape[1], int(labels.max()) + 1)
    opt = torch.optim.Adam(judge.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for x, y in flipped_batches(images, labels, 128, g, progress, "judge"):
            loss = F.cross_entropy(judge(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return judge.eval()


def flipped_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator,
                    progress: bool = False, desc: str = "judge"):
    """One epoch of a judge's training: shuffled batches in [-1, 1], each image flipped with probability 1/2."""
    order = torch.randperm(len(labels), generator=generator)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
        idx = order[start:start + batch_size]
        x = to_model_range(images[idx])
        flip = torch.rand(len(idx), generator=generator) < 0.5
        yield torch.where(flip[:, None, None, None], x.flip(-1), x), labels[idx]


@torch.no_grad()
def predict(judge: Judge, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted labels [N], features [N, F]) of uint8 images."""
    preds, feats = [], []
    for start in range(0, len(images), batch_size):
        f = judge.features(to_model_range(images[start:start + batch_size]))
        feats.append(f)
        preds.append(judge.head(f).argmax(1))
    return torch.cat(preds), torch.cat(feats)


def conditional_accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share (%) of images the judge labels with the class they were generated for."""
    pred, _ = predict(judge, images)
    return 100.0 * float((pred == labels).float().mean())


def mean_pairwise_distance(feats: torch.Tensor) -> float:
    n = feats.shape[0]
    if n < 2:
        return float("nan")
    d = torch.cdist(feats, feats)
    return float(d.sum() / (n * (n - 1)))


def diversity_ratio(judge: Judge, images: torch.Tensor, labels: torch.Tensor, real_images: torch.Tensor,
                    real_labels: torch.Tensor, per_class: int = 200, seed: int = 0) -> dict[int, float]:
    """Per class: mean pairwise judge-feature distance of samples / that of (up to per_class) real images."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for c in labels.unique(sorted=True).tolist():
        fake = images[labels == c][:per_class]
        real = real_images[real_labels == c]
        real = real[torch.randperm(len(real), generator=g)[:per_class]]
        _, f_fake = predict(judge, fake)
        _, f_real = predict(judge, real)
        out[c] = mean_pairwise_distance(f_fake) / mean_pairwise_distance(f_real)
    return out
