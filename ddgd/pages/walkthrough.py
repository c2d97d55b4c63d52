"""Measurements behind the walk-through notebooks of the book (book page: The method).

The walk-throughs (latent encoding, memory initialisation, minimax losses, adaptive update, full
run) stay thin: what they compute beyond calling the pipeline lives here, as small functions that
can be tested exactly. Groups:

* real data and latents: `real_images`, `encode_subset`, `fresh_latents`, `channel_moments`, `psnr`;
* memories: `label_stream`, `fill_history`, `memory_tensors`, `diversity_stats`, `memory_summary`;
* the minimax terms: `predict_batch`, `class_blocks`, `term_pairs`, `gradient_table`, `mean_multiplicity`;
* update rules over a stream: `track_rule`, and `naive_adaptive`, the rebuild-every-removal
  reference of eq-adaptive that `ddgd.method.memory.adaptive` is timed against;
* figures, files and clocks: `image_grid`, `decode_items`, `write_csv`, `time_call`, `loss_history`,
  `distilled_set`.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ddgd.config import RunConfig, config_hash, resolve
from ddgd.protocol.data import SUBSETS, ImageNetSubset, diffusion_transform
from ddgd.method.diffusion import Schedule, q_sample
from ddgd.method.finetune import batch_indices, read_checkpoint
from ddgd.method.latents import LatentCache, build_cache, decode, encode, to_model_range, to_uint8
from ddgd.method.losses import cosine_matrix, predicted_x0
from ddgd.method.memory import UPDATE_RULES
from ddgd.method.models import load_vae

Memories = Mapping[int, tuple[torch.Tensor, torch.Tensor]]  # c -> (M_real[c] [m, d], M_gen[c] [m', d])


# ------------------------------------------------------------------------------- data and latents
def walkthrough_config(preset: str, train_per_class: int | None, imagenet_root: str | None = None,
                       overrides: Mapping | None = None) -> RunConfig:
    """The config of a walk-through: a preset on the first `train_per_class` real images per class.

    `imagenet_root` is the data root of the ImageNet subset presets; `overrides` are further
    ``section.field`` values (applied last, validated by `resolve`).
    """
    values = {"data.train_per_class": train_per_class, **({"data.root": imagenet_root} if imagenet_root else {})}
    return resolve(preset, {**values, **(overrides or {})})


def first_per_class(labels: torch.Tensor, k: int | None) -> torch.Tensor:
    """Indices of the first `k` items of every class (all items when k is None), in dataset order."""
    if k is None:
        return torch.arange(len(labels))
    keep = [torch.nonzero(labels == c).squeeze(1)[:k] for c in labels.unique(sorted=True)]
    return torch.cat(keep).sort().values


def real_images(cfg: RunConfig, data, classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images float [N, C, H, W] in [-1, 1] at the diffusion resolution, and labels [N].

    The first `cfg.data.train_per_class` images of each class (of `classes` only, when given):
    in-memory sets come subset already from `experiment.load_data`; ImageNet subsets are read from
    disk (ADM crop, no flip), only the images asked for.
    """
    d = cfg.data
    imagenet = d.dataset in SUBSETS
    if imagenet:
        subset = ImageNetSubset(d.root, d.dataset, "train", transform=diffusion_transform(d.resolution, flip=False))
        labels = torch.tensor(subset.targets)
    else:
        labels = data.train_y
    idx = first_per_class(labels, d.train_per_class if imagenet else None)
    if classes is not None:
        idx = idx[torch.isin(labels[idx], torch.as_tensor(list(classes)))]
    if imagenet:
        return torch.stack([subset[i][0] for i in idx.tolist()]), labels[idx]
    return to_model_range(data.train_x[idx]), labels[idx].clone()


def encode_subset(cfg: RunConfig, data, classes: Sequence[int] | None = None, progress: bool = False) -> LatentCache:
    """The latent cache of `real_images` under the config's encoder (nothing written to disk)."""
    x, y = real_images(cfg, data, classes)
    return build_cache(load_vae(cfg.model.vae_encode), list(x), y, progress=progress)


