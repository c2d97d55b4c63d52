"""Frozen configuration of every stage, with the paper's values as defaults.

Each stage (model, data, fine-tuning, sampling, evaluation) has one frozen dataclass. A
`RunConfig` bundles them; `PRESETS` names complete configurations: the three ImageNet subsets at
paper scale (book page: The method) and the CPU presets on Fashion-MNIST and sklearn's digits.
`resolve(preset, overrides)` applies ``section.field=value`` overrides and validates the result,
so a bad value fails before any work starts. The resolved config is saved beside every artefact
(`save_config`) and hashed into every result row (`config_hash`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# The repository root: shipped data (data/) and committed results (data/results/) live under it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_path(path: str | Path) -> Path:
    """`path` as given when absolute or present from here, else relative to the repository root.

    Notebooks run in notebooks/, the CLI wherever it is called; both name files relative to the root.
    """
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return PROJECT_ROOT / p


def shown_path(path: str | Path) -> str:
    """`path` relative to the repository root when it lies inside it: what pages and logs print."""
    p = Path(path).resolve()
    return str(p.relative_to(PROJECT_ROOT)) if p.is_relative_to(PROJECT_ROOT) else str(path)


METHODS = ("dit", "finetune", "minimax", "ddgd")
# The one word that separates Minimax from DDGD: the memory update rule (book page: The method).
METHOD_RULES = {"minimax": "fifo", "ddgd": "adaptive"}
ACCUMULATE = ("once", "cumulative")
PROTOCOLS = ("reference", "legacy")
DIT_NUMERICS = ("original", "diffusers")


@dataclass(frozen=True)
class ModelConfig:
    """Where the pretrained latent diffusion model comes from (hub id, local folder or small config)."""

    dit: str = "facebook/DiT-XL-2-256"  # hub id or folder; a hub id reads the `transformer` subfolder
    vae_encode: str = "stabilityai/sd-vae-ft-ema"  # the encoder choice does not matter for training
    vae_decode: str = "stabilityai/sd-vae-ft-mse"
    num_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    # "original": correct diffusers' DiT to the numerics DiT-XL/2 was trained with (timestep
    # frequencies over half, LayerNorm eps 1e-6 before the MLP); "diffusers": keep diffusers' own,
    # for models trained in diffusers (the embedded Fashion-MNIST model). Book page: deviations.
    dit_numerics: str = "original"
    # GPU execution switches (ddgd.base.accel): bf16 autocast of the DiT and the VAE, TF32, compiling the
    # DiT, deterministic kernels. The paper presets turn on TF32; bf16 stays one override away.
    precision: str = "fp32"
    tf32: bool = False
    compile: bool = False
    deterministic: bool = False


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "imagewoof"  # imagewoof | imagenette | imageidc | fashion-mnist | digits
    root: str | None = None  # ImageNet root with train/ and val/ wnid folders, or Fashion-MNIST files
    resolution: int = 256  # resolution the diffusion model sees (ADM centre crop for ImageNet)
    download: bool = False  # Fashion-MNIST only: allow torchvision's download
    # fine-tune on the first N training images per class (file order for ImageNet: Minimax's
    # --finetune-ipc); None: all of them
    train_per_class: int | None = None
    workers: int = 8  # DataLoader worker processes that decode ImageNet JPEGs (0: in the main process)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning (book page: The method). `method` picks the baseline or the memory rule."""

    method: str = "ddgd"  # dit | finetune | minimax | ddgd
    memory_rule: str | None = None  # None: the method's rule (fifo for minimax, adaptive for ddgd)
    lambda_r: float = 0.002
    lambda_g: float = 0.008
    n_real: int = 64  # N_R
    n_gen: int = 64  # N_G
    accumulate: str = "once"  # "once" (paper) | "cumulative" (released code)
    use_vb: bool = True  # train DiT's variance head with improved DDPM's L_vb (released code)
    class_dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8
    epochs: int = 8
    max_steps: int = 12000  # the released code's checkpoint step
    ema_decay: float = 0.9999
    difffit: bool = True  # train the DiffFit selection; False trains every parameter
    bitfit: bool = False  # train the biases only (BitFit, Minimax's is_bitfit); takes precedence over difffit
    checkpoint_every: int = 1000
    seed: int = 0

    @property
    def rule(self) -> str | None:
        """The memory update rule actually used, or None when no memory terms are trained."""
        if self.method in ("dit", "finetune"):
            return None
        return self.memory_rule or METHOD_RULES[self.method]


