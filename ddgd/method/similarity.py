"""sigma(a, b), the cosine similarity of two latents flattened to vectors (book page The method, eq-similarity).

The one similarity of the method: the memory terms compare predictions with memory items by it
(`ddgd.method.losses`), and the self-adaptive rule scores the redundancy of a memory by it
(`ddgd.method.memory`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def unit(x: torch.Tensor) -> torch.Tensor:
    """Each item of x [n, ...] flattened and scaled to unit length: [n, d]. sigma(a, b) = unit(a) . unit(b)."""
    return F.normalize(x.reshape(x.shape[0], -1), dim=1)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sigma(a_i, b_m) for all pairs: a [n, ...], b [m, ...] -> [n, m]."""
    return unit(a) @ unit(b.to(a)).T
