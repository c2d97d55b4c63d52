"""The hard-label evaluation protocol (SPEC section 5; IDC, Kim et al. 2022, and Minimax, Gu et al. 2024).

A network is trained from scratch on the distilled images only and tested on real images:
SGD (lr 0.01, momentum 0.9, weight decay 5e-4, batch 64), learning rate x0.2 at 2/3 and 5/6 of
training, epochs by IPC (`epochs_for_ipc`), random resized crop + flip + colour jitter + PCA
lighting, and CutMix on every batch. Top-1 test accuracy is measured `cfg.evaluations` times,
evenly spaced, the last at the end: "best" is the maximum seen (what Minimax reports), "final" the
last one.

The loop is written for speed on a CPU (issue 3): the images stay one tensor, each batch is
augmented in one go (`ddgd.augment`), and the network can be compiled (`cfg.compile`; eager with
a warning if compilation fails). Everything random derives from `seed`: the network's
initialisation, the order of the batches and every augmentation, so a CPU run is repeatable (a
GPU run up to the nondeterminism of its convolution kernels).

Choices of this implementation: the training crop samples square training images at their own
resolution when it is at most twice `cfg.image_size` (as torchvision's RandomResizedCrop does);
larger or non-square ones are resized first, and test images are resized to `cfg.image_size`.
Images are normalised with the per-channel mean and std of the training images (`normalise=
"train"`), or with 0.5 and 0.5 (`"half"`), rather than ImageNet's statistics, so that one-channel
data works alike.

Results are appended to a CSV one row per run by `ddgd.results`.
"""
from __future__ import annotations

import math
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.augment import augment_batch, cutmix, single_thread
from ddgd.config import EvalConfig
from ddgd.networks import NETWORKS, build

EVAL_BATCH = 256


def epochs_for_ipc(ipc: int) -> int:
    """Training epochs of the protocol for `ipc` images per class (IDC / Minimax)."""
    if ipc <= 0:
        raise ValueError(f"ipc={ipc} must be a positive integer")
    for limit, epochs in ((1, 3000), (10, 2000), (50, 1500), (200, 1000), (500, 500)):
        if ipc <= limit:
            return epochs
    return 300


def num_epochs(cfg: EvalConfig, ipc: int) -> int:
    """cfg.epochs if set, else the protocol's epochs scaled by cfg.epoch_scale (at least cfg.min_epochs)."""
    if cfg.epochs is not None:
        return int(cfg.epochs)
    return max(int(cfg.min_epochs), round(epochs_for_ipc(ipc) * cfg.epoch_scale))


def evaluation_epochs(epochs: int, evaluations: int) -> list[int]:
    """Epochs (1-based) after which the test set is evaluated: evenly spaced, the last one at the end."""
    n = max(1, min(evaluations, epochs))
    return sorted({math.ceil(epochs * k / n) for k in range(1, n + 1)})


def prepare_images(x: torch.Tensor, image_size: int, keep_native: bool = False) -> torch.Tensor:
    """Check a batch of images and bring it to `image_size` (uint8 stays uint8, float stays float).

    With `keep_native`, square images of at most twice `image_size` are kept as they are: the
    training crop then samples them directly, as torchvision's RandomResizedCrop does.
    """
    if x.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(x.shape)}")
    if x.is_floating_point():
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(f"float images must lie in [0, 1] (got [{float(x.min()):.3g}, {float(x.max()):.3g}]): "
                             f"map [-1, 1] images with (x + 1) / 2, or pass uint8")
        x = x.float()
    elif x.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 or float in [0, 1], got {x.dtype}")
    h, w = x.shape[-2:]
    if (h, w) == (image_size, image_size) or (keep_native and h == w and h <= 2 * image_size):
        return x
    out = []
    for chunk in x.split(256):  # bounded memory for large sets
        r = F.interpolate(chunk.float(), size=(image_size, image_size), mode="bilinear", antialias=True,
                          align_corners=False)
        out.append(r.round().clamp(0, 255).to(torch.uint8) if x.dtype == torch.uint8 else r.clamp(0, 1))
    return torch.cat(out)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x


