"""Properties of the config parser and validator (`resolve`, `validate`), stated over every preset and field.

An override is either accepted or refused with a `ConfigError` that names the field; whatever is
accepted validates again, survives the JSON round trip of config.json equal and with the same hash,
and reads back exactly the value that was written. Hypothesis draws the values, derandomized and
without a database, so every run checks the same examples.
"""
from __future__ import annotations

import json
import math
from dataclasses import fields, replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ddgd.config import PRESETS, ConfigError, RunConfig, config_hash, from_dict, resolve, to_dict, validate

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

SECTIONS = ("model", "data", "finetune", "sample", "eval")
FIELDS = {f"{sec}.{f.name}": f.type for sec in SECTIONS for f in fields(getattr(RunConfig(), sec))}
KEYS = sorted(FIELDS)


def kinds(key: str) -> list[str]:
    """The declared type of a field as words: "int | None" -> ["int", "None"] (the annotations are strings)."""
    return [k.strip() for k in str(FIELDS[key]).split("|")]


def base(key: str) -> str:
    return next(k for k in kinds(key) if k != "None")


def written(value) -> str:
    """`value` as the command line's -o takes it (`ddgd run --help`: -o eval.ipcs=1,10): none, true, 0,1."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(written(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def value_of(cfg: RunConfig, key: str):
    sec, name = key.split(".")
    return getattr(getattr(cfg, sec), name)


def fits(value, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind.startswith("tuple["):
        return isinstance(value, tuple) and all(fits(v, kind[6:-6]) for v in value)
    if kind in ("int", "float"):
        return type(value) is {"int": int, "float": float}[kind]  # not a bool, not an int where floats go
    return type(value) is {"bool": bool, "str": str}[kind]


def accepted_again(cfg: RunConfig) -> None:
    """What every accepted config satisfies: typed as declared, valid, and equal after config.json's round trip."""
    for key in KEYS:
        assert any(fits(value_of(cfg, key), k) for k in kinds(key)), (key, value_of(cfg, key))
        if isinstance(value_of(cfg, key), float):
            assert math.isfinite(value_of(cfg, key)), key  # NaN would not even equal itself after a reload
    assert validate(cfg) is cfg
    back = from_dict(json.loads(json.dumps(to_dict(cfg))))  # what save_config writes and a resumed run reads
    assert back == cfg and resolve(back) == cfg
    assert config_hash(back) == config_hash(cfg)
    assert all(config_hash(back, sec) == config_hash(cfg, sec) for sec in SECTIONS)


# ----------------------------------------------------------------------- every preset, every field
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_valid_and_every_field_reads_back_as_written(preset):
    cfg = resolve(preset)
    assert cfg == PRESETS[preset]
    accepted_again(cfg)
    for key in KEYS:
        current = value_of(cfg, key)
        assert resolve(preset, [f"{key}={written(current)}"]) == cfg, key  # the command line's spelling
        assert resolve(preset, {key: current}) == cfg, key  # a dict of Python values (notebooks, YAML)
        if isinstance(current, tuple):
            assert resolve(preset, [f"{key}=[{', '.join(written(v) for v in current)}]"]) == cfg, key
    assert config_hash(resolve(preset, [f"{k}={written(value_of(cfg, k))}" for k in KEYS])) == config_hash(cfg)


# ------------------------------------------------------------------------- values of each field's type
_WORD = st.text(st.characters(blacklist_characters=",[]() \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0",
                              blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=12)
_WORD = _WORD.filter(lambda w: w.lower() not in ("none", "null"))  # those mean None in an optional field
_OF_KIND = {
    "bool": st.booleans(),
    "int": st.integers(-10**12, 10**12),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "str": st.text(max_size=20).filter(lambda s: s.lower() not in ("none", "null")),
    "tuple[int, ...]": st.lists(st.integers(-10**6, 10**6), max_size=4).map(tuple),
    "tuple[str, ...]": st.lists(_WORD, max_size=4).map(tuple),
}


def values_of(key: str):
    strategy = _OF_KIND[base(key)]
    return st.one_of(st.none(), strategy) if "None" in kinds(key) else strategy


@st.composite
def field_values(draw):
    preset, key = draw(st.sampled_from(sorted(PRESETS))), draw(st.sampled_from(KEYS))
    return preset, key, draw(values_of(key))


def resolved(preset, overrides):
    """The resolved config, or the ConfigError that refused it; any other exception is a failure."""
    try:
        return resolve(preset, overrides)
    except ConfigError as err:
        return err


@PROPERTY
@given(field_values())
@example(("digits-tiny", "eval.momentum", float("nan")))  # NaN went through and broke the reload's equality
@example(("digits-tiny", "eval.test_limit", 0))  # 0 meant "all" to load_data and "none" to the evaluation
@example(("imagewoof", "sample.guided_channels", None))
def test_a_written_value_reads_back_exactly_or_is_refused_naming_the_field(case):
    preset, key, value = case
    for out in (resolved(preset, [f"{key}={written(value)}"]), resolved(preset, {key: value})):
        if isinstance(out, ConfigError):
            assert key in str(out), out
            continue
        got = value_of(out, key)
        assert got == value and type(got) is (float if base(key) == "float" and value is not None else type(value))
        assert replace(out, **{key.split(".")[0]: getattr(PRESETS[preset], key.split(".")[0])}) == \
            replace(PRESETS[preset]), "another field changed"  # only this field moved
        accepted_again(out)


@PROPERTY
@given(st.sampled_from(sorted(PRESETS)), st.sampled_from(KEYS),
       st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(), st.text(max_size=12),
                 st.lists(st.one_of(st.integers(-3, 100), st.text(max_size=6)), max_size=3)))
