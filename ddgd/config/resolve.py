"""From a preset name and ``section.field=value`` overrides to a validated `RunConfig`.

`resolve(preset, overrides)` applies the overrides and validates the result, so a bad value fails
before any work starts, with a message that names the field and the fix.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import fields, replace
from typing import Any

from ddgd.config.fields import (
    ACCUMULATE,
    DIT_NUMERICS,
    METHODS,
    PROTOCOLS,
    DataConfig,
    EvalConfig,
    FinetuneConfig,
    ModelConfig,
    RunConfig,
    SampleConfig,
)
from ddgd.config.presets import PRESETS


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the field and the fix."""


def validate(cfg: RunConfig) -> RunConfig:
    from ddgd.method.memory import UPDATE_RULES  # floor 1, no cycle

    ft, sm, ev = cfg.finetune, cfg.sample, cfg.eval
    if ft.method not in METHODS:
        raise ConfigError(f"unknown method {ft.method!r}: choose one of {', '.join(METHODS)}")
    if ft.memory_rule is not None and ft.memory_rule not in UPDATE_RULES:
        raise ConfigError(f"unknown memory rule {ft.memory_rule!r}: choose one of {', '.join(UPDATE_RULES)}")
    if cfg.model.dit_numerics not in DIT_NUMERICS:
        raise ConfigError(f"model.dit_numerics={cfg.model.dit_numerics!r}: choose 'original' (DiT-XL/2 from the hub) "
                          "or 'diffusers' (a model trained with diffusers' own DiT)")
    for sec, value in (("model", cfg.model.precision), ("eval", ev.precision)):
        if value not in ("fp32", "bf16"):
            raise ConfigError(f"{sec}.precision={value!r}: choose 'fp32' or 'bf16'")
    if ev.protocol not in PROTOCOLS:
        raise ConfigError(f"eval.protocol={ev.protocol!r}: choose 'reference' (IDC and Minimax) or 'legacy'")
    if ev.test_resize is not None and ev.test_resize < ev.image_size:
        raise ConfigError(f"eval.test_resize={ev.test_resize} is smaller than eval.image_size={ev.image_size}: "
                          "the centre crop needs a shorter side of at least the image size (None: the image size)")
    if cfg.data.workers < 0:
        raise ConfigError(f"data.workers={cfg.data.workers} must be 0 (decode in the main process) or more")
    if ft.accumulate not in ACCUMULATE:
        raise ConfigError(f"finetune.accumulate={ft.accumulate!r}: choose 'once' (paper) or 'cumulative' (released code)")
    for name in ("n_real", "n_gen", "batch_size", "max_steps", "epochs"):
        if getattr(ft, name) <= 0:
            raise ConfigError(f"finetune.{name}={getattr(ft, name)} must be a positive integer")
    if not 0.0 <= ft.ema_decay < 1.0:
        raise ConfigError(f"finetune.ema_decay={ft.ema_decay} must lie in [0, 1)")
    for key, value in (("finetune.lambda_r", ft.lambda_r), ("finetune.lambda_g", ft.lambda_g),
                       ("finetune.lr", ft.lr), ("eval.lr", ev.lr)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{key}={value} must be a finite number >= 0 (the paper: lambda_r 0.002, lambda_g 0.008)")
    if not math.isfinite(sm.guidance) or sm.guidance <= 0:
        raise ConfigError(f"sample.guidance={sm.guidance} must be a finite number > 0 (1 disables guidance; paper: 4)")
    if ft.checkpoint_every <= 0:
        raise ConfigError(f"finetune.checkpoint_every={ft.checkpoint_every} must be a positive number of steps")
    for key, value in (("eval.epochs", ev.epochs), ("eval.full_epochs", ev.full_epochs)):
        if value is not None and value <= 0:
            raise ConfigError(f"{key}={value} must be a positive integer (None: the protocol's epochs)")
    for key, value in (("eval.ipcs", ev.ipcs), ("eval.networks", ev.networks), ("eval.seeds", ev.seeds)):
        if not value:
            raise ConfigError(f"{key} is empty: give at least one value, e.g. -o {key}={getattr(EvalConfig(), key[5:])[0]}")
    if sm.pool <= 0 or sm.steps <= 0 or sm.batch_size <= 0:
        raise ConfigError("sample.pool, sample.steps and sample.batch_size must be positive integers")
    for ipc in ev.ipcs:
        if ipc <= 0:
            raise ConfigError(f"eval.ipcs holds {ipc}: an IPC must be a positive integer")
        if ipc > sm.pool:
            raise ConfigError(f"eval.ipcs holds {ipc}, more than the {sm.pool} images generated per class: "
                              f"raise sample.pool to at least {ipc} or drop that IPC")
    from ddgd.protocol.networks import NETWORKS

    for net in ev.networks:
        if net not in NETWORKS:
            raise ConfigError(f"unknown network {net!r}: choose one of {', '.join(NETWORKS)}")
    from ddgd.protocol.data import DATASETS

    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.data.dataset!r}: choose one of {', '.join(DATASETS)}")
    return cfg


