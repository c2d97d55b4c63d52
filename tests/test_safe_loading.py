"""Checkpoints are read with weights_only: a crafted pickle in a run folder is refused, never run."""
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ddgd.config import PRESETS
from ddgd.method.checkpoints import RunDirError, read_checkpoint
from ddgd.method.finetune import finetune, load_finetuned
from ddgd.pages.walkthrough import loss_history
from ddgd.pages.memory_initialisation import memory_tensors
from ddgd.method.latents import LatentCache


class _Payload:
    """Unpickling this object creates a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _crafted(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"config_id": "x", "payload": _Payload(marker)}, f)
    return path


def _cfg(method="ddgd"):
    cfg = PRESETS["digits-tiny"]
    return replace(cfg, finetune=replace(cfg.finetune, method=method))


def _cache():
    n = 48
    g = torch.Generator().manual_seed(0)
    return LatentCache(torch.randn(n, 2, 4, 4, 4, generator=g).half(), torch.full((n, 2, 4, 4, 4), 0.1).half(),
                       torch.arange(n) % 10)


@pytest.mark.parametrize("reader", [read_checkpoint, loss_history, memory_tensors])
def test_a_crafted_checkpoint_is_refused_unread(tmp_path, reader):
    marker = tmp_path / "pwned"
    ckpt = _crafted(tmp_path / "run" / "checkpoint.pt", marker)
    with pytest.raises(RunDirError, match="not written by ddgd"):
        reader(ckpt if reader is read_checkpoint else ckpt.parent)
    assert not marker.exists()  # the payload never ran


def test_distill_refuses_a_crafted_checkpoint_in_its_run_folder(tmp_path):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    finetune(_cfg(), _cache(), list(range(10)), run, progress=False, stop_after=1)  # a real, unfinished run
    _crafted(run / "checkpoint.pt", marker)
    with pytest.raises(RunDirError, match="checkpoint.pt"):
        finetune(_cfg(), _cache(), list(range(10)), run, progress=False)
    assert not marker.exists()


def test_a_crafted_ema_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    run = finetune(_cfg(), _cache(), list(range(10)), tmp_path / "run", progress=False)
    _crafted(run / "ema.pt", marker)
    with pytest.raises(RunDirError, match="ema.pt"):
        load_finetuned(_cfg(), run)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a checkpoint at all"])
def test_unreadable_checkpoints_name_the_file_and_the_fix(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(RunDirError, match=r"checkpoint\.pt.*delete"):
        read_checkpoint(path)


def test_a_foreign_torch_file_is_named_as_such(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(RunDirError, match="not a ddgd checkpoint.*lacks config_id"):
        read_checkpoint(path)


def test_a_real_checkpoint_reads_back(tmp_path):
    run = finetune(_cfg(), _cache(), list(range(10)), tmp_path / "run", progress=False)
    blob = read_checkpoint(run / "checkpoint.pt")
    assert blob["step"] == 6 and blob["memories"]["rule"] == "adaptive"
