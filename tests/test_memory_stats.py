"""The memories' diversity during fine-tuning (ddgd.method.memory_stats): exact values, the log of a run."""
import csv
import math
from dataclasses import replace

import pytest
import torch

from ddgd.config import PRESETS, ConfigError, config_hash, resolve
from ddgd.method.finetune import finetune
from ddgd.method.latents import LatentCache
from ddgd.method.memory import ClassMemories
from ddgd.method.memory_stats import LOG_COLUMNS, mean_pairwise_cosine, memory_log, vendi_score


def test_mean_pairwise_cosine_by_hand():
    # e1, e2, (e1 + e2)/|.|: cosines e1.e2 = 0, e1.u = e2.u = 1/sqrt(2); mean over the 3 pairs = sqrt(2)/3
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    assert mean_pairwise_cosine(items) == pytest.approx(math.sqrt(2) / 3, abs=1e-15)
    assert math.isnan(mean_pairwise_cosine(items[:1]))  # no pair


def test_vendi_score_by_hand():
    # n orthogonal items: S = I, eigenvalues of S/n all 1/n, entropy log n, score n
    assert vendi_score(torch.eye(4) * 7) == pytest.approx(4.0, abs=1e-12)
    # n copies of one item: S = 11^T, one eigenvalue 1, entropy 0, score 1
    assert vendi_score(torch.ones(5, 3)) == pytest.approx(1.0, abs=1e-12)
    # two items at cosine c: eigenvalues (1 + c)/2 and (1 - c)/2
    c = 0.6
    p = torch.tensor([(1 + c) / 2, (1 - c) / 2], dtype=torch.float64)
    items = torch.tensor([[1.0, 0.0], [c, math.sqrt(1 - c * c)]], dtype=torch.float64)  # exact cosine c
    assert vendi_score(items) == pytest.approx(float(torch.exp(-(p * p.log()).sum())), abs=1e-12)


def test_vendi_score_is_the_packages():
    vendi = pytest.importorskip("vendi_score.vendi")
    x = torch.randn(12, 30, generator=torch.Generator().manual_seed(0))
    u = torch.nn.functional.normalize(x.double(), dim=1)
    assert vendi_score(x) == pytest.approx(float(vendi.score_K((u @ u.T).numpy())), rel=1e-10)


def test_memory_log_rows_follow_the_memories():
    mem = ClassMemories(2, 2, "adaptive")
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mem.update(torch.tensor([0, 0, 0]), z, z)  # the rule keeps e1, e2 (largest s: the diagonal item)
    rows = memory_log(mem, step=7)
    assert [(r["step"], r["class"], r["memory"], r["items"]) for r in rows] == [(7, 0, "real", 2), (7, 0, "gen", 2)]
    assert rows[0]["mean_cos"] == pytest.approx(0.0, abs=1e-15) and rows[0]["vendi"] == pytest.approx(2.0)
    assert set(rows[0]) == set(LOG_COLUMNS)


def test_a_run_logs_its_memories_every_k_steps(tmp_path):
    cfg = PRESETS["digits-tiny"]
    cfg = replace(cfg, finetune=replace(cfg.finetune, memory_log_every=2))
    g = torch.Generator().manual_seed(0)
    cache = LatentCache(torch.randn(48, 2, 4, 4, 4, generator=g).half(), torch.full((48, 2, 4, 4, 4), 0.1).half(),
                        torch.arange(48) % 10)
    run = finetune(cfg, cache, list(range(10)), tmp_path / "run", progress=False)
    with open(run / "memory_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted({int(r["step"]) for r in rows}) == [2, 4, 6]  # 6 steps, every 2nd
    assert {r["memory"] for r in rows} == {"real", "gen"}
    assert all(1 <= int(r["items"]) <= cfg.finetune.n_real for r in rows)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert len(ckpt["memory_log"]) == len(rows)


def test_the_log_interval_is_not_hashed_and_is_checked():
    cfg = PRESETS["digits-tiny"]
    assert config_hash(resolve(cfg, {"finetune.memory_log_every": 0})) == config_hash(cfg)
    with pytest.raises(ConfigError, match="memory_log_every=-1 must be 0"):
        resolve(cfg, {"finetune.memory_log_every": -1})
