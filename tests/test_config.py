"""Config hashing: what a result row's hash depends on, and what it must not depend on."""
from pathlib import Path

import pytest

from ddgd.config import PROJECT_ROOT, config_hash, resolve, shown_path
from ddgd.experiment import run_config


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