def fresh_latents(vae, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """z0 encoded afresh (book page: The method): a random horizontal flip per image, then a posterior sample. [N, c, h, w]."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return encode(vae, x, generator)


def channel_moments(z: torch.Tensor) -> pd.DataFrame:
    """Mean and standard deviation of latents [N, c, h, w] per channel (over images and positions)."""
    flat = z.float().transpose(0, 1).reshape(z.shape[1], -1)  # [c, N * h * w]
    return pd.DataFrame({"channel": range(z.shape[1]), "mean": flat.mean(1).numpy(), "std": flat.std(1).numpy()})


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), one value per image. [N]."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse)


# ------------------------------------------------------------------------------- memories
def label_stream(labels: torch.Tensor, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The labels of each fine-tuning batch, drawn as `ddgd.method.finetune` draws them."""
    return [labels[batch_indices(len(labels), batch_size, k, seed)] for k in range(steps)]


def fill_history(stream: Sequence[torch.Tensor], n_real: int, n_gen: int) -> pd.DataFrame:
    """Memory sizes of every class after every step, and whether the class added a term at that step.

    Both memories of class c receive one item per batch item of c (after the step's terms); whatever
    the rule, a memory holds min(size, items seen). `counted` is True when c is in the batch and its
    memories were non-empty before the step: a class seen for the first time adds no term (book page: The method).
    """
    classes = sorted(set(torch.cat(list(stream)).tolist()))
    seen = dict.fromkeys(classes, 0)
    rows = []
    for step, y in enumerate(stream, start=1):
        counts = Counter(y.tolist())
        for c in classes:
            n = counts.get(c, 0)
            rows.append(dict(step=step, label=c, in_batch=n > 0, counted=n > 0 and seen[c] > 0,
                             real=min(n_real, seen[c] + n), gen=min(n_gen, seen[c] + n)))
            seen[c] += n
    return pd.DataFrame(rows)


def memory_tensors(run_dir: str | Path) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """(M_real[c], M_gen[c]) of every class, [m, d] each, read from a fine-tuning run's checkpoint."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the fine-tuning first (ddgd.experiments.pipeline.distill)")
    state = read_checkpoint(path, keys=("memories",))["memories"]
    if state is None:
        raise ValueError(f"the run in {run_dir} keeps no memories: use method minimax or ddgd")
    return {int(c): (state["real"][c]["items"], state["gen"][c]["items"]) for c in sorted(state["real"], key=int)}


def diversity_stats(items: torch.Tensor) -> dict[str, float]:
    """Redundancy of a memory [m, d]: mean and largest off-diagonal cosine, largest s_i (eq-adaptive)."""
    m = items.shape[0]
    u = F.normalize(items.reshape(m, -1).double(), dim=1)
    sim = u @ u.T  # [m, m], the S of eq-adaptive
    off = sim[~torch.eye(m, dtype=torch.bool)]
    nan = float("nan")
    return {"mean_cos": float(off.mean()) if m > 1 else nan, "max_cos": float(off.max()) if m > 1 else nan,
            "max_s": float(sim.sum(1).max()) if m else nan}


def memory_summary(memories: Memories) -> pd.DataFrame:
    """Per class: sizes, mean pairwise cosine inside M_real and inside M_gen, and between the two."""
    rows = [dict(label=c, n_real=len(r), n_gen=len(g), real_mean_cos=diversity_stats(r)["mean_cos"],
                 gen_mean_cos=diversity_stats(g)["mean_cos"], cross_mean_cos=float(cosine_matrix(r, g).mean()))
            for c, (r, g) in sorted(memories.items())]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- the minimax terms
@dataclass
class Batch:
    """One fine-tuning batch run through a frozen model: what `training_step` computes, without training."""

    y: torch.Tensor  # [B] local labels
    z0: torch.Tensor  # [B, c, h, w] real latents
    t: torch.Tensor  # [B] timesteps
    z_t: torch.Tensor  # [B, c, h, w] noisy latents (eq-forward)
    eps: torch.Tensor  # [B, c, h, w] the noise
    eps_pred: torch.Tensor  # [B, c, h, w] the model's noise prediction (detached)
    zhat: torch.Tensor  # [B, c, h, w] predicted clean latents (eq-x0, detached)


@torch.no_grad()
def predict_batch(model, cache: LatentCache, idx: torch.Tensor, class_index: torch.Tensor, schedule: Schedule,
                  generator: torch.Generator) -> Batch:
    """Sample z0 of images idx from the cache, noise them and predict eps and zhat (no label dropout)."""
    y = cache.labels[idx]
    z0 = cache.sample(idx, generator)
    t = torch.randint(0, len(schedule), (len(idx),), generator=generator)
    eps = torch.randn(z0.shape, generator=generator)
    z_t = q_sample(z0, t, eps, schedule)
    eps_pred = model(z_t, timestep=t, class_labels=class_index[y]).sample[:, : z0.shape[1]]
    return Batch(y, z0, t, z_t, eps, eps_pred, predicted_x0(z_t, eps_pred, schedule.alphas_cumprod, t))


def _extreme(pred: torch.Tensor, labels: torch.Tensor, c: int, items: torch.Tensor, largest: bool):
    """(batch index i, memory index m, sigma) of the smallest or largest similarity of class c's block."""
    idx = torch.nonzero(labels == c).squeeze(1)
    sim = cosine_matrix(pred[idx].detach(), items)  # [n_c, m]
    i, m = divmod(int(sim.argmax() if largest else sim.argmin()), sim.shape[1])
    return int(idx[i]), m, float(sim[i, m])


def _present(labels: torch.Tensor, memories: Memories) -> list[int]:
    return [c for c in sorted(set(labels.tolist())) if c in memories]


def class_blocks(pred: torch.Tensor, labels: torch.Tensor, memories: Memories, which: str):
    """The cosine blocks behind eq-real (`which="real"`) or eq-gen ("gen"), stacked for a heatmap.

    Returns (matrix [B, width] with NaN where a row's memory is shorter, order: the batch index of
    each row (sorted by class), marks: c -> (row, column) of the min (real) or max (gen) pair).
    """
    k = {"real": 0, "gen": 1}[which]
    order = torch.argsort(labels, stable=True)
    width = max([len(memories[c][k]) for c in _present(labels, memories)], default=0)
    matrix, marks = np.full((len(labels), width), np.nan), {}
    for c in _present(labels, memories):
        rows = torch.nonzero(labels[order] == c).squeeze(1)
        sim = cosine_matrix(pred[labels == c].detach(), memories[c][k])
        matrix[rows.numpy(), : sim.shape[1]] = sim.numpy()
        i, m, _ = _extreme(pred, labels, c, memories[c][k], largest=which == "gen")
        marks[c] = (int(torch.nonzero(order == i)), m)
    return matrix, order, marks


def term_pairs(pred: torch.Tensor, labels: torch.Tensor, memories: Memories) -> pd.DataFrame:
    """Per class: r_c (eq-real), g_c (eq-gen) and the (batch item, memory item) pair that sets each."""
    rows = []
    for c in _present(labels, memories):
        ri, rm, rs = _extreme(pred, labels, c, memories[c][0], largest=False)
        gi, gm, gs = _extreme(pred, labels, c, memories[c][1], largest=True)
        rows.append(dict(label=c, items=int((labels == c).sum()), r_c=1 - rs, real_item=ri, real_memory=rm,
                         g_c=gs, gen_item=gi, gen_memory=gm))
    return pd.DataFrame(rows)


def gradient_table(pred: torch.Tensor, grads: Mapping[str, torch.Tensor], labels: torch.Tensor, memories: Memories,
                   nudge: float = 0.05) -> pd.DataFrame:
    """What the gradient of L_real and L_gen (w.r.t. the predictions) does, per class and term.

    `grads["real"]`, `grads["gen"]`: [B, ...]. For the pair (i, m) that sets the term: how many items of
    the class get a gradient, its norm, `alignment` = sigma(-grad_i, memory item m) (eq-similarity;
    +sqrt(1 - sigma^2) is a pure pull, -sqrt(1 - sigma^2) a pure push), and sigma before and after
    moving pred_i by `nudge` * |pred_i| along -grad_i.
    """
    rows = []
    for c in _present(labels, memories):
        for k, term in enumerate(("real", "gen")):
            i, m, before = _extreme(pred, labels, c, memories[c][k], largest=term == "gen")
            g, p, item = grads[term][i].flatten(), pred[i].detach().flatten(), memories[c][k][m].flatten()
            moved = p - nudge * p.norm() * g / g.norm()
            rows.append(dict(label=c, term=term, item=i, memory_item=m, similarity=before,
                             after=float(F.cosine_similarity(moved, item.to(moved), dim=0)),
                             alignment=float(F.cosine_similarity(-g, item.to(g), dim=0)), grad_norm=float(g.norm()),
                             items_with_grad=int((grads[term][labels == c].flatten(1).norm(dim=1) > 0).sum())))
    return pd.DataFrame(rows)


def mean_multiplicity(stream: Sequence[torch.Tensor]) -> float:
    """Mean weight of a class term under accumulate="cumulative": (K + 1) / 2 for K classes, over batches."""
    return float(np.mean([(len(set(y.tolist())) + 1) / 2 for y in stream]))


# ------------------------------------------------------------------------------- update rules over a stream
def track_rule(stream: torch.Tensor, capacity: int, rule: str, per_step: int = 1) -> tuple[pd.DataFrame, torch.Tensor]:
    """Feed stream [T, ...] to one memory, `per_step` items a step, exactly as `MemoryBank.add` does.

    Returns per-step statistics (size, `diversity_stats`, mean and largest age in steps) and
    alive [steps, T]: True where stream item j is in the memory after step k.
    """
    flat = stream.reshape(len(stream), -1)
    steps = math.ceil(len(flat) / per_step)
    ids, alive, rows = torch.empty(0, dtype=torch.long), torch.zeros(steps, len(flat), dtype=torch.bool), []
    for k in range(steps):
        ids = torch.cat([ids, torch.arange(k * per_step, min((k + 1) * per_step, len(flat)))])
        if len(ids) > capacity:
            ids = ids[UPDATE_RULES[rule](flat[ids], capacity)]
        alive[k, ids] = True
        ages = k - torch.div(ids, per_step, rounding_mode="floor")
        rows.append(dict(step=k + 1, rule=rule, size=len(ids), **diversity_stats(flat[ids]),
                         mean_age=float(ages.float().mean()), max_age=int(ages.max())))
    return pd.DataFrame(rows), alive


def naive_adaptive(items: torch.Tensor, capacity: int, largest: bool = True) -> torch.Tensor:
    """eq-adaptive as written: rebuild S from the kept items after every removal. Kept row indices."""
    keep = torch.arange(items.shape[0])
    flat = items.reshape(items.shape[0], -1).double()
    while len(keep) > capacity:
        u = F.normalize(flat[keep], dim=1)
        s = (u @ u.T).sum(1)
        k = int(torch.argmax(s)) if largest else int(torch.argmin(s))  # first index on ties
        keep = torch.cat([keep[:k], keep[k + 1:]])
    return keep


# ------------------------------------------------------------------------------- figures, files, clocks
def image_grid(rows: Sequence[torch.Tensor], labels: Sequence[str] | None = None, title: str | None = None,
               size: float = 0.9):
    """A figure of image rows: rows[k] is uint8 [n, C, H, W] or float in [-1, 1]; row labels on the left."""
    from matplotlib.figure import Figure  # no pyplot: the figure is glued, not shown twice

    cols = max(1, max(len(r) for r in rows))
    width = size * cols + (0.09 * max(map(len, labels)) + 0.2 if labels else 0.1)  # room for the row labels
    fig = Figure(figsize=(width, size * len(rows) + (0.4 if title else 0.1)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, row in enumerate(rows):
        row = row if row.dtype == torch.uint8 else to_uint8(row)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([]), ax.set_frame_on(False)
            if c < len(row):
                img = row[c].permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
        if labels:
            axes[r][0].set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def decode_items(vae, items: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Flattened latents [m, d] (memory items) -> uint8 images [m, C, H, W] through the decoder."""
    return to_uint8(decode(vae, items.reshape(len(items), *shape).float()))


def write_csv(frame: pd.DataFrame, path: str | Path, cfg: RunConfig) -> Path:
    """Write a result table atomically, with the preset, config hash and provenance on every row."""
    from ddgd.experiments.report import provenance  # deferred: reads git and the hardware

    meta = {"preset": cfg.name, "config_hash": config_hash(cfg), **provenance()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.assign(**meta).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def time_call(fn: Callable[[], object], repeats: int = 5) -> float:
    """Best wall time in seconds of fn() over `repeats` calls, after one warm-up call (one-off costs)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loss_history(run_dir: str | Path) -> pd.DataFrame:
    """The per-step loss terms (step, loss, l_diff, l_vb, l_real, l_gen) of a fine-tuning run."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the fine-tuning first (ddgd.experiments.pipeline.distill)")
    return pd.DataFrame(read_checkpoint(path, keys=("history",))["history"])


def distilled_set(cfg: RunConfig, data, method: str, root: str | Path, ipc: int, progress: bool = False):
    """The distilled set of one method: (images uint8, labels, run folder or None for `random`).

    Generative methods fine-tune (`distill`, resumed or reused when done), sample the pool and keep
    its first `ipc` images per class; `random` draws `ipc` real training images per class.
    `cfg` is the run's config (`experiment.with_seed`).
    """
    from ddgd.experiments.pipeline import GENERATIVE, distill, real_set, sample_pool  # deferred: experiment imports much
    from ddgd.method.sample import ipc_subset

    if method == "random":
        return (*real_set(cfg, data, "random", ipc, cfg.finetune.seed), None)
    if method not in GENERATIVE:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(GENERATIVE)} or random")
    out = distill(cfg, Path(root), data, progress)
    pool_x, pool_y = sample_pool(cfg, out, data, progress)
    return (*ipc_subset(pool_x, pool_y, ipc), out)
