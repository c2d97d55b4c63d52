"""The hard-label evaluation protocol (IDC, Kim et al. 2022, and Minimax, Gu et al. 2024; book page "Parity").

A network is trained from scratch on the distilled images only and tested on real images:
SGD (lr 0.01, momentum 0.9, weight decay 5e-4, batch 64), learning rate x0.2 at 2/3 and 5/6 of
training, epochs by IPC (`ddgd.protocol.schedule`), random resized crop + flip + colour jitter + PCA
lighting, and CutMix on every batch. Top-1 test accuracy is measured every E/100 epochs, as Minimax
does: "best" is the maximum seen (what Minimax reports), "final" the last one.

The loop is written for speed on a CPU: the images stay one tensor, each batch is augmented in
one go (`ddgd.protocol.augment`), and the network can be compiled (`cfg.compile`; eager with a warning if
compilation fails). Everything random derives from `seed`: the network's initialisation, the order
of the batches and every augmentation, so a CPU run is repeatable (a GPU run up to the
nondeterminism of its convolution kernels).

`cfg.protocol` selects the reference protocol (default): training images resized to
`cfg.image_size` before the crop (Minimax's Resize(224)), RGB images normalised with ImageNet's
statistics, IDC's networks and augmentation; or this package's 0.1 protocol (``legacy``, the
committed CPU results): square training images up to twice the size cropped at their own
resolution, the training images' own statistics, the legacy networks and augmentation. One-channel
images are normalised with the training images' statistics in both.

`cfg.augment` picks the training augmentation: ``idc`` (default) the transforms above, ``dsa``
and ``dsa-single`` Differentiable Siamese Augmentation on the normalised images
(`ddgd.protocol.dsa`: IDC's composition, or DC's, DM's and MTT's one transform per batch; cutout
is left out while CutMix is on, as IDC does), ``none`` no augmentation; CutMix follows
`cfg.cutmix_beta` in every case (0 for the DSA papers' protocol, which has none).

Results are appended to a CSV one row per run by `ddgd.experiments.results`.
"""
from __future__ import annotations

import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base.accel import autocast, torch_threads
from ddgd.config import EvalConfig
from ddgd.config.fields import AUGMENTS
from ddgd.protocol.augment import augment_batch, cutmix, single_thread
from ddgd.protocol.dsa import STRATEGY, dsa_augment, without
from ddgd.protocol.networks import NETWORKS, build
from ddgd.protocol.schedule import evaluation_epochs, num_epochs

EVAL_BATCH = 256
# eval.augment -> the composition of `dsa_augment` (IDC's, or DC's, DM's and MTT's)
DSA_MODES = {"dsa": "idc", "dsa-single": "single"}


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


# ImageNet's per-channel mean and std of RGB values in [0, 1]: the normalisation of IDC and Minimax.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def normalisation(cfg: EvalConfig, channels: int) -> str:
    """The protocol's normalisation: ImageNet's statistics for RGB images (reference style), else the training set's."""
    return "imagenet" if cfg.protocol == "reference" and channels == 3 else "train"


