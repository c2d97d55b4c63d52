"""A whole experiment: distill -> sample -> evaluate for every method and seed, one CSV row per run.

This is what `ddgd distill|sample|evaluate|run` and the table notebooks call. Layout of an
experiment folder (``runs/<preset>`` by default):

    <method>/seed<k>/           fine-tuning run: config.json, checkpoint.pt, ema.pt, done.json
    <method>/seed<k>/samples/   the generated pool: ImageFolder of PNGs + manifest.json

A seed covers fine-tuning, sampling and evaluation. Rows are appended to the results CSV as soon as
each evaluation ends (the resolved config of every row, by its hash, in <csv stem>.configs.json), and a rerun skips the rows it already has, so a long preset can run in pieces.
The real-image baselines `random` and `full` go through the same evaluation. Latent caches of the
real training sets are shared by all experiments (`cache_dir`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base import distributed
from ddgd.base.accel import apply_model_switches, autocast, maybe_compile, torch_threads
from ddgd.base.files import write_text
from ddgd.base.provenance import git_commit, provenance
from ddgd.config import IN_CHECKOUT, SAMPLE_STAGES, RunConfig, config_hash, project_path, to_dict
from ddgd.experiments.phases import finetune_phases, phased, sample_phases
from ddgd.experiments.results import append_result, completed_runs, locked, result_row, run_key
from ddgd.experiments.runs import GENERATIVE, run_config
from ddgd.method.finetune import default_device, finetune, load_finetuned
from ddgd.method.hub import check_available
from ddgd.method.latents import LatentCache, cached_latents
from ddgd.method.models import load_vae
from ddgd.method.sample import ipc_subset, verify_image_folder, write_pool
from ddgd.protocol import loaders
from ddgd.protocol.cifar import CIFAR
from ddgd.protocol.data import class_indices, class_names, data_classes, load_image_folder, load_real, real_baseline
from ddgd.protocol.evaluate import train_and_test
from ddgd.protocol.folders import class_files, reads_from_disk, train_set_name
from ddgd.protocol.imagenet import check_imagenet_root, diffusion_transform, is_imagenet, legacy_test_resize
from ddgd.protocol.loaders import test_images


def cache_dir() -> Path:
    """Where latent caches live, shared by every experiment: $DDGD_CACHE, else runs/cache in the repository
    (~/.cache/ddgd for an installed package, never inside site-packages)."""
    if os.environ.get("DDGD_CACHE"):
        return Path(os.environ["DDGD_CACHE"])
    return project_path("runs/cache") if IN_CHECKOUT else Path.home() / ".cache" / "ddgd"


@dataclass
class RealData:
    test_x: torch.Tensor  # uint8 [N, C, H, W] at the evaluation resolution
    test_y: torch.Tensor
    train_x: torch.Tensor | None  # in memory for small datasets (None for ImageNet subsets and image folders)
    train_y: torch.Tensor  # labels of every training image
    names: list[str]
    dit_labels: list[int]  # the label the DiT is conditioned on, per local class


def load_data(cfg: RunConfig) -> RealData:
    """Test images (and train images when they fit in memory) of the configured dataset."""
    d = cfg.data
    classes = data_classes(d)  # a bad class list or image folder fails here, before any image is read
    if reads_from_disk(d.dataset):  # ImageNet subsets and image folders
        if is_imagenet(d.dataset):
            check_imagenet_root(d.root, classes)
        ev = cfg.eval
        resize = ev.test_resize or (legacy_test_resize(ev.image_size) if ev.protocol == "legacy" else ev.image_size)
        test_x, test_y = test_images(d.root, classes, ev.image_size, resize, d.workers)
        train_x = None  # read from disk when needed: the latent cache, `random`, `full`
        train_y = torch.tensor(class_files(d.root, classes, "train", per_class=d.train_per_class).targets,
                               dtype=torch.int64)
    else:
        # CIFAR stays at its own 32 px: the latent cache brings it to data.resolution image by image
        size = None if d.dataset in CIFAR else d.resolution
        train_x, train_y = load_real(d.dataset, "train", root=d.root, resolution=size, download=d.download)
        if d.train_per_class:
            keep = torch.cat([torch.nonzero(train_y == c).squeeze(1)[: d.train_per_class] for c in train_y.unique()])
            keep = keep.sort().values
            train_x, train_y = train_x[keep], train_y[keep]
        test_x, test_y = load_real(d.dataset, "test", root=d.root, resolution=size, download=d.download)
    if cfg.eval.test_limit:
        test_x, test_y = test_x[: cfg.eval.test_limit], test_y[: cfg.eval.test_limit]
    return RealData(test_x, test_y, train_x, train_y, class_names(classes), class_indices(classes))


def latent_cache(cfg: RunConfig, data: RealData, root: Path, progress: bool = True) -> LatentCache:
    d = cfg.data
    vae = load_vae(cfg.model.vae_encode).to(default_device())
    files = None
    if reads_from_disk(d.dataset):  # the ADM crop at the diffusion resolution; both flip views are encoded
        files = class_files(d.root, data_classes(d), "train", transform=diffusion_transform(d.resolution, flip=False),
                            per_class=d.train_per_class)
        images, labels = files, torch.tensor(files.targets)
    elif data.train_x.shape[-2:] != (d.resolution, d.resolution):  # CIFAR's 32 px: the same ADM crop, one by one
        images, labels = loaders.TensorImages(data.train_x, data.train_y, d.resolution), data.train_y
    else:
        images, labels = data.train_x, data.train_y
    base = train_set_name(d, files)  # a chosen class list or an image folder has a cache of its own
    name = base if not d.train_per_class else f"{base}-{d.train_per_class}pc"
    if cfg.model.precision != "fp32":
        name += f"-{cfg.model.precision}"  # a cache encoded in bf16 is another cache
    with autocast(cfg.model.precision, default_device()):
        return cached_latents(vae, cfg.model.vae_encode, name, d.resolution, images, labels, cache_dir(), progress,
                              d.workers)


def run_dir(root: Path, cfg: RunConfig) -> Path:
    return root / cfg.finetune.method / f"seed{cfg.finetune.seed}"


def distill(cfg: RunConfig, root: Path, data: RealData, progress: bool = True) -> Path:
    """Fine-tune (unless the method is `dit`); returns the run folder. Resumes an unfinished run."""
    out = run_dir(root, cfg)
    in_phases = phased(cfg)  # a bad finetune.classes_per_phase fails here, before hours of encoding
    if cfg.finetune.method != "dit":
        check_available(cfg.model.dit, "transformer")  # before the latent cache: hours of encoding at paper scale
        if not distributed.is_main():  # under torchrun, rank 0 encodes; the others wait, then read its cache
            distributed.barrier()
        cache = latent_cache(cfg, data, root, progress)
        if distributed.is_main():
            distributed.barrier()
        if in_phases:  # one model per phase of finetune.classes_per_phase classes (ddgd.experiments.phases)
            finetune_phases(cfg, cache, data.dit_labels, out, progress)
        else:
            finetune(cfg, cache, data.dit_labels, out, progress=progress)
    return out


def read_pool(cfg: RunConfig, folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """A finished pool, after checking it against its manifest (a tampered pool is refused, naming its files)
    and that it was sampled with the settings of `cfg`."""
    if verify_image_folder(folder).get("sample_hash") != config_hash(cfg, *SAMPLE_STAGES):
        raise FileExistsError(f"{folder} was sampled with other settings: delete it to sample again, or "
                              "use another experiment folder")
    return load_image_folder(folder, names)


def sample_pool(cfg: RunConfig, out: Path, data: RealData, progress: bool = True,
                whole: bool = False, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The pool of `sample.pool` images per class, generated once and read back afterwards.

    A run fine-tuned in phases joins its phases' pools, each sampled from its own model (`whole`: one phase's).
    `sample=False` only reads: a pool (or a phase's) that is not finished raises FileNotFoundError."""
    if phased(cfg) and not whole:
        return sample_phases(cfg, out, data, lambda c, o, d: sample_pool(c, o, d, progress, True, sample))
    folder = out / "samples"
    if (folder / "manifest.json").is_file():
        return read_pool(cfg, folder, data.names)
    if not sample:
        raise FileNotFoundError(f"no sample pool in {folder} (samples/manifest.json): sample it first")
    apply_model_switches(cfg.model)
    model = load_finetuned(cfg, out, len(data.dit_labels))  # on the GPU when there is one
    vae = load_vae(cfg.model.vae_decode).to(default_device())
    s = cfg.sample
    meta = {"config": to_dict(cfg), "config_hash": config_hash(cfg),
            "sample_hash": config_hash(cfg, *SAMPLE_STAGES), "provenance": provenance()}
    with autocast(cfg.model.precision, default_device()):  # shared out over the ranks of a torchrun launch
        write_pool(maybe_compile(model, cfg.model.compile), vae, data.dit_labels, data.names, folder, meta, s.pool,
                   s.seed, s.steps, s.guidance, s.guided_channels, s.batch_size, progress)
    return load_image_folder(folder, data.names)  # PNG is lossless: the images as generated


