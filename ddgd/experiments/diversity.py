"""How diverse a distilled set is: distribution metrics of every method, IPC, class and seed.

The paper says the self-adaptive memory makes the distilled set more diverse (book page The method,
"The self-adaptive memory update"). This measures it with the figures of `ddgd.protocol.diversity`
(precision, recall, density and coverage; Vendi; FID and KID) against a fixed, seeded reference of
real training images (`DiversitySpec.real_per_class` per class, drawn with `reference_seed`: 5,000
images for Fashion-MNIST), in one fixed feature space, named in every row:

- `features="judge"` (the CPU default): the penultimate features of the shipped Fashion-MNIST judge
  (`ddgd.embedded.judge`, data/judge/, its weights' SHA-256 in the name) for Fashion-MNIST and its
  subsets; sklearn's digits have no shipped judge, so one of the same design is trained on their
  training images here (seconds, seeded);
- `features="inception"`: the 2048-d pool features of torch-fidelity's Inception-v3 (through
  torchmetrics, weights fetched on first use), the usual FID space for ImageNet subsets on a GPU.

A set is what the accuracy rows train on: IPC k is the first k images per class of a method's pool
(runs/<preset>/<method>/seed<k>/samples, `ddgd.method.sample.ipc_subset`; a run fine-tuned in class
phases joins its phases' pools, phase<p>/samples, as its accuracy rows do), or for `random` the same
seeded real images as its accuracy rows. The random baseline draws from the same training images as
the reference, so a few of its images may lie in the reference too (as many as chance gives).
Rows go to ``<csv stem>.diversity.csv`` beside the accuracy CSV (`diversity_path`), one per
method, IPC, seed and class, plus the class "all" (the whole set against the whole reference).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base.files import atomic_write
from ddgd.base.provenance import git_commit, provenance
from ddgd.config import SAMPLE_STAGES, RunConfig, config_hash, project_path
from ddgd.experiments.phases import phase_classes, phase_dir, phased, phases_on_disk
from ddgd.experiments.pipeline import RealData, load_data, real_set, run_dir, sample_pool
from ddgd.experiments.results import locked
from ddgd.experiments.runs import GENERATIVE, run_config
from ddgd.method.sample import ipc_subset
from ddgd.protocol.data import FASHION_SUBSETS, resize
from ddgd.protocol.diversity import NEAREST_K, distribution_metrics

PROVENANCE_COLUMNS = ("python", "torch", "torchvision", "diffusers", "ddgd", "commit", "hardware")
DIVERSITY_COLUMNS = ("method", "dataset", "ipc", "seed", "class", "class_name", "feature_space", "k", "precision",
                     "recall", "density", "coverage", "vendi", "fid", "kid_mean", "kid_std", "n_fake", "n_real",
                     "config_hash", "diversity_hash", *PROVENANCE_COLUMNS, "timestamp")
KEY_COLUMNS = ("method", "dataset", "ipc", "seed", "class", "feature_space", "config_hash", "diversity_hash")
FEATURES = ("judge", "inception")
INCEPTION_NAME = "inception-v3 pool 2048-d (torch-fidelity weights)"


def space_kind(feature_space: str) -> str:
    """Which of FEATURES a row's `feature_space` name belongs to (`feature_space` names every row)."""
    return "inception" if feature_space.startswith("inception") else "judge"
FASHION = ("fashion-mnist", *FASHION_SUBSETS)


@dataclass(frozen=True)
class DiversitySpec:
    """What the diversity rows are measured with (hashed into their `diversity_hash`)."""

    features: str = "judge"  # or "inception"
    judge: str = "data/judge"  # the shipped judge (`python -m ddgd.embedded.judge --out data/judge`)
    real_per_class: int = 500  # the reference: 5,000 real training images for Fashion-MNIST's 10 classes
    # (capped at the smallest class's count: 133 per class, 1,330 in all, for digits)
    reference_seed: int = 2025  # not an evaluation seed, so `random`'s draw is not a prefix of the reference
    k: int = NEAREST_K
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    digits_judge_epochs: int = 4  # digits have no shipped judge: one is trained on their 1,437 images
    batch_size: int = 250


@dataclass
class FeatureSpace:
    name: str  # what every row's feature_space column says
    embed: Callable[[torch.Tensor], torch.Tensor]  # uint8 images [N, C, H, W] -> features [N, D]


def diversity_path(csv_path: str | Path) -> Path:
    """data/results/<name>.csv -> data/results/<name>.diversity.csv."""
    path = Path(csv_path)
    return path.with_name(path.stem + ".diversity.csv")