def channel_stats(x: torch.Tensor | None, mode: str = "train", channels: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std [C]: of the images x in [0, 1] ("train"), ImageNet's, or 0.5 and 0.5 ("half").

    The fixed statistics need only the channel count (`channels`, else x's).
    """
    c = channels or x.shape[1]
    if mode == "half":
        return torch.full((c,), 0.5), torch.full((c,), 0.5)
    if mode == "imagenet":
        if c != 3:
            raise ValueError(f"ImageNet statistics need RGB images, got {c} channels: use normalise='train'")
        return torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    if mode != "train":
        raise ValueError(f"normalise={mode!r}: choose 'train' (statistics of the training images), 'imagenet' or 'half'")
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
        if cfg.augment == "idc":
            x = augment_batch(_as_float(images), cfg.image_size, cfg.crop_scale, cfg.colour_jitter, cfg.lighting,
                              generator, cfg.protocol)  # [B, C, S, S]
            x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        else:  # DSA acts on normalised images, as in the reference code: its zero padding is the mean colour
            x = (_as_float(prepare_images(images, cfg.image_size)) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            if cfg.augment in DSA_MODES:
                strategy = without(STRATEGY, "cutout") if cfg.cutmix_beta > 0 else STRATEGY
                x = dsa_augment(x, generator, strategy, DSA_MODES[cfg.augment])
        if cfg.cutmix_beta > 0:
            x, ya, yb, lam = cutmix(x, labels, cfg.cutmix_beta, generator)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(cfg.precision, x.device):  # cross-entropy runs in float32 under autocast
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
             device: torch.device, batch_size: int = EVAL_BATCH, precision: str = "fp32") -> float:
    """Top-1 accuracy (%) on images already at the network's size."""
    correct = torch.zeros((), dtype=torch.long, device=device)  # summed on the device: one sync at the end
    for xb, yb in zip(images.split(batch_size), labels.split(batch_size)):
        x = (_as_float(xb.to(device)) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        with autocast(precision, device):
            correct += (net(x).argmax(1) == yb.to(device)).sum()
    correct = int(correct)
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
                   num_classes: int | None = None, normalise: str | None = None,
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
    with torch_threads(threads):
        return _train_and_test(train_x, train_y, test_x, test_y, network, cfg, seed, ipc, progress, num_classes,
                               normalise, device)


# Images whose channel statistics stand for a streamed training set (legacy normalisation only).
STATS_SAMPLE = 512


def _epoch_batches(train_x, train_y, order: torch.Tensor, cfg: EvalConfig, device: torch.device, native: bool):
    """The (images, labels) batches of one epoch in `order`: slices of a tensor, or batches read from disk."""
    if isinstance(train_x, torch.Tensor):
        for idx in order.to(device).split(cfg.batch_size):
            yield train_x[idx], train_y[idx]
        return
    for x, y in train_x.batches(order, cfg.batch_size):
        yield prepare_images(x, cfg.image_size, keep_native=native).to(device, non_blocking=True), y.to(device)


def _train_and_test(train_x, train_y, test_x, test_y, network, cfg, seed, ipc, progress, num_classes, normalise,
                    device) -> dict:
    start = time.perf_counter()
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}: choose one of {', '.join(NETWORKS)}")
    if cfg.augment not in AUGMENTS:
        raise ValueError(f"eval.augment={cfg.augment!r}: choose one of {', '.join(AUGMENTS)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # Minimax resizes every training image to the evaluation size before the random crop; the legacy
    # style crops square images of up to twice that size at their own resolution (IDC's crop only:
    # DSA keeps the size it is given).
    native = cfg.protocol == "legacy" and cfg.augment == "idc"
    streamed = not isinstance(train_x, torch.Tensor)  # a set read from disk per batch (ddgd.protocol.loaders.StreamedSet)
    if not streamed:
        train_x = prepare_images(train_x, cfg.image_size, keep_native=native)
    channels = train_x.channels if streamed else int(train_x.shape[1])
    test_x = prepare_images(test_x, cfg.image_size)
    train_y = _labels(train_y, len(train_x), "train_y")
    test_y = _labels(test_y, len(test_x), "test_y")
    if len(train_x) == 0 or len(test_x) == 0:
        raise ValueError("train_and_test needs at least one training and one test image")
    if channels != test_x.shape[1]:
        raise ValueError(f"training images have {channels} channels, test images {test_x.shape[1]}")
    if cfg.test_limit is not None:
        test_x, test_y = test_x[: cfg.test_limit], test_y[: cfg.test_limit]
    k = num_classes or int(max(train_y.max(), test_y.max())) + 1
    if int(max(train_y.max(), test_y.max())) >= k:
        raise ValueError(f"labels go up to {int(max(train_y.max(), test_y.max()))} but num_classes={k}: "
                         f"raise num_classes or leave it None")
    epochs = num_epochs(cfg, ipc)
    checkpoints = set(evaluation_epochs(epochs, cfg.evaluations, cfg.protocol))

    normalise = normalise or normalisation(cfg, channels)
    stats_of = train_x if not streamed else train_x.sample(STATS_SAMPLE, seed) if normalise == "train" else None
    mean, std = (t.to(device) for t in channel_stats(stats_of, normalise, channels))
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        model = build(network, k, channels, cfg.image_size, cfg.protocol).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(seed)  # batch order and augmentation, on the CPU
    optimiser = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, [2 * epochs // 3, 5 * epochs // 6], gamma=0.2)
    net = _Net(model, cfg.compile)
    if not streamed:
        train_x, train_y = train_x.to(device), train_y.to(device)

    history: list[tuple[int, float]] = []
    train_s, seen = 0.0, 0
    bar = tqdm(range(1, epochs + 1), desc=f"{network} ipc {ipc} seed {seed}", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        for xb, yb in _epoch_batches(train_x, train_y, order, cfg, device, native):
            loss = train_step(net, optimiser, xb, yb, mean, std, cfg, generator)
            seen += len(yb)
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # time the work, not its queueing
        train_s += time.perf_counter() - t0
        if epoch in checkpoints:
            model.eval()
            history.append((epoch, accuracy(net, test_x, test_y, mean, std, device, precision=cfg.precision)))
            best = max(a for _, a in history)
            bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{history[-1][1]:.1f}", best=f"{best:.1f}")
    return dict(best=max(a for _, a in history), final=history[-1][1], epochs=epochs,
                images_per_second=seen / max(train_s, 1e-9), wall_s=time.perf_counter() - start, history=history)
