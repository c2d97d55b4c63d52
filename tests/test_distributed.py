"""torch.distributed on CPU: two gloo processes under torchrun do what one process does, bit for bit."""
import json
import os
import subprocess
import sys

import pytest

torch_run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _env(tmp_path):
    return {**os.environ, "OMP_NUM_THREADS": "1", "DDGD_CACHE": str(tmp_path / "cache")}


def _ddgd(args, tmp_path, launcher=()):
    cmd = [*launcher, "-m", "ddgd", *args] if launcher else [sys.executable, "-m", "ddgd", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("method", ["dit", "ddgd"])
def test_a_pool_sampled_by_two_ranks_is_the_one_process_pool(tmp_path, method):
    common = ["--preset", "digits-tiny", "--method", method, "--quiet", "-o", "sample.pool=5",
              "-o", "sample.batch_size=8"]  # 50 images in 7 batches: ranks get 4 and 3, the last one short
    if method != "dit":
        _ddgd(["distill", *common, "--out", "one"], tmp_path)
        (tmp_path / "two" / method).mkdir(parents=True)
        subprocess.run(["cp", "-r", str(tmp_path / "one" / method / "seed0"), str(tmp_path / "two" / method)],
                       check=True)  # the same fine-tuned model: only sampling is shared out here
    _ddgd(["sample", *common, "--out", "one"], tmp_path)
    _ddgd(["sample", *common, "--out", "two"], tmp_path, launcher=torch_run)
    one, two = (tmp_path / d / method / "seed0" / "samples" for d in ("one", "two"))
    assert _files(one) == _files(two)  # every PNG and the manifest, byte for byte
    manifest = json.loads((two / "manifest.json").read_text())
    assert len(manifest["files"]) == 50 and set(manifest["counts"].values()) == {5}
    assert not list(tmp_path.glob("two/**/*.partial"))


def _rows(csv):
    import csv as csvlib

    return sorted((r["method"], r["seed"], r["ipc"], r["network"], r["config_hash"], r["best"])
                  for r in csvlib.DictReader(open(csv)))


def test_the_grid_spread_over_two_ranks_writes_each_row_once(tmp_path):
    grid = ["run", "--preset", "digits-tiny", "--methods", "dit,random", "-o", "eval.seeds=0,1", "--quiet"]
    _ddgd([*grid, "--out", "one", "--csv", "one.csv"], tmp_path)
    _ddgd([*grid, "--out", "two", "--csv", "two.csv"], tmp_path, launcher=torch_run)
    assert len(_rows(tmp_path / "one.csv")) == 4  # 2 methods x 2 seeds x IPC 2 x convnet-3
    assert _rows(tmp_path / "two.csv") == _rows(tmp_path / "one.csv")  # each run once, the same numbers
    again = _ddgd([*grid, "--out", "two", "--csv", "two.csv"], tmp_path, launcher=torch_run)
    assert len(_rows(tmp_path / "two.csv")) == 4, again.stderr  # a rerun finds every row and skips


def test_array_jobs_share_the_grid_with_shard(tmp_path):
    from ddgd.base.distributed import parse_shard, shard

    grid = ["run", "--preset", "digits-tiny", "--methods", "dit,random", "-o", "eval.seeds=0,1", "--quiet",
            "--out", "exp", "--csv", "r.csv"]
    # the cells, seed-major: (dit, 0) (random, 0) (dit, 1) (random, 1); share 1 of 3 is cells[1::3]: (random, 0)
    _ddgd([*grid, "--shard", "1/3"], tmp_path)
    assert [(m, s) for m, s, *_ in _rows(tmp_path / "r.csv")] == [("random", "0")]
    assert shard([("dit", 0), ("random", 0), ("dit", 1), ("random", 1)], 1, 3) == [("random", 0)]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_fine_tuning_on_two_ranks_is_the_one_process_run(tmp_path):
    import torch

    # batch 8 = 2 ranks x 4; a checkpoint every step, so the ranks compare their memories after every
    # step (`distributed.check_identical`: a run whose memories diverge stops with an error)
    common = ["--preset", "digits-tiny", "--method", "ddgd", "--quiet", "-o", "finetune.checkpoint_every=1"]
    _ddgd(["distill", *common, "--out", "one"], tmp_path)
    _ddgd(["distill", *common, "--out", "two"], tmp_path, launcher=torch_run)
    one, two = (torch.load(tmp_path / d / "ddgd" / "seed0" / "checkpoint.pt", weights_only=True) for d in ("one", "two"))
    assert one["step"] == two["step"] == 6
    # Each rank runs the DiT on its 4 images and the loss sees all 8, as in one process; the matrix products
    # differ only in rounding (a batch of 4 is blocked differently from one of 8): float32 rounding, 1e-6.
    # One exception: the bias of an attention key adds q.b to every logit of a query alike, which the
    # softmax ignores, so its true gradient is 0 and what it gets is rounding; Adam divides that by its
    # own square root, so each step moves it by up to lr either way: at most lr x steps = 6e-3 in all.
    for name, value in one["trainable"].items():
        tol = 1e-3 * 6 if name.endswith("to_k.bias") else 1e-6
        assert (two["trainable"][name] - value).abs().max() <= tol, name
    from ddgd.base.distributed import _tensors

    mem_one, mem_two = _tensors(one["memories"]), _tensors(two["memories"])
    assert len(mem_one) == len(mem_two) > 0
    assert all(a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=1e-4) for a, b in zip(mem_one, mem_two))
    assert [h["step"] for h in two["history"]] == list(range(1, 7))
    assert all(abs(a["loss"] - b["loss"]) < 1e-5 for a, b in zip(one["history"], two["history"]))


STOP_AFTER_3 = """
import sys
from pathlib import Path
from ddgd.base import distributed
from ddgd.config import resolve
from ddgd.experiments.pipeline import latent_cache, load_data, run_dir
from ddgd.experiments.runs import with_seed
from ddgd.method.finetune import finetune

distributed.init()
cfg = with_seed(resolve("digits-tiny", ["finetune.checkpoint_every=3"]), 0, "ddgd")
data = load_data(cfg)
finetune(cfg, latent_cache(cfg, data, None, progress=False), data.dit_labels, run_dir(Path(sys.argv[1]), cfg), progress=False,
         stop_after=3)  # as if killed after the checkpoint of step 3
"""


def test_a_run_resumes_with_another_world_size(tmp_path):
    import torch

    common = ["--preset", "digits-tiny", "--method", "ddgd", "--quiet", "-o", "finetune.checkpoint_every=3"]
    _ddgd(["distill", *common, "--out", "one"], tmp_path)
    (tmp_path / "stop.py").write_text(STOP_AFTER_3)
    out = subprocess.run([*torch_run, str(tmp_path / "stop.py"), str(tmp_path / "mixed")], capture_output=True,
                         text=True, env=_env(tmp_path), cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "mixed" / "ddgd" / "seed0"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3 and not (run / "done.json").exists()
    _ddgd(["distill", *common, "--out", "mixed"], tmp_path)  # steps 4-6 on one process
    one = torch.load(tmp_path / "one" / "ddgd" / "seed0" / "ema.pt", weights_only=True)["ema"]
    mixed = torch.load(run / "ema.pt", weights_only=True)["ema"]
    assert one.keys() == mixed.keys()
    for name, value in one.items():  # the tolerances of the test above
        tol = 1e-3 * 6 if name.endswith("to_k.bias") else 1e-6
        assert (mixed[name] - value).abs().max() <= tol, name
