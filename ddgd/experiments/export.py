"""`ddgd export`: a distilled set and its fine-tuned model as folders others can load and share.

Two folders, each written complete or not at all (`atomic_dir`), each loadable offline with the
Hugging Face libraries alone and uploadable as a Hub repository as it stands:

    <to>/dataset/   a `datasets` image folder: train/<class>/<k>.png, train/metadata.jsonl (one line per
                    image: file_name, label, class_name, dit_label, index, sha256), README.md (dataset
                    card: config, provenance, the accuracy rows of this set), ddgd_config.json
    <to>/model/     `save_pretrained` of the fine-tuned DiT (DiffFit gammas folded into the weights, one
                    embedder per block: plain diffusers modules), README.md (model card), ddgd_config.json

    datasets.load_dataset("imagefolder", data_dir="<to>/dataset")
    diffusers.DiTTransformer2DModel.from_pretrained("<to>/model")

The source is a finished run: the pool is verified against its manifest first (a tampered pool is
refused, naming its files), and the config is the one the pool's manifest records, so the export
cannot describe settings other than those the images were made with.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ddgd.base.files import atomic_dir, folder_name
from ddgd.base.provenance import provenance
from ddgd.config import RunConfig, from_dict, save_config
from ddgd.experiments.hub_cards import dataset_card, model_card
from ddgd.experiments.phases import phases_on_disk
from ddgd.experiments.runs import GENERATIVE
from ddgd.method.sample import verify_image_folder
from ddgd.protocol.data import class_indices, class_names, data_classes


class ExportError(ValueError):
    """A source that cannot be exported; the message names the problem and the fix."""


@dataclass(frozen=True)
class Source:
    """A finished run of a generative method: its verified pool and the config the pool was made with."""

    run: Path  # <experiment>/<method>/seed<k>
    pool: Path  # run/samples
    manifest: dict
    cfg: RunConfig

    @property
    def method(self) -> str:
        return self.cfg.finetune.method


def find_source(path: str | Path) -> Source:
    """The run behind `path` (a run folder or its samples/ pool), verified, before anything is written."""
    path = Path(path)
    pool = path / "samples" if (path / "samples" / "manifest.json").is_file() else path
    phases = [f"phase{p}" for p in phases_on_disk(path)]
    if not (pool / "manifest.json").is_file() and phases:  # ddgd.experiments.phases: one model per phase
        raise ExportError(f"{path} was fine-tuned in class phases, one model and pool each ({', '.join(phases)}): "
                          "`ddgd export` takes a run of one model and does not export phased runs")
    if not (pool / "manifest.json").is_file():
        raise ExportError(f"{path} holds no sample pool (samples/manifest.json): pass a run folder such as "
                          "runs/<preset>/ddgd/seed0 after `ddgd sample` or `ddgd run` has finished it")
    manifest = verify_image_folder(pool)  # refuses a tampered pool, naming its files
    if "config" not in manifest:
        raise ExportError(f"{pool}/manifest.json records no config: it was not written by `ddgd sample`; "
                          "sample the pool again with this version of ddgd")
    cfg = from_dict(manifest["config"])
    if cfg.finetune.method not in GENERATIVE:
        raise ExportError(f"{pool} is a pool of {cfg.finetune.method!r}, not of a generative method")
    return Source(pool.parent, pool, manifest, cfg)


def accuracy_rows(src: Source, csvs: list[Path]) -> list[dict]:
    """The result rows of this set (its method, seed and config hashes) in `csvs`, as plain dicts."""
    from ddgd.experiments.report import load_results, select_runs

    found = [c for c in csvs if Path(c).is_file()]
    if not found:
        return []
    rows = select_runs(load_results(found), src.cfg, [src.method])
    cols = [c for c in ("method", "ipc", "network", "seed", "best", "final", "epochs", "config_hash", "commit",
                        "hardware") if c in rows.columns]
    return rows[cols].sort_values(["ipc", "network"]).to_dict("records")


def _pool_files(src: Source, ipc: int | None) -> list[tuple[str, int]]:
    """(relative path, local label) of the exported images: all of the pool, or its first `ipc` per class."""
    names = [folder_name(n) for n in class_names(data_classes(src.cfg.data))]
    files = []
    for label, name in enumerate(names):
        mine = sorted(rel for rel in src.manifest["files"] if rel.split("/")[0] == name)
        if ipc is not None and len(mine) < ipc:
            raise ExportError(f"--ipc {ipc} asks for more images than the pool holds for class {name} ({len(mine)}): "
                              "export a smaller IPC, or sample a larger pool (sample.pool)")
        files += [(rel, label) for rel in mine[:ipc]]
    return files


def export_dataset(src: Source, out: Path, ipc: int | None, rows: list[dict]) -> Path:
    """The pool (or its IPC prefix) as a Hugging Face image folder with metadata and a dataset card."""
    names, dit = class_names(data_classes(src.cfg.data)), class_indices(data_classes(src.cfg.data))
    files = _pool_files(src, ipc)
    with atomic_dir(out, "choose another --to folder, or delete it") as tmp:
        lines = []
        for rel, label in files:
            (tmp / "train" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.pool / rel, tmp / "train" / rel)
            index = int(Path(rel).stem)
            lines.append(json.dumps({"file_name": rel, "label": label, "class_name": names[label],
                                     "dit_label": dit[label], "index": index,
                                     "sha256": src.manifest["files"][rel]}))
        (tmp / "train" / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        save_config(src.cfg, tmp, "ddgd_config.json")
        (tmp / "README.md").write_text(dataset_card(src, names, dit, len(files), ipc, rows, provenance()))
    return out


def _check_model(src: Source) -> None:
    if src.method == "dit":
        raise ExportError("method 'dit' samples the pretrained model unchanged: there is no fine-tuned model to "
                          f"export (use {src.cfg.model.dit} itself); export the dataset only (--what dataset)")


def export_model(src: Source, out: Path, rows: list[dict]) -> Path:
    """The fine-tuned DiT (its EMA weights, what sampling used) as a `save_pretrained` folder with a model card."""
    from ddgd.method.finetune import load_finetuned
    from ddgd.method.models import fold_difffit, num_classes

    _check_model(src)
    names, dit = class_names(data_classes(src.cfg.data)), class_indices(data_classes(src.cfg.data))
    model = fold_difffit(load_finetuned(src.cfg, src.run, len(dit)).cpu())
    with atomic_dir(out, "choose another --to folder, or delete it") as tmp:
        model.save_pretrained(tmp)
        save_config(src.cfg, tmp, "ddgd_config.json")
        (tmp / "README.md").write_text(model_card(src, names, dit, num_classes(model), rows, provenance()))
    return out


WHAT = ("dataset", "model")


def default_csvs(src: Source) -> list[Path]:
    """Where `ddgd run` and `ddgd evaluate` write this run's rows by default (relative to the working directory)."""
    return [Path("data/results") / f"{src.cfg.name}.csv", src.run.parents[1] / "results.csv"]