@dataclass(frozen=True)
class SampleConfig:
    pool: int = 100  # images generated per class; IPC k uses the first k (a prefix)
    steps: int = 50  # respaced ancestral DDPM steps
    guidance: float = 4.0  # classifier-free guidance scale; 1.0 disables guidance
    guided_channels: int | None = 3  # DiT quirk: guidance on the first 3 eps channels; None: all
    batch_size: int = 50
    seed: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """The hard-label protocol of IDC and Minimax (book page: Parity with the reference code)."""

    networks: tuple[str, ...] = ("convnet-6", "resnetap-10", "resnet-18")
    ipcs: tuple[int, ...] = (10, 20, 50)
    image_size: int = 224
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    epochs: int | None = None  # None: by IPC (book page: Parity with the reference code); an int overrides
    epoch_scale: float = 1.0  # CPU presets train for a fraction of the protocol's epochs
    min_epochs: int = 1
    evaluations: int = 100  # test-set evaluations, every E/100 epochs as in Minimax (best is over these)
    cutmix_beta: float = 1.0
    colour_jitter: float = 0.4
    lighting: float = 0.1
    crop_scale: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    compile: bool = False  # torch.compile the network (pays off on long CPU runs)
    precision: str = "fp32"  # "bf16": autocast the evaluation networks (ddgd.base.accel)
    channels_last: bool = False  # NHWC layout for the networks and their batches (GPU convolutions)
    test_limit: int | None = None  # evaluate on the first N test images only (smoke runs)
    full_epochs: int | None = None  # epochs of the `full` baseline; None: the protocol's 300 x epoch_scale
    # "reference": the networks, augmentation and normalisation of IDC's and Minimax's code (book page
    # "Parity with the reference code"); "legacy": this package's 0.1 protocol, which the committed CPU
    # results were computed with (kept so that they stay reproducible).
    protocol: str = "reference"
    test_resize: int | None = None  # test images: shorter side resized to this, then centre crop; None: image_size (Minimax), 256: IDC


@dataclass(frozen=True)
class RunConfig:
    name: str = "imagewoof"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _fashion(name: str, **sections: dict) -> RunConfig:
    """The embedded CPU default: our own small latent DiT pretrained on Fashion-MNIST (shipped in data/).

    Scaled down from the paper for 2 CPU cores (every change is listed on the book's deviations
    page): a fine-tuning step budget instead of 8 epochs, with the EMA decay scaled to it; a pool of
    50 images per class; ConvNet-3 and a half-width ResNetAP-10 at 32 px trained for a fraction of
    the protocol's epochs and tested twice (halfway and at the end) instead of 10 times; the `full`
    baseline for one epoch.
    """
    base = RunConfig(
        name=name,
        model=ModelConfig(dit="data/fashion-ldm/transformer", vae_encode="data/fashion-ldm/vae",
                          vae_decode="data/fashion-ldm/vae", dit_numerics="diffusers"),
        data=DataConfig(dataset="fashion-mnist", resolution=32),
        finetune=FinetuneConfig(batch_size=8, epochs=1, max_steps=1000, ema_decay=0.995, checkpoint_every=250),
        sample=SampleConfig(pool=50, steps=50, batch_size=250),
        eval=EvalConfig(networks=("convnet-3", "resnetap-10-w32"), ipcs=(1, 10, 50), image_size=32,
                        epoch_scale=0.04, evaluations=2, compile=True, full_epochs=1, protocol="legacy"),
    )
    return _apply(base, sections)


def _apply(cfg: RunConfig, sections: dict[str, dict]) -> RunConfig:
    for sec, values in sections.items():
        cfg = replace(cfg, **{sec: replace(getattr(cfg, sec), **values)})
    return cfg


