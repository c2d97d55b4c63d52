"""Distribution metrics of a distilled set against the real data, in a fixed feature space.

The paper's claim is that the self-adaptive memory makes the distilled set more diverse (book page
The method, "The self-adaptive memory update"). Accuracy alone cannot show that; these figures can,
measured on features of a fixed network (`ddgd.experiments.diversity` picks it and names it in
every row):

- precision, recall, density and coverage of Naeem et al. (2020), from the `prdc` package: how
  much of the distilled set lies on the real data's k-nearest-neighbour manifold (precision,
  density) and how much of the real manifold the distilled set reaches (recall, coverage);
- the Vendi score of Friedman and Dieng (2023), from the `vendi-score` package: the effective number
  of distinct images of the set, with the cosine similarity of features as kernel (1 for one image
  repeated, n for n images with orthogonal features);
- FID and KID from `torchmetrics`, fed the features directly (a pass-through module stands where
  the Inception network would), so any feature space serves and nothing is downloaded.

Every function takes features (float arrays [N, D]) and nothing else: which network made them is
the caller's business. Small sets are legal but some figures need a minimum: prdc needs more than
k + 1 points on each side, FID two, KID two per subset; below that a figure is NaN, never an error.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import torch

NEAREST_K = 5  # Naeem et al.'s recommended k for precision, recall, density and coverage
PRDC = ("precision", "recall", "density", "coverage")


def as_features(features, name: str = "features") -> np.ndarray:
    """A float64 array [N, D] of finite features, or a clear error naming the problem."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} have shape {x.shape}: pass one feature vector per image, an array [N, D]")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} hold NaN or infinite values: check the network that made them")
    return x


def _same_width(real: np.ndarray, fake: np.ndarray) -> None:
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real features are {real.shape[1]}-d, fake ones {fake.shape[1]}-d: embed both sets "
                         "with the same network")


def prdc(real, fake, k: int = NEAREST_K) -> dict[str, float]:
    """Precision, recall, density, coverage of `fake` against `real` (prdc.compute_prdc, nearest_k=k).

    NaN when either set has fewer than k + 2 points: prdc takes the k-th neighbour of every point
    among the others with `np.argpartition(..., k + 1)`, which needs k + 2 points.
    """
    from prdc import compute_prdc

    real, fake = as_features(real, "real features"), as_features(fake, "fake features")
    _same_width(real, fake)
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k={k!r}: the number of nearest neighbours must be a positive integer (Naeem et al.: 5)")
    if min(len(real), len(fake)) < k + 2:
        return dict.fromkeys(PRDC, math.nan)
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the two set sizes
        out = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    return {name: float(out[name]) for name in PRDC}


def vendi(features) -> float:
    """The Vendi score (order q = 1) with the cosine similarity of features as kernel (vendi_score).

    exp of the entropy of the eigenvalues of K / n, K[i, j] = cos(x_i, x_j). The library's
    `score_X` works on the n x n kernel, `score_dual` on the D x D one: they share their nonzero
    eigenvalues, so the smaller matrix is taken. NaN for an empty set.
    """
    from vendi_score import vendi as vs

    x = as_features(features)
    if len(x) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # vendi_score names scipy.sparse.csr, deprecated in SciPy
        return float(vs.score_dual(x) if len(x) > x.shape[1] else vs.score_X(x))


class _Given(torch.nn.Module):
    """Stands where torchmetrics expects the Inception network: the 'images' it gets are features."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # read by FrechetInceptionDistance instead of a dummy forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real, fake) -> float:
    """Fréchet distance of Gaussians fitted to the two feature sets (torchmetrics' FID). NaN below 2 points."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = as_features(real, "real features"), as_features(fake, "fake features")
    _same_width(real, fake)
    if min(len(real), len(fake)) < 2:
        return math.nan
    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]))
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    return float(metric.compute())


def kid(real, fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the KID over `subsets` random subsets (torchmetrics' KID, cubic polynomial kernel).

    The subset size is `subset_size` or the smaller set's size; the subsets are drawn from a seeded
    generator (torch's global one stays as it was). NaN below 2 points.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = as_features(real, "real features"), as_features(fake, "fake features")
    _same_width(real, fake)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "will save all extracted features": they are given
        metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def distribution_metrics(real, fake, k: int = NEAREST_K, kid_subsets: int = 100, kid_subset_size: int = 1000,
                         seed: int = 0) -> dict[str, float]:
    """Every figure of one set: prdc at k, Vendi of the fake set, FID, KID, and the two set sizes."""
    real, fake = as_features(real, "real features"), as_features(fake, "fake features")
    kid_mean, kid_std = kid(real, fake, kid_subsets, kid_subset_size, seed)
    return {"k": k, **prdc(real, fake, k), "vendi": vendi(fake), "fid": fid(real, fake), "kid_mean": kid_mean,
            "kid_std": kid_std, "n_fake": len(fake), "n_real": len(real)}
