"""Fine-tuning in class phases: one model per phase of `finetune.classes_per_phase` classes.

Minimax fine-tunes ImageNet-100 in phases because one GPU's batch cannot hold every class: its
`train_dit.py` with ``--nclass K --phase p`` fine-tunes the pretrained DiT-XL/2 afresh on rows
pK..pK+K-1 of its class list (each image conditioned on its ImageNet-1k index), and `sample.py`
with the same arguments samples those classes from that phase's checkpoint. Here phase p of a
run folder is its own fine-tuning run, ``<method>/seed<k>/phase<p>/``, with its own pool under
``phase<p>/samples/``; the pool of the experiment is the phases' pools in class order (book page:
Parity with the reference code).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ddgd.config import ConfigError, RunConfig
from ddgd.method.finetune import finetune
from ddgd.method.latents import LatentCache


def phase_classes(n_classes: int, per_phase: int) -> list[range]:
    """The local classes of each phase: consecutive runs of `per_phase` of the list, the last one shorter."""
    if isinstance(per_phase, bool) or not isinstance(per_phase, int) or per_phase < 1:
        raise ConfigError(f"finetune.classes_per_phase={per_phase!r} must be a positive integer (classes per "
                          "fine-tuning phase, e.g. 20 as Minimax), or None to fine-tune on every class at once")
    return [range(lo, min(lo + per_phase, n_classes)) for lo in range(0, n_classes, per_phase)]


def phased(cfg: RunConfig) -> bool:
    """Whether `cfg` fine-tunes in phases (the `dit` baseline fine-tunes nothing, so it has none); refuses a
    phase size that is not a positive integer."""
    per_phase = cfg.finetune.classes_per_phase
    if per_phase is not None:
        phase_classes(1, per_phase)
    return per_phase is not None and cfg.finetune.method != "dit"


def phase_dir(out: Path, p: int) -> Path:
    return Path(out) / f"phase{p}"


def phases_on_disk(out: Path) -> list[int]:
    """The phase numbers of the ``phase<p>`` folders of a run folder, in numeric order."""
    return sorted(int(d.name[5:]) for d in Path(out).glob("phase*") if d.name[5:].isdigit())


def sub_cache(cache: LatentCache, classes: range) -> LatentCache:
    """The rows of `cache` whose local label lies in `classes`, relabelled 0..len(classes)-1."""
    rows = torch.nonzero((cache.labels >= classes.start) & (cache.labels < classes.stop)).squeeze(1)
    return LatentCache(cache.mean[rows], cache.std[rows], cache.labels[rows] - classes.start)


def finetune_phases(cfg: RunConfig, cache: LatentCache, dit_labels: list[int], out: Path,
                    progress: bool = True) -> None:
    """Fine-tune one model per phase on its classes, in its own run folder (each resumes on its own)."""
    for p, classes in enumerate(phase_classes(len(dit_labels), cfg.finetune.classes_per_phase)):
        finetune(cfg, sub_cache(cache, classes), [dit_labels[c] for c in classes], phase_dir(out, p),
                 progress=progress)


def sample_phases(cfg: RunConfig, out: Path, data, sample_one: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """Each phase's pool sampled from its own model (`sample_one(cfg, phase folder, phase data)`), joined.

    The noise of an image derives from (seed, local class, index): a phase samples with seed
    ``sample.seed * 1000 + p`` so that class c of two phases never starts from the same noise.
    """
    xs, ys = [], []
    for p, classes in enumerate(phase_classes(len(data.dit_labels), cfg.finetune.classes_per_phase)):
        sub = replace(data, names=[data.names[c] for c in classes], dit_labels=[data.dit_labels[c] for c in classes])
        phase_cfg = replace(cfg, sample=replace(cfg.sample, seed=cfg.sample.seed * 1000 + p))
        x, y = sample_one(phase_cfg, phase_dir(out, p), sub)
        xs.append(x)
        ys.append(y + classes.start)
    return torch.cat(xs), torch.cat(ys)