def check_request(cfg: RunConfig, methods, spec: DiversitySpec) -> None:
    """Refuse an unknown method or feature space, or the judge outside its datasets, before any work."""
    bad = [m for m in methods if m not in GENERATIVE and m != "random"]
    if bad:
        raise ValueError(f"no diversity rows for {', '.join(bad)}: choose among {', '.join((*GENERATIVE, 'random'))} "
                         "(`full` is the real training set itself)")
    if spec.features not in FEATURES:
        raise ValueError(f"unknown feature space {spec.features!r}: choose one of {', '.join(FEATURES)}")
    if spec.features == "judge" and cfg.data.dataset not in (*FASHION, "digits"):
        raise ValueError(f"the judge's feature space exists for Fashion-MNIST and digits, not {cfg.data.dataset}: "
                         "use features='inception' (torch-fidelity's Inception-v3, fetched on first use)")
    if spec.real_per_class < 2 or spec.k < 1:
        raise ValueError(f"real_per_class={spec.real_per_class}, k={spec.k}: give at least 2 real images per class "
                         "and k >= 1 (Naeem et al.: k = 5)")


def _batched(fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(images[s:s + batch_size]) for s in range(0, len(images), batch_size)])


def inception_network(device: str):
    """torch-fidelity's Inception-v3 as torchmetrics' FID builds it (pool features, 2048-d)."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).to(device)


def feature_space(cfg: RunConfig, spec: DiversitySpec, data: RealData, progress: bool = False) -> FeatureSpace:
    """The network whose features the metrics compare, and the name every row gives it."""
    from ddgd.embedded.judge import JudgeConfig, embed, load_judge, train_judge

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.features == "inception":
        net = inception_network(device)

        @torch.no_grad()
        def inception(x: torch.Tensor) -> torch.Tensor:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # grey images: the same value in R, G, B
            return net(x.to(device)).float().cpu()

        return FeatureSpace(INCEPTION_NAME,
                            lambda x: _batched(inception, x, spec.batch_size))
    if cfg.data.dataset == "digits":
        jcfg = JudgeConfig(epochs=spec.digits_judge_epochs, resolution=cfg.data.resolution, seed=spec.reference_seed)
        judge = train_judge(data.train_x, data.train_y, jcfg, progress)
        name = (f"judge trained on the {len(data.train_y)} digits training images (seed {jcfg.seed}, "
                f"{jcfg.epochs} epochs), {jcfg.feature_dim}-d")
        return FeatureSpace(name, lambda x: embed(judge, x, spec.batch_size))
    judge, card = load_judge(project_path(spec.judge))
    size = card["config"]["resolution"]
    judge = judge.to(device)
    name = (f"Fashion-MNIST judge {spec.judge} sha256:{card['weights_sha256'][:12]} "
            f"({card['test_accuracy']:.2f} % test accuracy), {judge.arch['feature_dim']}-d")
    return FeatureSpace(name, lambda x: embed(judge, resize(x, size), spec.batch_size))


def reference(cfg: RunConfig, data: RealData, spec: DiversitySpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed real reference: `real_per_class` seeded training images per class (fewer if a class has fewer)."""
    n = min(spec.real_per_class, int(torch.bincount(data.train_y).min()))
    return real_set(cfg, data, "random", n, spec.reference_seed)


def pool_folders(cfg: RunConfig, root: Path, method: str, seed: int, n_classes: int | None = None) -> list[Path]:
    """The sample folders of a method's pool: ``samples/``, or one per class phase (``phase<p>/samples``).

    Without `n_classes` (before the data are read) a phased run's phase folders are those on disk,
    at least ``phase0``; with it, every phase the class list makes."""
    run_cfg = run_config(cfg, method, seed)
    out = run_dir(root, run_cfg)
    if not phased(run_cfg):
        return [out / "samples"]
    if n_classes is None:
        count = max(1, len(phases_on_disk(out)))
    else:
        count = len(phase_classes(n_classes, run_cfg.finetune.classes_per_phase))
    return [phase_dir(out, p) / "samples" for p in range(count)]


def missing_pools(cfg: RunConfig, root: Path, methods, n_classes: int | None = None) -> list[str]:
    """The sample folders of `cfg` x `methods` under `root` that hold no finished pool."""
    return [str(folder) for s in cfg.eval.seeds for m in methods if m in GENERATIVE
            for folder in pool_folders(cfg, root, m, s, n_classes) if not (folder / "manifest.json").is_file()]


