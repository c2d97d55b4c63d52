"""Where a model comes from: a small config, a local `save_pretrained` folder, or the Hugging Face Hub.

`ddgd.method.models.load_transformer` and `load_vae` read their weights through `load_model`;
`check_available` makes the same decision before a run starts, so a model that cannot be read
(no network, a mistyped hub id, a folder without a config) stops the run before hours of work.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DiTTransformer2DModel

# Small configs: "tiny" for tests (seconds), "fashion" for the embedded Fashion-MNIST model,
# "bench" for the benchmarks at paper latent shapes (6 layers, hidden 384, patch 2).
SMALL_CONFIGS: dict[str, dict] = {
    "tiny": dict(
        dit=dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
                 sample_size=4, patch_size=2, num_embeds_ada_norm=10, norm_type="ada_norm_zero"),
        vae=dict(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16), layers_per_block=1,
                 latent_channels=4, norm_num_groups=4, sample_size=16),
    ),
    "fashion": dict(
        dit=dict(num_attention_heads=3, attention_head_dim=64, in_channels=4, out_channels=8, num_layers=6,
                 sample_size=8, patch_size=2, num_embeds_ada_norm=10, norm_type="ada_norm_zero"),
        vae=dict(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 64), layers_per_block=1,
                 latent_channels=4, norm_num_groups=16, sample_size=32),
    ),
    "bench": dict(
        dit=dict(num_attention_heads=6, attention_head_dim=64, in_channels=4, out_channels=8, num_layers=6,
                 sample_size=32, patch_size=2, num_embeds_ada_norm=10, norm_type="ada_norm_zero"),
        vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                 up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                 layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=256),
    ),
}


def resolve_path(spec: str) -> Path | None:
    """A local folder for `spec`: as given, or relative to the project root (so notebooks find data/)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        path = (base / spec).resolve()
        if path.is_dir():
            return path
    return None


class HubError(OSError):
    """A hub model that cannot be read (no network, no such repository); the message names the fix."""


HUB_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


def is_hub_id(spec: str) -> bool:
    """Whether `spec` reads as a Hugging Face repository id, `owner/name` (checked after local folders)."""
    return spec.count("/") == 1 and not spec.startswith((".", "/")) and set(spec) <= HUB_ID_CHARS


def _hub_fix(spec: str, err: Exception) -> HubError:
    return HubError(f"could not load {spec!r} from the model hub ({type(err).__name__}: {str(err).splitlines()[0]}). "
                    f"Download it once with network access (hf download {spec}; before huggingface_hub 1.0: "
                    f"huggingface-cli download {spec}), or pass a local save_pretrained folder.")


def _subfolder(cls, subfolder: str) -> str | None:
    return subfolder if cls is DiTTransformer2DModel else None  # a VAE hub id is a repository of its own


def load_model(cls, spec: str, subfolder: str, small_key: str, seed: int):
    """A diffusers model of class `cls` from `spec`: a small config (random weights drawn with `seed`), a
    local folder (its own config.json or `subfolder`/config.json), or a hub id."""
    if spec in SMALL_CONFIGS:
        torch.manual_seed(seed)
        return cls(**SMALL_CONFIGS[spec][small_key])
    path = resolve_path(spec)
    if path is not None:
        if (path / "config.json").is_file():
            return cls.from_pretrained(path)
        if (path / subfolder / "config.json").is_file():
            return cls.from_pretrained(path, subfolder=subfolder)
        raise FileNotFoundError(f"{path} holds no config.json (nor {subfolder}/config.json): is it a save_pretrained folder?")
    if is_hub_id(spec):
        try:
            return cls.from_pretrained(spec, subfolder=_subfolder(cls, subfolder))
        except OSError as err:  # no network, or no such repo
            raise _hub_fix(spec, err) from err
    raise FileNotFoundError(f"model {spec!r} is neither a local folder, a hub id, nor one of {', '.join(SMALL_CONFIGS)}")


def check_available(spec: str, kind: str) -> None:
    """Fail now, naming the fix, when model `spec` ("transformer" or "vae") cannot be loaded later.

    Called before a run starts work (encoding a latent cache takes hours at paper scale): a local
    folder must hold a config; a hub id must be in the local cache or reachable, which reading its
    small config.json shows (it is also the first file `from_pretrained` fetches).
    """
    if spec in SMALL_CONFIGS:
        return
    cls, sub = (DiTTransformer2DModel, "transformer") if kind == "transformer" else (AutoencoderKL, "vae")
    path = resolve_path(spec)
    if path is not None:
        if not ((path / "config.json").is_file() or (path / sub / "config.json").is_file()):
            raise FileNotFoundError(f"{path} holds no config.json (nor {sub}/config.json): is it a save_pretrained folder?")
        return
    if not is_hub_id(spec):
        raise FileNotFoundError(f"model {spec!r} is neither a local folder, a hub id, nor one of {', '.join(SMALL_CONFIGS)}")
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(spec, "config.json", subfolder=_subfolder(cls, sub))
    except Exception as err:  # offline, unreachable, unknown or gated repository: all end the run later
        raise _hub_fix(spec, err) from err