def export(path: str | Path, to: str | Path, what: tuple[str, ...] = WHAT, ipc: int | None = None,
           csvs: list[Path] | None = None) -> dict[str, Path]:
    """Export the run at `path` into `to`/dataset and `to`/model; everything is checked before anything is written.

    `csvs`: result files to take the set's accuracy rows from (default: `default_csvs`).
    """
    bad = [w for w in what if w not in WHAT]
    if bad or not what:
        raise ExportError(f"--what {','.join(what)}: choose from {', '.join(WHAT)} (comma-separated)")
    if ipc is not None and ipc < 1:
        raise ExportError(f"--ipc {ipc}: give a positive number of images per class")
    src = find_source(path)
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise ExportError(f"--to {to} is a file: name a folder (it is created if missing)")
    taken = [str(to / w) for w in what if (to / w).exists()]
    if taken:
        raise ExportError(f"{', '.join(taken)} exist(s) already: choose another --to folder, or delete them")
    if "model" in what:
        _check_model(src)
    _pool_files(src, ipc)  # an IPC larger than the pool fails here, before any folder exists
    rows = accuracy_rows(src, default_csvs(src) if csvs is None else list(csvs))
    if ipc is not None:
        rows = [r for r in rows if int(r["ipc"]) == ipc]
    made = {}
    if "dataset" in what:
        made["dataset"] = export_dataset(src, to / "dataset", ipc, rows)
    if "model" in what:
        made["model"] = export_model(src, to / "model", rows)
    return made