def _refuse_missing(cfg: RunConfig, root: Path, missing: list[str]) -> None:
    if missing:
        raise FileNotFoundError(f"no sample pool in {', '.join(missing)}: sample them first (`ddgd sample --preset "
                                f"{cfg.name} --method <method> --out {root}`, or `ddgd run`)")


def read_pool(cfg: RunConfig, root: Path, method: str, seed: int, data: RealData) -> tuple[torch.Tensor, torch.Tensor]:
    """The pool a method's accuracy rows were made from (its phases' pools joined, for a phased run),
    after checking each against its manifest and config; only read, never sampled."""
    run_cfg = run_config(cfg, method, seed)
    return sample_pool(run_cfg, run_dir(root, run_cfg), data, progress=False, sample=False)


def _number(value) -> float | int | str:
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 6)
    return value


def set_rows(fake: torch.Tensor, fake_y: torch.Tensor, real: torch.Tensor, real_y: torch.Tensor, names: list[str],
             spec: DiversitySpec, seed: int = 0) -> list[dict]:
    """The metrics of one set (features and labels) against the reference: the class 'all', then each class."""
    groups = [("all", "all", fake, real)]
    groups += [(str(c), names[c], fake[fake_y == c], real[real_y == c]) for c in range(len(names))]
    return [{"class": c, "class_name": name,
             **distribution_metrics(r, f, spec.k, spec.kid_subsets, spec.kid_subset_size, seed)}
            for c, name, f, r in groups]


def diversity_rows(cfg: RunConfig, methods, root: str | Path, spec: DiversitySpec = DiversitySpec(),
                   progress: bool = True) -> list[dict]:
    """Rows of every method x seed x IPC x class of `cfg`, from the pools under `root`."""
    check_request(cfg, methods, spec)
    root = Path(root)
    _refuse_missing(cfg, root, missing_pools(cfg, root, methods))
    git_commit()  # pins the commit the rows record: the code this measurement starts with
    data = load_data(cfg)
    _refuse_missing(cfg, root, missing_pools(cfg, root, methods, len(data.names)))  # every phase of the list
    space = feature_space(cfg, spec, data, progress)
    ref_x, ref_y = reference(cfg, data, spec)
    ref_f = space.embed(ref_x)
    made = provenance()
    common = {"dataset": cfg.data.dataset, "feature_space": space.name,
              "diversity_hash": hashlib.sha256(json.dumps([asdict(spec), space.name]).encode()).hexdigest()[:12],
              **{c: made.get(c, "unknown") for c in PROVENANCE_COLUMNS}}
    rows = []
    for seed in tqdm(cfg.eval.seeds, desc="diversity", disable=not progress):
        for method in methods:
            if method in GENERATIVE:
                pool_x, pool_y = read_pool(cfg, root, method, seed, data)
                pool_f = space.embed(pool_x)  # once per pool: every IPC is a prefix of it
            for ipc in cfg.eval.ipcs:
                if method in GENERATIVE:
                    f, y = ipc_subset(pool_f, pool_y, ipc)
                else:
                    x, y = real_set(cfg, data, method, ipc, seed)
                    f = space.embed(x)
                run = {"method": method, "ipc": ipc, "seed": seed,
                       "config_hash": config_hash(run_config(cfg, method, seed, ipc), *SAMPLE_STAGES)}
                stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
                rows += [{**common, **run, **r, "timestamp": stamp}
                         for r in set_rows(f, y, ref_f, ref_y, data.names, spec, seed)]
    return [{c: _number(r[c]) for c in DIVERSITY_COLUMNS} for r in rows]


def write_rows(path: str | Path, rows: list[dict]) -> Path:
    """Write `rows` into a diversity CSV, replacing the rows of the same key it holds (atomically, locked)."""
    path = Path(path)
    def key(row: dict) -> tuple:
        return tuple(str(row[c]) for c in KEY_COLUMNS)  # as strings: the rows read back from the CSV are

    new = {key(r) for r in rows}
    with locked(path):
        old = []
        if path.is_file():
            with open(path, newline="") as fh:
                old = list(csv.DictReader(fh))
        kept = [r for r in old if key(r) not in new]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(DIVERSITY_COLUMNS), lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows([*kept, *rows])
        with atomic_write(path) as tmp:
            tmp.write_text(buf.getvalue())
    return path


def run_diversity(cfg: RunConfig, methods, root: str | Path, csv_path: str | Path,
                  spec: DiversitySpec = DiversitySpec(), progress: bool = True) -> Path:
    """Measure the pools of `cfg` x `methods` under `root`; rows to `diversity_path(csv_path)`."""
    return write_rows(diversity_path(csv_path), diversity_rows(cfg, methods, root, spec, progress))
