"""The files of a fine-tuning run: config.json, checkpoint.pt, ema.pt, done.json (book page: The method).

A checkpoint holds everything a resumed run needs to continue exactly (trainable weights, EMA,
optimiser, both memories of every class, the generator's state, the step, the history and the
memory log); it is read with `weights_only=True`, so a file from elsewhere cannot run code. Every file is written
atomically (`ddgd.base.files`).
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from ddgd.base.files import atomic_write, temporaries
from ddgd.config import FINETUNE_STAGES, RunConfig, config_hash, save_config
from ddgd.method.models import copy_parameters


class RunDirError(RuntimeError):
    """The output directory holds another run, or a checkpoint that does not match the config."""


def logged(history: list[dict]) -> list[dict]:
    """History entries with their tensors read as floats (one device sync for all pending steps)."""
    return [{k: float(v) if isinstance(v, torch.Tensor) else v for k, v in h.items()} for h in history]


def checkpoint_id(cfg: RunConfig) -> str:
    """What a checkpoint must have been made with: the hash of the model and fine-tuning sections."""
    return config_hash(cfg, *FINETUNE_STAGES)


def save_checkpoint(path: Path, model, state, cfg: RunConfig) -> None:
    """Everything a resumed run needs (`ddgd.method.finetune.State` and the trainable weights), atomically."""
    state.history = logged(state.history)
    params = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    blob = {
        "config_id": checkpoint_id(cfg), "model": cfg.model.dit, "step": state.step, "trainable": params,
        "optimizer": state.optimizer.state_dict(), "ema": state.ema.state_dict(),
        "memories": state.memories.state_dict() if state.memories else None,
        "generator": state.generator.get_state(), "history": state.history, "memory_log": state.memory_log,
    }
    with atomic_write(path) as tmp:
        torch.save(blob, tmp)


CHECKPOINT_KEYS = ("config_id", "model", "step", "trainable", "optimizer", "ema", "memories", "generator", "history")


def read_checkpoint(path: str | Path, map_location="cpu", keys: tuple[str, ...] = CHECKPOINT_KEYS) -> dict:
    """A fine-tuning checkpoint (or ema.pt) read safely: tensors and plain containers only.

    `torch.load(weights_only=True)` refuses any pickled object other than tensors, numbers, strings
    and containers, so a crafted file in a downloaded run folder cannot run code. Every way a file
    can be unreadable (empty, truncated, foreign, another program's pickle) becomes a `RunDirError`
    that names the file and the fix.
    """
    path = Path(path)
    fix = f"delete {path} to start that run over, or restore the file from where it came"
    try:
        blob = torch.load(path, weights_only=True, map_location=map_location)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:  # weights_only refuses a global: not a file this package wrote
        raise RunDirError(f"{path} holds objects other than tensors and plain values, so it was not written by "
                          f"ddgd and is refused unread ({str(err).splitlines()[0]}): {fix}") from None
    except (EOFError, RuntimeError, OSError, ValueError) as err:  # empty, truncated or not a torch file
        raise RunDirError(f"{path} is not a readable checkpoint ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else 'empty file'}): {fix}") from None
    missing = [k for k in keys if not isinstance(blob, dict) or k not in blob]
    if missing:
        raise RunDirError(f"{path} is not a ddgd checkpoint (it lacks {', '.join(missing)}): {fix}")
    return blob


def load_checkpoint(path: Path, model, state, cfg: RunConfig) -> None:
    """Restore `state` and the trainable weights from `path`, after checking it is this run's."""
    blob = read_checkpoint(path, map_location=next(model.parameters()).device)
    if blob["config_id"] != checkpoint_id(cfg) or blob["model"] != cfg.model.dit:
        raise RunDirError(f"checkpoint {path} comes from another model or config ({blob['model']}, "
                          f"id {blob['config_id']}): use a new output directory or the checkpoint's config")
    copy_parameters(model, blob["trainable"])
    state.optimizer.load_state_dict(blob["optimizer"])
    state.ema.load_state_dict(blob["ema"])
    if state.memories is not None:
        state.memories.load_state_dict(blob["memories"])
    state.generator.set_state(blob["generator"])
    state.step, state.history = blob["step"], blob["history"]
    state.memory_log = blob.get("memory_log", [])  # checkpoints written before the memory log have none


def prepare_run_dir(out: Path, cfg: RunConfig) -> None:
    """Create `out` for this config, or accept it when it holds the same run; refuse another run's folder."""
    existing = out / "config.json"
    if existing.is_file():
        theirs = json.loads(existing.read_text())
        if config_hash(theirs, *FINETUNE_STAGES) != checkpoint_id(cfg):
            raise RunDirError(f"{out} already holds a run with another config: choose another output "
                              "directory, or delete it to start over")
    elif out.exists() and any(p not in temporaries(existing) for p in out.iterdir()):
        # a temporary of config.json is a run killed while writing its first file: not another run's
        raise RunDirError(f"{out} is not empty and holds no run config: choose an empty output directory")
    save_config(cfg, out)


def is_done(out: Path) -> bool:
    return (out / "done.json").is_file()