@example("digits-tiny", "finetune.n_real", None)  # was a TypeError from validate
@example("digits-tiny", "eval.ipcs", 5)  # was a TypeError: 'int' object is not iterable
@example("digits-tiny", "sample.guidance", 2)  # was stored as int 2, hashed unlike -o sample.guidance=2
def test_a_python_value_is_typed_as_declared_and_hashes_like_its_string(preset, key, value):
    out = resolved(preset, {key: value})
    if isinstance(out, ConfigError):
        assert key in str(out), out
        return
    accepted_again(out)
    spelled = resolved(preset, [f"{key}={written(tuple(value) if isinstance(value, list) else value)}"])
    if not isinstance(spelled, ConfigError):
        assert spelled == out and config_hash(spelled) == config_hash(out)


# --------------------------------------------------------------------------------- any text at all
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@PROPERTY
@given(st.one_of(st.sampled_from(KEYS), _TEXT, st.sampled_from(["__class__.name", "__class__.model", ".x",
                                                                  "eval.__dataclass_fields__", "finetune.rule"])),
       st.one_of(_TEXT, st.sampled_from(["", "none", "nan", "-inf", "1e400", "[]", "[1,,2]", "0", "-1", "9" * 5000,
                                         "true", "yes", "1.5", "0x10", "1_000", "[convnet-3]"])))
@example("__class__.name", "x")  # was a TypeError from dataclasses.replace on the class
@example("__class__.model", "x")  # was an AttributeError
def test_any_override_string_is_accepted_or_refused_with_a_config_error(key, value):
    out = resolved("digits-tiny", [f"{key}={value}"])
    if isinstance(out, ConfigError):
        assert key.strip() not in FIELDS or key.strip() in str(out), out
    else:
        accepted_again(out)


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(_TEXT, st.integers(-2, 60).map(str))), max_size=6))
def test_several_overrides_together_are_accepted_or_refused_with_a_config_error(pairs):
    out = resolved("fashion-mnist-quick", [f"{k}={v}" for k, v in pairs])
    if not isinstance(out, ConfigError):
        accepted_again(out)
        assert out == resolved(resolved("fashion-mnist-quick", [f"{k}={v}" for k, v in pairs[:1]]),
                               [f"{k}={v}" for k, v in pairs[1:]])  # applied in turn: the same config


@pytest.mark.parametrize("overrides", ["finetune.lr=1", ("finetune.lr",), [1], {1: 2}, {"lr": 1}])
def test_malformed_override_containers_are_refused_with_a_config_error(overrides):
    with pytest.raises(ConfigError):
        resolve("digits-tiny", overrides)


# ------------------------------------------------------------------ what the validator is meant to refuse
_NOT_POSITIVE_FLOAT = st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf, -math.inf]))
_NEGATIVE_FLOAT = st.one_of(st.floats(max_value=-math.ulp(0.0)),  # below -0.0, which counts as 0
                            st.sampled_from([math.nan, math.inf, -math.inf]))
_REFUSED = {
    "sample.guidance": _NOT_POSITIVE_FLOAT,
    **{key: _NEGATIVE_FLOAT for key in ("finetune.lambda_r", "finetune.lambda_g", "finetune.lr", "eval.lr")},
    **{key: st.integers(-10**6, 0) for key in (
        "finetune.checkpoint_every", "finetune.epochs", "finetune.max_steps", "finetune.batch_size",
        "finetune.n_real", "finetune.n_gen", "eval.epochs", "eval.full_epochs", "eval.evaluations",
        "eval.min_epochs", "eval.batch_size", "sample.pool", "sample.steps", "sample.batch_size")},
    **{key: st.sampled_from(["", "[]", "()", " , ", "[ ]"]) for key in ("eval.ipcs", "eval.networks", "eval.seeds")},
}


@PROPERTY
@given(st.sampled_from(sorted(PRESETS)), st.sampled_from(sorted(_REFUSED)).flatmap(
    lambda key: st.tuples(st.just(key), _REFUSED[key])))
def test_values_that_make_a_run_meaningless_are_always_refused_naming_the_field(preset, case):
    key, value = case
    text = value if isinstance(value, str) else written(value)
    for overrides in ([f"{key}={text}"], {key: value if not isinstance(value, str) else text}):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            resolve(preset, overrides)
