"""The FLOP cost model (ddgd.experiments.costs): counts against hand-computed ones, and the bookkeeping of a run."""
import pytest

from ddgd.experiments import costs
from ddgd.config import resolve


def test_a_convnet_forward_counts_its_multiply_adds_twice():
    # ConvNet-3 at 32 px, RGB, 10 classes: 2 x (3*9*128*32^2 + 128*9*128*16^2 + 128*9*128*8^2 + 2048*10)
    expected = 2 * (3 * 9 * 128 * 32 ** 2 + 128 * 9 * 128 * 16 ** 2 + 128 * 9 * 128 * 8 ** 2 + 128 * 4 * 4 * 10)
    flops = costs.network_flops("convnet-3", 32)
    assert flops["test_image"] == expected
    assert 2 * expected <= flops["train_image"] <= 3 * expected  # backward: input and weight gradients


def test_dit_xl2_counts_match_its_published_size():
    # DiT-XL/2 at 256 px: 118.6 GFLOPs (multiply-adds) per forward pass (Peebles & Xie 2023, Table 4)
    flops = costs.dit_flops(batch=8, steps=50)
    per_forward = flops["sample_image"] / 50 / 2
    assert per_forward / 2 / 1e9 == pytest.approx(118.6, rel=0.01)
    # DiffFit: the backward pass computes input gradients everywhere but few weight gradients
    assert 1.8 < flops["finetune_step"] / (8 * per_forward) < 2.3


def test_experiment_flops_adds_up_a_run():
    cfg = resolve("imagewoof", {"eval.networks": ["convnet-6"], "eval.ipcs": [10], "eval.seeds": [0],
                                "finetune.max_steps": 100, "sample.pool": 10})
    unit = {"finetune_step": 1.0, "sample_image": 10.0, "vae_encode_image": 0.5, "vae_decode_image": 2.0,
            "convnet-6 train_image": 3.0, "convnet-6 test_image": 1.0}
    out = costs.experiment_flops(cfg, ["dit", "ddgd", "random"], unit)
    assert out["fine-tuning"] == 100 * 1.0  # one method fine-tunes, one seed, 100 steps
    assert out["latent cache"] == 10 * costs.REAL_PER_CLASS * 0.5
    assert out["sampling"] == 2 * 10 * 10 * (10.0 + 2.0)  # dit and ddgd pools of 10 per class
    # three sets (dit, ddgd, random) x (2000 epochs x 100 images x 3 + 100 tests x 500 images x 1)
    assert out["evaluation"] == 3 * (2000 * 100 * 3.0 + 100 * 500 * 1.0)
    assert costs.gpu_hours(3600 * 989.4e12 * 0.5, "H100 SXM", "bf16", 0.5) == pytest.approx(1.0)


def test_the_gpu_check_script_runs_on_the_cpu(tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "gpu.csv"
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_gpu.py"
    subprocess.run([sys.executable, str(script), "--device", "cpu", "--smoke", "--switches", "fp32",
                    "--out", str(out)], check=True, capture_output=True, timeout=600)
    rows = list(csv.DictReader(open(out)))
    assert {r["stage"] for r in rows} == {"finetune_step", "sample", "vae_decode", "eval_train_step"}
    assert all(float(r["tflops_per_s"]) > 0 and r["smoke"] == "True" for r in rows)