def evaluate_set(cfg: RunConfig, images, labels, data: RealData, method: str, ipc: int, network: str, seed: int,
                 csv: Path, progress: bool = True, variant: str = "") -> dict:
    """Train `network` on a distilled set, test on the real test images, append the row.

    `variant` names a deviation from the preset (an ablation or a sweep point) in its own column.
    """
    result = train_and_test(images, labels, data.test_x, data.test_y, network, cfg.eval, seed, ipc, progress=progress)
    row = result_row(method, cfg.data.dataset, ipc, network, seed, result, config_hash(cfg))
    autocast_in = [stage for stage, p in (("model", cfg.model.precision), ("eval", cfg.eval.precision)) if p != "fp32"]
    if autocast_in:  # how the numbers were computed, in the row's provenance beside the hardware
        row["hardware"] += f"; bf16 autocast: {', '.join(autocast_in)}"
    row["variant"] = variant
    append_result(csv, row)
    return row


def record_config(csv: Path, run_cfg: RunConfig) -> None:
    """Keep the resolved config of every row's hash beside the CSV (<csv stem>.configs.json), atomically."""
    path = csv.with_name(csv.stem + ".configs.json")
    with locked(path):  # parallel runs of one preset share the file
        known = json.loads(path.read_text()) if path.is_file() else {}
        key = config_hash(run_cfg)
        if key in known:
            return
        known[key] = to_dict(run_cfg)
        write_text(path, json.dumps(known, indent=1, sort_keys=True))


