"""Algorithm 1 on a tiny DiT: methods, memories, exact resumption, and refusal of foreign run folders."""
import json
from dataclasses import replace

import pytest
import torch

from ddgd.config import PRESETS
from ddgd.method.checkpoints import RunDirError
from ddgd.method.finetune import finetune, load_finetuned
from ddgd.method.latents import LatentCache


def tiny_cfg(method="ddgd", **ft):
    cfg = PRESETS["digits-tiny"]
    return replace(cfg, finetune=replace(cfg.finetune, method=method, **ft))


@pytest.fixture(scope="module")
def cache():
    g = torch.Generator().manual_seed(0)
    n = 48
    return LatentCache(torch.randn(n, 2, 4, 4, 4, generator=g).half(), torch.full((n, 2, 4, 4, 4), 0.1).half(),
                       torch.arange(n) % 10)


def ema_of(run):
    return torch.load(run / "ema.pt")["ema"]


@pytest.mark.parametrize("method", ["finetune", "minimax", "ddgd"])
def test_methods_run_and_write_artefacts(tmp_path, cache, method):
    run = finetune(tiny_cfg(method), cache, list(range(10)), tmp_path / method, progress=False)
    assert (run / "done.json").is_file() and (run / "config.json").is_file()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    history = ckpt["history"]
    assert len(history) == 6
    if method == "finetune":
        assert ckpt["memories"] is None and all(h["l_real"] == 0 for h in history)
    else:
        assert ckpt["memories"]["rule"] == ("fifo" if method == "minimax" else "adaptive")
        assert any(h["l_real"] > 0 for h in history[1:])
        assert all(b["items"].shape[0] <= 4 for b in ckpt["memories"]["real"].values())


def test_minimax_and_ddgd_differ_only_by_the_rule(tmp_path, cache):
    a = finetune(tiny_cfg("minimax"), cache, list(range(10)), tmp_path / "a", progress=False)
    b = finetune(tiny_cfg("ddgd", memory_rule="fifo"), cache, list(range(10)), tmp_path / "b", progress=False)
    ea, eb = ema_of(a), ema_of(b)
    assert all(torch.equal(ea[k], eb[k]) for k in ea)


def test_resume_after_interruption_is_exact(tmp_path, cache):
    whole = finetune(tiny_cfg(), cache, list(range(10)), tmp_path / "whole", progress=False)
    part = finetune(tiny_cfg(), cache, list(range(10)), tmp_path / "part", progress=False, stop_after=2)
    assert not (part / "done.json").exists()  # an interrupted run does not look finished
    with pytest.raises(FileNotFoundError, match="not finished"):
        load_finetuned(tiny_cfg(), part)
    finetune(tiny_cfg(), cache, list(range(10)), part, progress=False)
    ew, ep = ema_of(whole), ema_of(part)
    assert all(torch.equal(ew[k], ep[k]) for k in ew)


def test_foreign_run_folder_is_refused(tmp_path, cache):
    finetune(tiny_cfg(), cache, list(range(10)), tmp_path / "run", progress=False, stop_after=1)
    with pytest.raises(RunDirError, match="another config"):
        finetune(tiny_cfg(lambda_g=0.5), cache, list(range(10)), tmp_path / "run", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(RunDirError, match="not empty"):
        finetune(tiny_cfg(), cache, list(range(10)), tmp_path / "junk", progress=False)


def test_finetuned_model_differs_from_pretrained(tmp_path, cache):
    run = finetune(tiny_cfg("finetune", ema_decay=0.0), cache, list(range(10)), tmp_path / "r", progress=False)
    tuned = load_finetuned(tiny_cfg("finetune", ema_decay=0.0), run)
    base = load_finetuned(tiny_cfg("dit"), None)
    z, t, y = torch.randn(2, 4, 4, 4), torch.tensor([10, 900]), torch.tensor([0, 1])
    assert not torch.allclose(tuned(z, timestep=t, class_labels=y).sample, base(z, timestep=t, class_labels=y).sample)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["finetune"]["method"] == "finetune"
