"""Frozen configuration of every stage, with the paper's values as defaults.

* `fields`: one frozen dataclass per stage (model, data, fine-tuning, sampling, evaluation), bundled
  in a `RunConfig`; the defaults are the paper's values (book page: The method).
* `presets`: `PRESETS`, named complete configurations (the three ImageNet subsets at paper scale,
  an image folder of one's own and CIFAR-10/100 for a GPU, the CPU presets on Fashion-MNIST and
  sklearn's digits).
* `resolve`: ``section.field=value`` overrides applied to a preset and validated, so a bad value
  fails before any work starts.
* `hashing`: the config hash of every result row, and `save_config`, which writes the resolved
  config beside every artefact.
"""
from ddgd.config.fields import (ACCUMULATE, DIT_NUMERICS, IN_CHECKOUT, METHOD_RULES, METHODS, PROJECT_ROOT, PROTOCOLS,
                                DataConfig, EvalConfig, FinetuneConfig, ModelConfig, RunConfig, SampleConfig,
                                project_path, shown_path)
from ddgd.config.hashing import (ADDED_FIELDS, FINETUNE_STAGES, LOCATION_FIELDS, RUNTIME_FIELDS, SAMPLE_STAGES,
                                 config_hash, save_config)
from ddgd.config.presets import PRESETS
from ddgd.config.resolve import ConfigError, from_dict, preset_differences, resolve, to_dict, validate

__all__ = ["ACCUMULATE", "ADDED_FIELDS", "DIT_NUMERICS", "IN_CHECKOUT", "FINETUNE_STAGES", "LOCATION_FIELDS", "METHODS",
           "METHOD_RULES", "PRESETS", "PROJECT_ROOT", "PROTOCOLS", "RUNTIME_FIELDS", "SAMPLE_STAGES", "ConfigError",
           "DataConfig", "EvalConfig", "FinetuneConfig", "ModelConfig", "RunConfig", "SampleConfig", "config_hash",
           "from_dict", "preset_differences", "project_path", "resolve", "save_config", "shown_path", "to_dict",
           "validate"]