def real_set(cfg: RunConfig, data: RealData, method: str, ipc: int, seed: int):
    """The training set of a real-image baseline: in memory, or read from disk for ImageNet subsets and image folders.

    `random` on a dataset on disk reads its IPC images per class; `full` streams the whole set each
    epoch (`loaders.StreamedSet`) instead of holding 13,000 images in memory. CIFAR's real images
    enter the evaluation at their own 32 px.
    """
    d = cfg.data
    if data.train_x is not None:
        return real_baseline(method, data.train_x, data.train_y, ipc, seed)
    if method == "random":
        return loaders.random_baseline(d.root, data_classes(d), d.resolution, ipc, seed, d.workers, d.train_per_class)
    if method == "full":
        stream = loaders.StreamedSet(d.root, data_classes(d), d.resolution, d.workers, d.train_per_class)
        return stream, stream.labels
    raise ValueError(f"unknown real baseline {method!r}: choose 'random' or 'full'")


def _ipcs(cfg: RunConfig, method: str, data: RealData) -> list[int]:
    """IPCs to evaluate; `full` has one entry, the images per class of the whole training set."""
    if method == "full":
        return [int(torch.bincount(data.train_y).min())]
    return list(cfg.eval.ipcs)


def _key(cfg: RunConfig, method: str, seed: int, cell: tuple[int, str], cell_cfg: RunConfig) -> tuple:
    ipc, net = cell
    return run_key(method, cfg.data.dataset, ipc, net, seed, config_hash(cell_cfg))


