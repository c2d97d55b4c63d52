"""Config hashing: what a result row's hash depends on, and what it must not depend on."""
from pathlib import Path

import pytest

from ddgd.config import PROJECT_ROOT, ConfigError, config_hash, resolve, shown_path
from ddgd.experiments.runs import run_config


def test_hash_is_blind_to_where_the_data_lives():
    cfg = resolve("imagewoof")
    here, there = resolve(cfg, {"data.root": "/data/imagenet"}), resolve(cfg, {"data.root": "/mnt/ilsvrc"})
    assert config_hash(here) == config_hash(there) == config_hash(cfg)
    assert config_hash(resolve(cfg, {"data.download": True})) == config_hash(cfg)
    assert config_hash(here, "data") == config_hash(cfg, "data")
    # what the data is still counts
    assert config_hash(resolve(cfg, {"data.resolution": 128})) != config_hash(cfg)
    assert config_hash(resolve(cfg, {"data.dataset": "imagenette"})) != config_hash(cfg)


@pytest.mark.parametrize("method", ["random", "full"])
def test_real_image_baselines_ignore_the_fine_tuning_settings(method):
    cfg = resolve("digits-tiny")
    other = resolve(cfg, {"finetune.lambda_r": 0.5, "sample.guidance": 2.0, "model.num_timesteps": 500})
    assert config_hash(run_config(cfg, method, 0, 2, "convnet-3")) == config_hash(run_config(other, method, 0, 2, "convnet-3"))
    assert config_hash(run_config(cfg, method, 0, 2, "convnet-3")) != config_hash(run_config(cfg, method, 1, 2, "convnet-3"))
    # a generative method's row does depend on them, and never shares a hash with a baseline's
    assert config_hash(run_config(cfg, "ddgd", 0, 2, "convnet-3")) != config_hash(run_config(other, "ddgd", 0, 2, "convnet-3"))
    assert config_hash(run_config(cfg, "ddgd", 0, 2, "convnet-3")) != config_hash(run_config(cfg, method, 0, 2, "convnet-3"))


def test_shown_path_is_relative_to_the_repository():
    assert shown_path(PROJECT_ROOT / "data" / "results" / "t.csv") == str(Path("data/results/t.csv"))
    assert shown_path("/elsewhere/t.csv") == "/elsewhere/t.csv"


def test_overrides_read_lists_with_or_without_brackets_and_name_bad_values():
    from ddgd.config import ConfigError

    assert resolve("fashion-mnist", ["eval.seeds=[0]"]).eval.seeds == (0,)
    assert resolve("fashion-mnist", ["eval.seeds=0,2"]).eval.seeds == (0, 2)
    assert resolve("fashion-mnist", ["eval.networks=[convnet-3, resnetap-10]"]).eval.networks == ("convnet-3", "resnetap-10")
    with pytest.raises(ConfigError, match="eval.seeds='one'"):
        resolve("fashion-mnist", ["eval.seeds=one"])
    with pytest.raises(ConfigError, match="finetune.lambda_r"):
        resolve("fashion-mnist", ["finetune.lambda_r=big"])


def test_preset_differences_lists_only_what_differs():
    from ddgd.config import preset_differences

    diff = preset_differences("fashion-mnist", "fashion-mnist-quick")
    assert diff["finetune.max_steps"] == [1000, 200] and diff["eval.ipcs"] == [(1, 10, 50), (10,)]
    assert "finetune.lambda_r" not in diff and "data.dataset" not in diff  # the same in both
    assert preset_differences("imagewoof", "imagewoof") == {}


@pytest.mark.parametrize("key, value, named", [
    ("sample.guidance", "nan", "sample.guidance"), ("sample.guidance", "0", "sample.guidance"),
    ("finetune.lambda_r", "-0.1", "finetune.lambda_r"), ("finetune.lambda_g", "nan", "finetune.lambda_g"),
    ("finetune.checkpoint_every", "0", "checkpoint_every"), ("eval.epochs", "0", "eval.epochs"),
    ("eval.ipcs", "[]", "eval.ipcs is empty"), ("eval.networks", "[]", "eval.networks is empty"),
    ("eval.seeds", "[]", "eval.seeds is empty"),
])
def test_values_that_make_a_run_meaningless_are_refused(key, value, named):
    with pytest.raises(ConfigError, match=named):
        resolve("digits-tiny", [f"{key}={value}"])


def test_a_training_set_smaller_than_a_batch_is_refused_before_anything_is_written(tmp_path):
    import torch

    from ddgd.method.finetune import finetune
    from ddgd.method.latents import LatentCache

    cache = LatentCache(torch.zeros(3, 2, 4, 4, 4).half(), torch.ones(3, 2, 4, 4, 4).half(), torch.arange(3))
    with pytest.raises(ValueError, match="fewer than one batch of 8"):
        finetune(resolve("digits-tiny"), cache, list(range(10)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
