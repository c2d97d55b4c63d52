"""Figure 3 of the paper: real images next to DiT, Minimax and DDGD samples, and their diversity.

The paper's Figure 3 shows, for a few classes at IPC 50, original images and the distilled images
of DiT, Minimax and DDGD, with the claim that DDGD's are more diverse. A gallery here is a folder
of result files written by `compute_gallery`:

    <images_dir>/manifest.json     what was asked (`GallerySpec`), config, `gallery_hash`, provenance
    <images_dir>/diversity.csv     per method and class: diversity ratio and judge accuracy
    <images_dir>/<method>/<class>/NNNN.png   the images shown (ImageFolder), `real` for the originals

All methods sample with the same seed, so the k-th image of a class starts from the same noise in
every method (`ddgd.method.sample.image_noise`). Diversity is measured on the whole IPC set of every class
with `ddgd.embedded.quality.diversity_ratio`: mean pairwise distance of the images in the features of a
small classifier trained on the real training images (the judge), over that of real images of the
class (1.0: as spread out as the real data). The `real` row is a random draw of IPC real images.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from ddgd.base.files import atomic_dir
from ddgd.base.provenance import provenance
from ddgd.config import SAMPLE_STAGES, RunConfig, config_hash, to_dict
from ddgd.embedded.quality import conditional_accuracy, diversity_ratio, predict, train_judge
from ddgd.experiments import statistics
from ddgd.experiments.comparisons import paired_phrase
from ddgd.experiments.runs import with_seed
from ddgd.method.sample import ipc_subset, write_image_folder
from ddgd.protocol.data import load_image_folder, real_baseline, resize
from ddgd.protocol.imagenet import ImageNetSubset, eval_transform, subset_classes

REAL = "real"
DISPLAY = {REAL: "Original", "dit": "DiT", "finetune": "Fine-tuned", "minimax": "Minimax", "ddgd": "DDGD (ours)"}
MANIFEST, DIVERSITY = "manifest.json", "diversity.csv"


@dataclass(frozen=True)
class GallerySpec:
    """What a gallery shows and measures; a stored gallery is reused only when its spec is equal."""

    methods: tuple[str, ...] = ("dit", "minimax", "ddgd")
    classes: tuple[int, ...] = (0, 1, 2)  # class indices of the dataset, in the order of the rows
    per_class: int = 8  # images shown per class (the first of the IPC set)
    ipc: int = 50  # images per class of the distilled set whose diversity is measured
    seed: int = 0  # fine-tuning and sampling seed of every method; draw of the real images
    judge_epochs: int = 2
    judge_size: int = 32  # images are resized to this many pixels for the judge

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as stored in the manifest

    def check(self, cfg: RunConfig, num_classes: int | None = None) -> None:
        """Clear errors for values that cannot work with `cfg`."""
        if self.ipc > cfg.sample.pool:
            raise ValueError(f"ipc {self.ipc} exceeds the {cfg.sample.pool} images sampled per class: "
                             f"add 'sample.pool': {self.ipc} to the config overrides")
        if not 2 <= self.per_class <= self.ipc:
            raise ValueError(f"per_class {self.per_class} must lie between 2 and ipc ({self.ipc})")
        bad = [c for c in self.classes if num_classes is not None and not 0 <= c < num_classes]
        if not self.classes or bad:
            raise ValueError(f"classes {list(self.classes)} must be a non-empty list of indices below {num_classes}")
        unknown = [m for m in self.methods if m not in DISPLAY or m == REAL]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}: choose from dit, finetune, minimax, ddgd")


def first_per_class(images: torch.Tensor, labels: torch.Tensor, classes, per_class: int):
    """The first `per_class` images of each of `classes`: images [len(classes) * per_class, ...], row labels 0.."""
    picks = []
    for c in classes:
        idx = torch.nonzero(labels == c).squeeze(1)[:per_class]
        if len(idx) < per_class:
            raise ValueError(f"class {c} holds {len(idx)} images, fewer than the {per_class} to show")
        picks.append(idx)
    keep = torch.cat(picks)
    return images[keep], torch.arange(len(classes)).repeat_interleave(per_class)


def gallery_real_images(cfg: RunConfig, data, size: int, ipc: int | None = None, seed: int = 0):
    """Real training images at `size` px: all of them, or a seeded draw of `ipc` per class (class-major).

    In-memory datasets come from `data`; ImageNet subsets are read from `data.root`.
    """
    if data.train_x is not None:
        x, y = (data.train_x, data.train_y) if ipc is None else real_baseline("random", data.train_x,
                                                                               data.train_y, ipc, seed)
        return resize(x, size), y
    subset = ImageNetSubset(cfg.data.root, subset_classes(cfg.data), "train", transform=eval_transform(size))
    targets = torch.tensor(subset.targets)
    index = torch.arange(len(targets))
    if ipc is not None:  # the same seeded draw as real_baseline, applied to file indices
        index, _ = real_baseline("random", index, targets, ipc, seed)
    return torch.stack([subset[int(i)][0] for i in index]), targets[index]


def judge_rows(judge, name: str, images: torch.Tensor, labels: torch.Tensor, real_x: torch.Tensor,
               real_y: torch.Tensor, class_names: list[str], seed: int = 0) -> list[dict]:
    """Per class of a set (images at the judge's size): diversity ratio and share the judge labels right."""
    ratios = diversity_ratio(judge, images, labels, real_x, real_y, seed=seed)
    pred, _ = predict(judge, images)
    return [dict(method=name, class_index=c, class_name=class_names[c], images=int((labels == c).sum()),
                 diversity=round(r, 4), judge_accuracy=round(100.0 * float((pred[labels == c] == c).float().mean()), 2))
            for c, r in ratios.items()]


def write_gallery(out_dir: str | Path, sets: dict, spec: GallerySpec, class_names: list[str], rows: list[dict],
                  meta: dict) -> Path:
    """Write the shown images, diversity.csv and manifest.json into a temporary folder, then rename it."""
    out = Path(out_dir)
    shown = [class_names[c] for c in spec.classes]
    with atomic_dir(out, "delete it to recompute the gallery") as tmp:
        for name, (x, y) in sets.items():
            sx, sy = first_per_class(x, y, spec.classes, spec.per_class)
            write_image_folder(sx, sy, shown, tmp / name, {"method": name, "classes": list(spec.classes)})
        pd.DataFrame(rows).to_csv(tmp / DIVERSITY, index=False)
        manifest = {**meta, "spec": spec.as_dict(), "class_names": shown,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "provenance": provenance()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out


def gallery_hash(cfg: RunConfig, seed: int) -> str:
    """What a gallery depends on: model, data, fine-tuning and sampling at its seed; never the evaluation settings."""

    return config_hash(with_seed(cfg, seed), *SAMPLE_STAGES)


def compute_gallery(cfg: RunConfig, spec: GallerySpec, root: str | Path, out_dir: str | Path,
                    progress: bool = True) -> Path:
    """Fine-tune and sample every method (`ddgd.experiments.pipeline`), measure diversity, write the gallery."""
    from ddgd.experiments.pipeline import distill, load_data, sample_pool  # deferred: heavy imports

    spec.check(cfg)  # before any loading: a bad value fails at once
    data = load_data(cfg)
    spec.check(cfg, len(data.names))
    real_x, real_y = gallery_real_images(cfg, data, spec.judge_size)  # the judge's training set
    judge = train_judge(real_x, real_y, spec.judge_epochs, spec.seed, progress)
    sets = {REAL: gallery_real_images(cfg, data, cfg.data.resolution, spec.ipc, spec.seed)}
    hashes = {}
    for method in spec.methods:
        run_cfg = with_seed(cfg, spec.seed, method)
        pool_x, pool_y = sample_pool(run_cfg, distill(run_cfg, Path(root), data, progress), data, progress)
        sets[method] = ipc_subset(pool_x, pool_y, spec.ipc)
        hashes[method] = config_hash(run_cfg, *SAMPLE_STAGES)  # the pool's sample_hash
    rows = [r for name, (x, y) in sets.items()
            for r in judge_rows(judge, name, resize(x, spec.judge_size), y, real_x, real_y, data.names, spec.seed)]
    test_acc = conditional_accuracy(judge, resize(data.test_x, spec.judge_size), data.test_y)
    meta = {"config": to_dict(cfg), "config_hash": gallery_hash(cfg, spec.seed), "run_config_hashes": hashes,
            "judge": {"test_accuracy": round(test_acc, 2), "train_images": len(real_y)}}
    return write_gallery(out_dir, sets, spec, data.names, rows, meta)


def load_gallery(out_dir: str | Path, cfg: RunConfig, spec: GallerySpec) -> tuple[dict, pd.DataFrame, dict]:
    """(sets {name: (images, row labels)}, diversity rows, manifest) of a stored gallery made for (cfg, spec)."""
    out = Path(out_dir)
    manifest = json.loads((out / MANIFEST).read_text())
    stored = {"config_hash": manifest.get("config_hash"), **manifest.get("spec", {})}
    wanted = {"config_hash": gallery_hash(cfg, spec.seed), **spec.as_dict()}
    differ = [f"{k}: stored {stored.get(k)!r}, asked {v!r}" for k, v in wanted.items() if stored.get(k) != v]
    if differ:
        raise ValueError(f"{out} holds a gallery made for other settings ({'; '.join(differ)}): point images_dir "
                         "at another folder, or delete this one to recompute it")
    sets = {name: load_image_folder(out / name, manifest["class_names"]) for name in (REAL, *spec.methods)}
    return sets, pd.read_csv(out / DIVERSITY), manifest


def gallery(cfg: RunConfig, spec: GallerySpec, images_dir: str | Path, root: str | Path, compute: bool = True,
            progress: bool = True) -> tuple[dict, pd.DataFrame, dict, bool]:
    """The stored gallery when `images_dir` holds one, else computed (when `compute`); the last item: computed now."""
    computed = not (Path(images_dir) / MANIFEST).is_file()
    if computed and not compute:
        raise FileNotFoundError(f"{images_dir} holds no gallery ({MANIFEST} missing): run with compute=True "
                                "to fine-tune, sample and write it")
    if computed:
        compute_gallery(cfg, spec, root, images_dir, progress)
    return (*load_gallery(images_dir, cfg, spec), computed)


# ------------------------------------------------------------------------------------- the figure
def montage(images: torch.Tensor, per_row: int, pad: int = 1) -> torch.Tensor:
    """uint8 images [N, C, H, W] -> one uint8 image [H', W', 3] of rows of `per_row`, white gaps."""
    grid = make_grid(images, nrow=per_row, padding=pad, pad_value=255)  # [3, H', W'] (1 channel repeated)
    return grid.permute(1, 2, 0).contiguous()


def plot_gallery(sets: dict, class_names: list[str], per_class: int) -> Figure:
    """One panel per set (Original, then the methods): a row per class, `per_class` images per row."""
    rows = len(class_names)
    fig, axes = plt.subplots(1, len(sets), figsize=(max(1.0, 0.42 * per_class) * len(sets) + 1.2, 0.45 * rows + 0.8),
                             squeeze=False)
    for ax, (name, (x, _)) in zip(axes[0], sets.items()):
        grid = montage(x, per_class)
        ax.imshow(grid.numpy())
        ax.set_title(DISPLAY.get(name, name), fontsize=10)
        ax.set_xticks([])
        step = grid.shape[0] / rows
        ax.set_yticks([step * (i + 0.5) for i in range(rows)], class_names if ax is axes[0][0] else [])
        ax.tick_params(length=0, labelsize=8)
    fig.tight_layout()
    return fig


def diversity_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per set, in figure order: mean, min and max diversity ratio over classes, mean judge accuracy (%)."""
    g = rows.groupby("method", sort=False)
    out = g.agg(diversity=("diversity", "mean"), lowest=("diversity", "min"), highest=("diversity", "max"),
                judge_accuracy=("judge_accuracy", "mean"), classes=("class_index", "count"))
    out.index = [DISPLAY.get(m, m) for m in out.index]
    out.index.name = "images"
    return out


def describe_diversity(rows: pd.DataFrame, method: str = "ddgd", others: tuple[str, ...] = ("minimax", "dit")) -> str:
    """Sentences comparing the diversity of `method` with each of `others`, written from the numbers.

    A gallery is one set per method, so the ratios are paired by class: the difference of the two
    sets' ratios in each class, its bootstrap interval over the classes and the verdict it gives
    (`ddgd.experiments.statistics`, the tables' rules with the class in place of the seed): more
    diverse when the interval lies above 0, less below, not told apart when it holds 0. The
    classes are this gallery's own, so the verdict speaks of these sets, not of the method's seeds.
    """
    wide = rows.pivot(index="class_index", columns="method", values="diversity")
    if method not in wide:
        return f"No diversity measured for {DISPLAY.get(method, method)} yet."
    lines = []
    for other in [o for o in others if o in wide]:
        mine, theirs = wide[method], wide[other]
        wins, k = int((mine > theirs).sum()), len(wide)
        p = statistics.paired_statistics(statistics.pair_by_seed(wide.index, mine, wide.index, theirs))
        said = {statistics.BETTER: "more diverse", statistics.WORSE: "less diverse"}.get(p.verdict, p.verdict)
        verdict = f"{said} than" if p.verdict in (statistics.BETTER, statistics.WORSE) else \
            "not told apart in diversity from"
        phrase = paired_phrase(p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low, p.ci_high, said, None,
                               decimals=2, unit="", pair_word="class")
        lines.append(f"{DISPLAY.get(method, method)} is {verdict} {DISPLAY.get(other, other)} by this measure: "
                     f"mean ratio {mine.mean():.2f} against {theirs.mean():.2f}, higher in {wins} of {k} classes; "
                     f"paired by class, {phrase}.")
    if REAL in wide:
        lines.append(f"A random draw of real images of the same size scores {wide[REAL].mean():.2f}.")
    return " ".join(lines)