# The quick CPU scale: what the book's tables and figures run (IPC 10, ConvNet-3, minutes per run).
# One seed by default (every method in minutes; README runs it as two processes); the book's pages
# ask for two or three seeds (`eval.seeds`), which does not change a row's hash.
_QUICK = dict(
    finetune={"max_steps": 200, "ema_decay": 0.98, "checkpoint_every": 100},
    sample={"pool": 10, "batch_size": 100},
    eval={"networks": ("convnet-3",), "ipcs": (10,), "seeds": (0,), "epoch_scale": 0.05, "evaluations": 4},
)

# Paper scale on a GPU: TF32 matmuls are safe for training and sampling on an A100/H100.
_PAPER_MODEL = ModelConfig(tf32=True)

PRESETS: dict[str, RunConfig] = {
    "imagewoof": RunConfig(name="imagewoof", model=_PAPER_MODEL),
    "imagenette": RunConfig(name="imagenette", model=_PAPER_MODEL, data=DataConfig(dataset="imagenette")),
    "imageidc": RunConfig(name="imageidc", model=_PAPER_MODEL, data=DataConfig(dataset="imageidc")),
    "fashion-mnist": _fashion("fashion-mnist"),
    "fashion-mnist-quick": _fashion("fashion-mnist-quick", **_QUICK),
    # A seconds-long end-to-end configuration on sklearn's 8x8 digits, for tests and smoke runs.
    "digits-tiny": RunConfig(
        name="digits-tiny",
        model=ModelConfig(dit="tiny", vae_encode="tiny", vae_decode="tiny", dit_numerics="diffusers"),
        data=DataConfig(dataset="digits", resolution=16),
        finetune=FinetuneConfig(batch_size=8, epochs=1, max_steps=6, n_real=4, n_gen=4, ema_decay=0.9,
                                checkpoint_every=3),
        sample=SampleConfig(pool=4, steps=5, batch_size=16),
        eval=EvalConfig(networks=("convnet-3",), ipcs=(2,), image_size=16, epochs=2, evaluations=2,
                        seeds=(0,), batch_size=16, full_epochs=1, protocol="legacy"),
    ),
}


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


# Fields that say where the data lives on one machine, not what it is: hashed at their defaults, so a
# result file made with ImageNet under /data matches the same run made with it under ~/imagenet.
LOCATION_FIELDS = {"data": ("root", "download")}
_LOCATION_DEFAULTS = {s: {k: getattr(getattr(RunConfig(), s), k) for k in keys} for s, keys in LOCATION_FIELDS.items()}
# Fields that change how fast a run goes, never what it computes: left out of the hash.
RUNTIME_FIELDS = {"data": ("workers",), "model": ("compile", "deterministic"), "eval": ("channels_last",)}
# Fields added after result files were committed, with the value that does what the code did before
# the field existed: at that value a field is left out of the hash, so those rows keep their hashes.
ADDED_FIELDS = {"model": {"dit_numerics": "diffusers", "precision": "fp32", "tf32": False},
                "finetune": {"bitfit": False},
                "eval": {"protocol": "legacy", "test_resize": None, "precision": "fp32"}}


def _hashed(section: str, values: dict) -> dict:
    out = {k: v for k, v in values.items() if k not in RUNTIME_FIELDS.get(section, ())
           and not (k in ADDED_FIELDS.get(section, {}) and v == ADDED_FIELDS[section][k])}
    out.update({k: x for k, x in _LOCATION_DEFAULTS.get(section, {}).items() if k in values})
    return out


def config_hash(cfg: RunConfig | dict, *sections: str) -> str:
    """Short stable hash of the config (or of the named sections only), blind to where data lives and to speed."""
    d = to_dict(cfg) if isinstance(cfg, RunConfig) else cfg
    d = {s: (_hashed(s, v) if isinstance(v, dict) else v) for s, v in d.items()}
    if sections:
        d = {s: d[s] for s in sections}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def save_config(cfg: RunConfig, directory: str | Path, name: str = "config.json") -> Path:
    """Write the resolved config beside an artefact (atomically)."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True))
    tmp.replace(path)
    return path
