"""What identifies a run: the config hash of result rows, and the resolved config saved beside artefacts."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from ddgd.base.files import write_text
from ddgd.config.fields import RunConfig

# The stages whose settings make a fine-tuned model, and those that make a pool of samples: the
# sections hashed into a checkpoint's id and a pool's `sample_hash`.
FINETUNE_STAGES = ("model", "data", "finetune")
SAMPLE_STAGES = (*FINETUNE_STAGES, "sample")

# Fields that say where the data lives on one machine, not what it is: hashed at their defaults, so a
# result file made with ImageNet under /data matches the same run made with it under ~/imagenet.
LOCATION_FIELDS = {"data": ("root", "download")}
_LOCATION_DEFAULTS = {s: {k: getattr(getattr(RunConfig(), s), k) for k in keys} for s, keys in LOCATION_FIELDS.items()}
# Datasets that have no name but their root (`data.dataset=imagefolder`): there the root says what the data
# is, so it is hashed as written; two image folders never share a fine-tuned model, a pool or a row.
NAMED_BY_ROOT = ("imagefolder",)
# Fields that change how fast a run goes or what it logs, never what it computes: left out of the hash.
RUNTIME_FIELDS = {"data": ("workers",), "model": ("compile", "deterministic"), "eval": ("channels_last",),
                  "finetune": ("memory_log_every",)}
# Fields added after result files were committed, with the value that does what the code did before
# the field existed: at that value a field is left out of the hash, so those rows keep their hashes.
ADDED_FIELDS = {"model": {"dit_numerics": "diffusers", "precision": "fp32", "tf32": False, "class_table": "pretrained"},
                "data": {"classes": None, "class_draw": None, "class_seed": 0},
                "finetune": {"bitfit": False, "classes_per_phase": None},
                "eval": {"protocol": "legacy", "test_resize": None, "precision": "fp32", "augment": "idc",
                         "epoch_classes": None}}


def _hashed(section: str, values: dict) -> dict:
    out = {k: v for k, v in values.items() if k not in RUNTIME_FIELDS.get(section, ())
           and not (k in ADDED_FIELDS.get(section, {}) and v == ADDED_FIELDS[section][k])}
    by_root = section == "data" and values.get("dataset") in NAMED_BY_ROOT
    out.update({k: x for k, x in _LOCATION_DEFAULTS.get(section, {}).items()
                if k in values and not (by_root and k == "root")})
    return out


def config_hash(cfg: RunConfig | dict, *sections: str) -> str:
    """Short stable hash of the config (or of the named sections only), blind to speed and to where data lives
    (but for an image folder's root, which names its data)."""
    d = asdict(cfg) if isinstance(cfg, RunConfig) else cfg
    d = {s: (_hashed(s, v) if isinstance(v, dict) else v) for s, v in d.items()}
    if sections:
        d = {s: d[s] for s in sections}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def save_config(cfg: RunConfig, directory: str | Path, name: str = "config.json") -> Path:
    """Write the resolved config beside an artefact (atomically)."""
    return write_text(Path(directory) / name, json.dumps(asdict(cfg), indent=2, sort_keys=True))