def _coerce(value: str, current: Any, ftype: Any) -> Any:
    """Parse an override string into the type of the field it replaces."""
    text = str(ftype)
    if isinstance(current, bool) or text == "bool":
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ConfigError(f"expected true or false, got {value!r}")
    if value.lower() in ("none", "null") and "None" in text:
        return None
    if isinstance(current, tuple) or "tuple" in text:
        inner = int if "int" in text else str
        return tuple(inner(v.strip()) for v in value.strip("[]() ").split(",") if v.strip())  # 0,1 or [0, 1]
    if isinstance(current, int) or text.startswith("int"):
        return int(value)
    if isinstance(current, float) or text.startswith("float"):
        return float(value)
    return value


def resolve(preset: str | RunConfig = "imagewoof", overrides: dict[str, Any] | list[str] | None = None) -> RunConfig:
    """A preset with ``section.field=value`` overrides applied, validated."""
    if isinstance(preset, RunConfig):
        cfg = preset
    elif preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if isinstance(overrides, list):
        pairs = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form section.field=value")
            key, value = item.split("=", 1)
            pairs.append((key, value))
        overrides = dict(pairs)
    for key, value in (overrides or {}).items():
        if "." not in key:
            raise ConfigError(f"override key {key!r} must name a section, e.g. finetune.lambda_r")
        sec, name = key.split(".", 1)
        section = getattr(cfg, sec, None)
        if not dataclasses.is_dataclass(section):
            raise ConfigError(f"unknown config section {sec!r}: choose one of model, data, finetune, sample, eval")
        ftypes = {f.name: f.type for f in fields(section)}
        if name not in ftypes:
            raise ConfigError(f"unknown field {key!r}: {sec} has {', '.join(ftypes)}")
        if isinstance(value, str):
            try:
                value = _coerce(value, getattr(section, name), ftypes[name])
            except ValueError as err:
                raise ConfigError(f"override {key}={value!r}: {err} (a list is written 0,1,2)") from None
        elif isinstance(value, list):
            value = tuple(value)
        cfg = replace(cfg, **{sec: replace(section, **{name: value})})
    return validate(cfg)


def to_dict(cfg: RunConfig) -> dict:
    return dataclasses.asdict(cfg)


def preset_differences(*names: str) -> dict[str, list]:
    """`section.field` -> the value in each named preset, for every field where the presets differ.

    What the CPU presets change against the paper's (`preset_differences("imagewoof", "fashion-mnist")`),
    read from the presets themselves so that the book's list of scale-downs cannot drift from the code.
    """
    flat = [{f"{sec}.{k}": v for sec, fields_ in to_dict(resolve(n)).items() if isinstance(fields_, dict)
             for k, v in fields_.items()} for n in names]
    return {key: [f[key] for f in flat] for key in flat[0] if len({repr(f[key]) for f in flat}) > 1}


def from_dict(d: dict) -> RunConfig:
    def build(cls, values):
        kw = {}
        for f in fields(cls):
            if f.name in values:
                v = values[f.name]
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)

    return RunConfig(
        name=d.get("name", "custom"),
        model=build(ModelConfig, d.get("model", {})),
        data=build(DataConfig, d.get("data", {})),
        finetune=build(FinetuneConfig, d.get("finetune", {})),
        sample=build(SampleConfig, d.get("sample", {})),
        eval=build(EvalConfig, d.get("eval", {})),
    )

