"""From a preset name and ``section.field=value`` overrides to a validated `RunConfig`.

`resolve(preset, overrides)` applies the overrides and validates the result, so a bad value fails
before any work starts, with a message that names the field and the fix.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from typing import Any

from ddgd.config.fields import (
    ACCUMULATE,
    AUGMENTS,
    CLASS_TABLES,
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


# Counts and sizes that must be at least 1 (0 would train, test or sample nothing), and those that may also be
# None ("all", "every channel"): `data.train_per_class=0` would otherwise mean "all" here and "none" there.
POSITIVE = {"model": ("num_timesteps",), "data": ("resolution",),
            "finetune": ("n_real", "n_gen", "batch_size", "max_steps", "epochs", "checkpoint_every"),
            "sample": ("pool", "steps", "batch_size"),
            "eval": ("image_size", "batch_size", "min_epochs", "evaluations", "epochs", "full_epochs")}
POSITIVE_OR_NONE = {"data": ("train_per_class",), "finetune": ("classes_per_phase",), "sample": ("guided_channels",),
                    "eval": ("test_limit", "epoch_classes")}


def _kinds(ftype: Any) -> list[str]:
    """The declared type of a field as words: "tuple[int, ...] | None" -> ["tuple[int, ...]", "None"]."""
    text = ftype if isinstance(ftype, str) else getattr(ftype, "__name__", str(ftype))
    return [k.strip() for k in text.split("|")]


def _fits(value: Any, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":  # an int where a float is declared: what a config written in Python often holds
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("tuple[") and kind.endswith(", ...]"):
        return isinstance(value, tuple) and all(_fits(v, kind[6:-6]) for v in value)
    return True  # a type this check does not know: left to the checks of `validate`


def shown(value: Any) -> str:
    """`value` as an override writes it (-o key=<this>): 0,1,2 for a list, true, none."""
    if isinstance(value, tuple):
        return ",".join(shown(v) for v in value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return str(value)


def _check_types(cfg: RunConfig) -> None:
    for sec in SECTIONS:
        section, default = getattr(cfg, sec), getattr(RunConfig(), sec)
        for f in fields(section):
            value, kinds = getattr(section, f.name), _kinds(f.type)
            if not any(_fits(value, k) for k in kinds):
                raise ConfigError(f"{sec}.{f.name}={value!r} is not of its type {' | '.join(kinds)}: write it "
                                  f"like -o {sec}.{f.name}={shown(getattr(default, f.name))}")
            if isinstance(value, float) and not math.isfinite(value):  # NaN is not even equal to itself
                raise ConfigError(f"{sec}.{f.name}={value} must be a finite number, e.g. "
                                  f"-o {sec}.{f.name}={shown(getattr(default, f.name))}")


def validate(cfg: RunConfig) -> RunConfig:
    """`cfg` if it can work, else a `ConfigError` naming the field and the fix, before any work starts.

    Every field holds its declared type and every float is finite (a NaN would not equal itself in the
    config.json a resumed run compares with), counts and sizes are positive, names are known ones.
    """
    from ddgd.method.memory import UPDATE_RULES  # floor 1, no cycle

    _check_types(cfg)
    ft, sm, ev = cfg.finetune, cfg.sample, cfg.eval
    if ft.method not in METHODS:
        raise ConfigError(f"finetune.method={ft.method!r} is an unknown method: choose one of {', '.join(METHODS)}")
    if ft.memory_rule is not None and ft.memory_rule not in UPDATE_RULES:
        raise ConfigError(f"finetune.memory_rule={ft.memory_rule!r} is an unknown memory rule: choose one of "
                          f"{', '.join(UPDATE_RULES)} (none: the method's own)")
    if cfg.model.dit_numerics not in DIT_NUMERICS:
        raise ConfigError(f"model.dit_numerics={cfg.model.dit_numerics!r}: choose 'original' (DiT-XL/2 from the hub) "
                          "or 'diffusers' (a model trained with diffusers' own DiT)")
    for sec, value in (("model", cfg.model.precision), ("eval", ev.precision)):
        if value not in ("fp32", "bf16"):
            raise ConfigError(f"{sec}.precision={value!r}: choose 'fp32' or 'bf16'")
    if ev.protocol not in PROTOCOLS:
        raise ConfigError(f"eval.protocol={ev.protocol!r}: choose 'reference' (IDC and Minimax) or 'legacy'")
    if ev.augment not in AUGMENTS:
        raise ConfigError(f"eval.augment={ev.augment!r}: choose one of {', '.join(AUGMENTS)}")
    for table, other in ((POSITIVE, ""), (POSITIVE_OR_NONE, ", or none (all of them)")):
        for sec, names in table.items():
            for name in names:
                value = getattr(getattr(cfg, sec), name)
                if value is not None and value <= 0:  # None in POSITIVE: eval.epochs, eval.full_epochs (the protocol's)
                    raise ConfigError(f"{sec}.{name}={value} must be a positive integer{other}, e.g. "
                                      f"-o {sec}.{name}={shown(getattr(getattr(RunConfig(), sec), name))}")
    if ev.test_resize is not None and ev.test_resize < ev.image_size:
        raise ConfigError(f"eval.test_resize={ev.test_resize} is smaller than eval.image_size={ev.image_size}: "
                          "the centre crop needs a shorter side of at least the image size (None: the image size)")
    if sm.steps > cfg.model.num_timesteps:
        raise ConfigError(f"sample.steps={sm.steps} exceeds model.num_timesteps={cfg.model.num_timesteps}: "
                          "respaced sampling takes at most one step per timestep")
    for key, value, zero in (("data.workers", cfg.data.workers, "decode in the main process"),
                             ("finetune.memory_log_every", ft.memory_log_every, "no memory log")):
        if value < 0:
            raise ConfigError(f"{key}={value} must be 0 ({zero}) or more")
    if ft.accumulate not in ACCUMULATE:
        raise ConfigError(f"finetune.accumulate={ft.accumulate!r}: choose 'once' (paper) or 'cumulative' (released code)")
    if not 0.0 <= ft.ema_decay < 1.0:
        raise ConfigError(f"finetune.ema_decay={ft.ema_decay} must lie in [0, 1)")
    for key, value in (("finetune.lambda_r", ft.lambda_r), ("finetune.lambda_g", ft.lambda_g),
                       ("finetune.lr", ft.lr), ("eval.lr", ev.lr)):
        if value < 0:
            raise ConfigError(f"{key}={value} must be a finite number >= 0 (the paper: lambda_r 0.002, lambda_g 0.008)")
    if sm.guidance <= 0:
        raise ConfigError(f"sample.guidance={sm.guidance} must be a finite number > 0 (1 disables guidance; paper: 4)")
    for key, value in (("eval.ipcs", ev.ipcs), ("eval.networks", ev.networks), ("eval.seeds", ev.seeds)):
        if not value:
            raise ConfigError(f"{key} is empty: give at least one value, e.g. -o {key}={getattr(EvalConfig(), key[5:])[0]}")
    for ipc in ev.ipcs:
        if ipc <= 0:
            raise ConfigError(f"eval.ipcs holds {ipc}: an IPC must be a positive integer")
        if ipc > sm.pool:
            raise ConfigError(f"eval.ipcs holds {ipc}, more than the {sm.pool} images generated per class: "
                              f"raise sample.pool to at least {ipc} or drop that IPC")
    from ddgd.protocol.networks import NETWORKS

    for net in ev.networks:
        if net not in NETWORKS:
            raise ConfigError(f"eval.networks holds {net!r}, an unknown network: choose from {', '.join(NETWORKS)}")
    if cfg.model.class_table not in CLASS_TABLES:
        raise ConfigError(f"model.class_table={cfg.model.class_table!r}: choose 'pretrained' (the DiT's own labels) "
                          "or 'fresh' (a new table of the dataset's classes and the null class)")
    from ddgd.protocol.data import DATASETS, check_data_root

    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"data.dataset={cfg.data.dataset!r} is an unknown dataset: choose one of "
                          f"{', '.join(DATASETS)}")
    from ddgd.protocol.imagenet import check_classes

    check_classes(cfg.data)  # an ImageNet class list: known wnids, no duplicates, a draw of 2 to 1000
    check_data_root(cfg.data)  # an image folder's train/ and val/ class folders
    return cfg


def _coerce(value: str, current: Any, ftype: Any) -> Any:
    """Parse an override string into the type of the field it replaces."""
    kinds = _kinds(ftype)
    if isinstance(current, bool) or "bool" in kinds:
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if value.lower() in ("none", "null") and "None" in kinds:
        return None
    if isinstance(current, tuple) or any(k.startswith("tuple") for k in kinds):
        inner = int if any("int" in k for k in kinds) else str
        return tuple(inner(v.strip()) for v in value.strip("[]() ").split(",") if v.strip())  # 0,1 or [0, 1]
    if isinstance(current, int) or "int" in kinds:
        return int(value)
    if isinstance(current, float) or "float" in kinds:
        return float(value)
    return value


def _typed(value: Any, ftype: Any) -> Any:
    """A value given as Python (a dict of overrides, YAML) in the form of its field: a list as a tuple, an
    int as a float where a float is declared (2 and 2.0 must hash alike), a path as a string."""
    kinds = _kinds(ftype)
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and any(k.startswith("tuple[int") for k in kinds):  # "1" or numpy's 1 means 1
        value = tuple(int(v) if isinstance(v, (str, numbers.Integral)) and not isinstance(v, bool) else v
                      for v in value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if "float" in kinds and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if "int" in kinds and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # numpy's integers too
    if "int" in kinds and isinstance(value, float) and value.is_integer():
        return int(value)  # 8.0 from YAML or a sweep means 8
    return value  # a value of another type is refused, naming the field, by `validate`


SECTIONS = tuple(f.name for f in fields(RunConfig) if dataclasses.is_dataclass(getattr(RunConfig(), f.name)))


def _pairs(overrides: Mapping[str, Any] | Iterable[str] | None) -> list[tuple[Any, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, (str, bytes)):
        raise ConfigError(f"overrides {overrides!r} must be a list of section.field=value strings or a dict")
    pairs = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.field=value")
        pairs.append(tuple(item.split("=", 1)))
    return pairs


def resolve(preset: str | RunConfig = "imagewoof",
            overrides: Mapping[str, Any] | Iterable[str] | None = None) -> RunConfig:
    """A preset with ``section.field=value`` overrides applied, validated.

    `overrides`: strings as the command line's ``-o`` takes them (``eval.ipcs=1,10``, ``eval.epochs=none``),
    or a dict whose values are such strings or Python values (``{"eval.ipcs": [1, 10]}``).
    """
    if isinstance(preset, RunConfig):
        cfg = preset
    elif isinstance(preset, str) and preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    for key, value in _pairs(overrides):
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"override key {key!r} must name a section, e.g. finetune.lambda_r")
        key = key.strip()
        sec, name = key.split(".", 1)
        if sec not in SECTIONS:  # not getattr: `__class__.x` would reach the class itself
            raise ConfigError(f"unknown config section {sec!r} in {key!r}: choose one of {', '.join(SECTIONS)}")
        section = getattr(cfg, sec)
        ftypes = {f.name: f.type for f in fields(section)}
        if name not in ftypes:
            raise ConfigError(f"unknown field {key!r}: {sec} has {', '.join(ftypes)}")
        if isinstance(value, str):
            try:
                value = _coerce(value, getattr(section, name), ftypes[name])
            except ValueError as err:
                example = shown(getattr(getattr(RunConfig(), sec), name))
                raise ConfigError(f"override {key}={value!r}: {err} (e.g. -o {key}={example})") from None
        else:
            try:
                value = _typed(value, ftypes[name])
            except ValueError as err:
                raise ConfigError(f"override {key}={value!r}: {err}") from None
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
        return cls(**{f.name: tuple(v) if isinstance(v := values[f.name], list) else v
                      for f in fields(cls) if f.name in values})

    return RunConfig(
        name=d.get("name", "custom"),
        model=build(ModelConfig, d.get("model", {})),
        data=build(DataConfig, d.get("data", {})),
        finetune=build(FinetuneConfig, d.get("finetune", {})),
        sample=build(SampleConfig, d.get("sample", {})),
        eval=build(EvalConfig, d.get("eval", {})),
    )