def channel_stats(x: torch.Tensor, mode: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std [C] of images in [0, 1] ("train"), or 0.5 and 0.5 ("half")."""
    c = x.shape[1]
    if mode == "half":
        return torch.full((c,), 0.5), torch.full((c,), 0.5)
    if mode != "train":
        raise ValueError(f"normalise={mode!r}: choose 'train' (statistics of the training images) or 'half'")
    f = _as_float(x).transpose(0, 1).reshape(c, -1).double()  # [C, N*H*W]
    return f.mean(1).float(), f.std(1).clamp(min=1e-3).float()


class _Net:
    """The network to call: compiled when asked, falling back to eager (with a warning) if compiling fails."""

    def __init__(self, model: nn.Module, compile: bool):
        self.model = model
        self.fn = model
        if compile:
            try:
                # dynamic=True: one graph serves every batch size (the last, smaller batch of an epoch
                # and the test batches) instead of a recompilation per new size.
                self.fn = torch.compile(model, dynamic=True)
            except Exception as exc:  # noqa: BLE001 - any backend failure means "run eager"
                warnings.warn(f"torch.compile failed ({exc!r}); training eager", RuntimeWarning, stacklevel=2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn is self.model:
            return self.model(x)
        try:
            return self.fn(x)
        except Exception as exc:  # noqa: BLE001 - compilation happens lazily, on the first calls
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); continuing eager",
                          RuntimeWarning, stacklevel=2)
            self.fn = self.model
            return self.model(x)


def train_step(net, optimiser: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
               mean: torch.Tensor, std: torch.Tensor, cfg: EvalConfig, generator: torch.Generator) -> torch.Tensor:
    """One SGD step on a batch (uint8 or float [B, C, H, W]): augment, normalise, CutMix, cross-entropy.

    Returns the detached loss (a tensor: reading it as a float would synchronise a GPU every step).
    """
    with single_thread(images.device):  # small batch ops: threads only wait on each other (augment.py)
        x = augment_batch(_as_float(images), cfg.image_size, cfg.crop_scale, cfg.colour_jitter, cfg.lighting,
                          generator)  # [B, C, S, S]
        x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        if cfg.cutmix_beta > 0:
            x, ya, yb, lam = cutmix(x, labels, cfg.cutmix_beta, generator)
    if cfg.cutmix_beta > 0:
        out = net(x)
        loss = lam * F.cross_entropy(out, ya) + (1 - lam) * F.cross_entropy(out, yb)
    else:
        loss = F.cross_entropy(net(x), labels)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


@torch.no_grad()
def accuracy(net, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             device: torch.device, batch_size: int = EVAL_BATCH) -> float:
    """Top-1 accuracy (%) on images already at the network's size."""
    correct = 0
    for xb, yb in zip(images.split(batch_size), labels.split(batch_size)):
        x = (_as_float(xb.to(device)) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        correct += int((net(x).argmax(1) == yb.to(device)).sum())
    return 100.0 * correct / max(1, len(labels))


def _labels(y: torch.Tensor, n: int, name: str) -> torch.Tensor:
    y = torch.as_tensor(y).long().reshape(-1)
    if len(y) != n:
        raise ValueError(f"{name} holds {len(y)} labels for {n} images: pass one label per image")
    if len(y) and y.min() < 0:
        raise ValueError(f"{name} holds negative labels: labels must be class indices 0..K-1")
    return y


def train_and_test(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   network: str, cfg: EvalConfig, seed: int, ipc: int, progress: bool = True,
                   num_classes: int | None = None, normalise: str = "train",
                   device: str | torch.device | None = None, threads: int | None = None) -> dict:
    """Train `network` from scratch on (train_x, train_y) and test it; returns best/final top-1 (%).

    Returns dict(best, final, epochs, images_per_second, wall_s, history) where history lists
    (epoch, accuracy) for every evaluation and images_per_second counts training images over the
    training time (compilation included, evaluations excluded). `threads` sets torch's CPU
    thread count for the run (restored afterwards): on a shared machine one thread can beat two,
    whose parallel regions wait on each other.
    """
    if threads is None:
        return _train_and_test(train_x, train_y, test_x, test_y, network, cfg, seed, ipc, progress, num_classes,
                               normalise, device)
    if threads <= 0:
        raise ValueError(f"threads={threads} must be a positive integer (or None for torch's default)")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train_and_test(train_x, train_y, test_x, test_y, network, cfg, seed, ipc, progress, num_classes,
                               normalise, device)
    finally:
        torch.set_num_threads(before)


def _train_and_test(train_x, train_y, test_x, test_y, network, cfg, seed, ipc, progress, num_classes, normalise,
                    device) -> dict:
    start = time.perf_counter()
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}: choose one of {', '.join(NETWORKS)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train_x = prepare_images(train_x, cfg.image_size, keep_native=True)
    test_x = prepare_images(test_x, cfg.image_size)
    train_y = _labels(train_y, len(train_x), "train_y")
    test_y = _labels(test_y, len(test_x), "test_y")
    if len(train_x) == 0 or len(test_x) == 0:
        raise ValueError("train_and_test needs at least one training and one test image")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"training images have {train_x.shape[1]} channels, test images {test_x.shape[1]}")
    if cfg.test_limit is not None:
        test_x, test_y = test_x[: cfg.test_limit], test_y[: cfg.test_limit]
    k = num_classes or int(max(train_y.max(), test_y.max())) + 1
    if int(max(train_y.max(), test_y.max())) >= k:
        raise ValueError(f"labels go up to {int(max(train_y.max(), test_y.max()))} but num_classes={k}: "
                         f"raise num_classes or leave it None")
    epochs = num_epochs(cfg, ipc)
    checkpoints = set(evaluation_epochs(epochs, cfg.evaluations))

    mean, std = (t.to(device) for t in channel_stats(train_x, normalise))
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        model = build(network, k, int(train_x.shape[1]), cfg.image_size).to(device)
    generator = torch.Generator().manual_seed(seed)  # batch order and augmentation, on the CPU
    optimiser = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, [2 * epochs // 3, 5 * epochs // 6], gamma=0.2)
    net = _Net(model, cfg.compile)
    train_x, train_y = train_x.to(device), train_y.to(device)

    history: list[tuple[int, float]] = []
    train_s, seen = 0.0, 0
    bar = tqdm(range(1, epochs + 1), desc=f"{network} ipc {ipc} seed {seed}", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=generator).to(device)
        for idx in order.split(cfg.batch_size):
            loss = train_step(net, optimiser, train_x[idx], train_y[idx], mean, std, cfg, generator)
            seen += len(idx)
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # time the work, not its queueing
        train_s += time.perf_counter() - t0
        if epoch in checkpoints:
            model.eval()
            history.append((epoch, accuracy(net, test_x, test_y, mean, std, device)))
            best = max(a for _, a in history)
            bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{history[-1][1]:.1f}", best=f"{best:.1f}")
    return dict(best=max(a for _, a in history), final=history[-1][1], epochs=epochs,
                images_per_second=seen / max(train_s, 1e-9), wall_s=time.perf_counter() - start, history=history)
