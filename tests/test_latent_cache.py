"""The latent cache on disk: memory-mapped .npy folders, complete or absent, shared by parallel writers."""
import os

import numpy as np
import pytest
import torch

from ddgd.base.files import temporaries
from ddgd.method.latents import LatentCache, build_cache, cache_key, cache_path, cache_writer, cached_latents
from ddgd.method.models import load_vae


def _cache(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return LatentCache(torch.randn(n, 2, 4, 2, 2, generator=g).half(), torch.rand(n, 2, 4, 2, 2, generator=g).half(),
                       torch.arange(n) % 3)


def test_a_saved_cache_reads_back_exactly_and_memory_mapped(tmp_path):
    cache = _cache()
    cache.save(tmp_path / "c", {"k": 1})
    back = LatentCache.load(tmp_path / "c", {"k": 1})
    assert torch.equal(back.mean, cache.mean) and torch.equal(back.std, cache.std)
    assert torch.equal(back.labels, cache.labels) and back.mean.dtype == torch.float16
    mapped = np.load(tmp_path / "c" / "mean.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and mapped.shape == (5, 2, 4, 2, 2)  # what `load` maps, not a copy
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(back.sample(torch.tensor([4, 0]), g1), cache.sample(torch.tensor([4, 0]), g2))
    with pytest.raises(ValueError, match="was built for"):
        LatentCache.load(tmp_path / "c", {"k": 2})


def test_an_unreadable_or_pickled_cache_is_refused_with_the_fix(tmp_path):
    _cache().save(tmp_path / "c", {"k": 1})
    np.save(tmp_path / "c" / "std.npy", np.array([{"code": "runs"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="delete it to rebuild"):
        LatentCache.load(tmp_path / "c")  # object arrays need pickle, which the reader never allows
    (tmp_path / "c" / "mean.npy").write_bytes(b"\x93NUMPY")  # truncated header
    with pytest.raises(ValueError, match="unreadable"):
        LatentCache.load(tmp_path / "c")


def test_an_interrupted_encoding_leaves_no_cache(tmp_path):
    out = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        with cache_writer(out, 4, (4, 2, 2), torch.arange(4), {"k": 1}) as write:
            write(0, torch.zeros(2, 2, 4, 2, 2).half(), torch.zeros(2, 2, 4, 2, 2).half())
            raise KeyboardInterrupt
    assert not out.exists() and not temporaries(out)


def test_parallel_writers_of_one_cache_do_not_collide(tmp_path):
    out = tmp_path / "c"
    first, second = _cache(seed=1), _cache(seed=1)  # parallel seeds of one preset encode the same images
    with cache_writer(out, 5, (4, 2, 2), first.labels, {"k": 1}) as write_a:
        write_a(0, first.mean, first.std)
        second.save(out, {"k": 1})  # the other process finishes first and renames its folder into place
    back = LatentCache.load(out, {"k": 1})
    assert torch.equal(back.mean, second.mean) and not temporaries(out)


def test_a_killed_writers_folder_is_removed_by_the_next_one(tmp_path):
    import socket

    out = tmp_path / "c"
    dead = 2 ** 22 + 12345  # above the default pid_max of 4,194,304: no such process
    stale = tmp_path / f".c.w{dead}@{socket.gethostname()}.abc123.tmp"
    stale.mkdir()
    (stale / "mean.npy").write_bytes(b"half")
    _cache().save(out, {"k": 1})
    assert not stale.exists() and out.is_dir()


def test_cached_latents_writes_what_build_cache_computes(tmp_path):
    vae = load_vae("tiny")
    x = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    cache = cached_latents(vae, "tiny", "fake", 16, x, y, tmp_path, progress=False)
    direct = build_cache(vae, x, y, progress=False)
    assert torch.equal(cache.mean, direct.mean) and torch.equal(cache.std, direct.std)
    path = cache_path(tmp_path, cache_key("tiny", "fake", 16, 6))
    assert (path / "meta.json").is_file() and os.listdir(tmp_path) == [path.name]
    again = cached_latents(vae, "tiny", "fake", 16, x[:0], y, tmp_path, progress=False)  # read back, not encoded
    assert torch.equal(again.mean, direct.mean)


def test_the_cache_benchmark_runs_and_writes_its_rows(tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_cache.py"
    out = tmp_path / "cache.csv"
    subprocess.run([sys.executable, str(script), "--images", "40", "--batches", "3", "--out", str(out)], check=True,
                   capture_output=True, timeout=300)
    rows = list(csv.DictReader(open(out)))
    assert [r["mode"] for r in rows] == ["in memory", "memory-mapped"]
    assert all(float(r["batch_ms"]) > 0 and r["images"] == "40" for r in rows)
    assert out.with_suffix(".png").is_file()