def _run_cell(cfg, run_cfg, cells_cfg, method, seed, todo, root, data, csv, progress, variant) -> None:
    """Distill and sample (generative methods), then evaluate every (IPC, network) of `todo`."""
    if method in GENERATIVE:
        out = distill(run_cfg, root, data, progress)
        pool_x, pool_y = sample_pool(run_cfg, out, data, progress)
    for ipc, net in todo:
        if method in GENERATIVE:
            x, y = ipc_subset(pool_x, pool_y, ipc)
        else:
            x, y = real_set(cfg, data, method, ipc, seed)
        evaluate_set(cells_cfg[ipc, net], x, y, data, method, ipc, net, seed, csv, progress, variant)


def check_models(cfg: RunConfig, methods: tuple[str, ...]) -> None:
    """Every model the methods will load can be loaded (a local folder, the hub's cache or the hub): checked
    before the first test image is read, so an unreachable hub or a mistyped id costs no work."""
    generative = [m for m in methods if m in GENERATIVE]
    if generative:
        check_available(cfg.model.dit, "transformer")
        check_available(cfg.model.vae_decode, "vae")
    if any(m != "dit" for m in generative):
        check_available(cfg.model.vae_encode, "vae")


def run_experiment(cfg: RunConfig, methods: tuple[str, ...], root: str | Path, csv: str | Path,
                   progress: bool = True, variant: str = "", shard: tuple[int, int] | None = None) -> Path:
    """Every method x seed x IPC x network of `cfg`, skipping rows the CSV already holds.

    `shard=(k, n)`: only the k-th of n shares of the (method, seed) runs (`distributed.shard`, round
    robin), for n workers that share the experiment folder and the CSV: ranks of a torchrun launch, or
    the jobs of an array (`ddgd run --shard k/n`). Each run is independent, so no worker waits for another.
    """
    git_commit()  # pins the commit every row of this run records: the code it starts with
    check_models(cfg, methods)
    root, csv = Path(root), Path(csv)
    data = load_data(cfg)
    done = completed_runs(csv)
    cells = [(m, s) for s in cfg.eval.seeds for m in methods]
    if shard is not None:
        cells = distributed.shard(cells, *shard)
    for method, seed in tqdm(cells, desc=f"{cfg.name}", disable=not progress):
        run_cfg = run_config(cfg, method, seed)
        cells_cfg = {(ipc, net): run_config(cfg, method, seed, ipc, net)
                     for ipc in _ipcs(cfg, method, data) for net in cfg.eval.networks}
        for cell_cfg in cells_cfg.values():
            record_config(csv, cell_cfg)
        if all(_key(cfg, method, seed, k, c) in done for k, c in cells_cfg.items()):
            continue
        # One process at a time per method and seed: a second one on the same folder waits, then finds
        # the fine-tuning, the pool and the rows the first one wrote (no duplicate row, no clash).
        with locked(root / method / f"seed{seed}"):
            done_now = completed_runs(csv)
            todo = [k for k, c in cells_cfg.items() if _key(cfg, method, seed, k, c) not in done_now]
            if todo:
                _run_cell(cfg, run_cfg, cells_cfg, method, seed, todo, root, data, csv, progress, variant)
    return csv


def results_of(cfg: RunConfig, methods: tuple[str, ...] | list[str], csv: str | Path, root: str | Path,
               compute: bool = False, threads: int | None = None, progress: bool = False):
    """The rows of `csv` that the runs of `cfg` x `methods` wrote; with `compute`, the missing runs are run first.

    What a table page does: read the committed result file, and compute only what it lacks, with
    `threads` CPU threads (None: torch's default; on a busy machine one can beat two).
    """
    from ddgd.experiments.report import load_results, select_runs

    if compute:
        with torch_threads(threads):
            run_experiment(cfg, tuple(methods), root, csv, progress=progress)
    return select_runs(load_results(csv, missing_ok=True), cfg, methods)
