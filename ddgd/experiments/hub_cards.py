"""The dataset card and the model card of an export (`ddgd export`): Hugging Face Hub README files.

Each card is a README.md with the Hub's YAML header (what the Hub indexes and its viewer reads)
and a body that says what the folder holds, how it was made (config and sample hashes, the
settings that matter, provenance of the pool and of the export), the accuracy rows of the set, and
how to load it offline. Every figure on a card comes from the run's manifest and the result rows.
"""
from __future__ import annotations

import json

from ddgd.base.provenance import short_commit
from ddgd.config import config_hash
from ddgd.method.hub import is_hub_id

METHOD_TEXT = {
    "dit": "the pretrained DiT sampled as it is (no fine-tuning)",
    "finetune": "the DiT fine-tuned with the diffusion loss alone",
    "minimax": "the DiT fine-tuned with Minimax's memory terms and first-in-first-out memories (Gu et al. 2024)",
    "ddgd": "the DiT fine-tuned with DDGD's memory terms and self-adaptive memories (Li et al. 2025)",
}
CITATION = """@inproceedings{li2025ddgd,
  author    = {Li, Mingzhuo and Li, Guang and Mao, Jiafeng and Ogawa, Takahiro and Haseyama, Miki},
  title     = {Diversity-Driven Generative Dataset Distillation Based on Diffusion Model with Self-Adaptive Memory},
  booktitle = {IEEE International Conference on Image Processing (ICIP)},
  year      = {2025},
  note      = {arXiv:2505.19469},
}"""
def _yaml_list(key: str, values: list[str]) -> str:
    return f"{key}:\n" + "".join(f"- {v}\n" for v in dict.fromkeys(values))  # each once, in order


def _rows_table(rows: list[dict]) -> str:
    if not rows:
        return ("No evaluation rows were found for this set (pass the results CSV of its experiment with "
                "`--csv`, or evaluate it with `ddgd evaluate`).\n")
    head = "| IPC | network | seed | best top-1 (%) | final top-1 (%) | commit |\n|---|---|---|---|---|---|\n"
    return head + "".join(f"| {r['ipc']} | {r['network']} | {r['seed']} | {float(r['best']):.2f} | "
                          f"{float(r['final']):.2f} | {short_commit(str(r.get('commit', '')))} |\n" for r in rows)


def _provenance(label: str, p: dict) -> str:
    return (f"- {label}: ddgd {p.get('ddgd')}, commit `{p.get('commit')}`, python {p.get('python')}, torch "
            f"{p.get('torch')}, torchvision {p.get('torchvision')}, diffusers {p.get('diffusers')}; "
            f"{p.get('hardware')}\n")


def _made(src) -> str:
    cfg, ft, s = src.cfg, src.cfg.finetune, src.cfg.sample
    lines = [f"- method `{src.method}`: {METHOD_TEXT[src.method]}; preset `{cfg.name}`, seed {ft.seed}",
             f"- model `{cfg.model.dit}` (DiT numerics: `{cfg.model.dit_numerics}`), decoded by `{cfg.model.vae_decode}`",
             f"- sampling: {s.steps} respaced DDPM steps, guidance {s.guidance}, pool of {s.pool} per class, image "
             f"noise seeded by (seed, class, index)"]
    if src.method != "dit":
        lines.append(f"- fine-tuning: lambda_r {ft.lambda_r}, lambda_g {ft.lambda_g}, memories N_R {ft.n_real} / "
                     f"N_G {ft.n_gen}, lr {ft.lr}, batch {ft.batch_size}, at most {ft.max_steps} steps, "
                     f"{'BitFit' if ft.bitfit else 'DiffFit' if ft.difffit else 'all parameters'}")
    lines.append(f"- config hash `{config_hash(cfg)}`, sample hash `{src.manifest.get('sample_hash')}`; the whole "
                 "resolved config is `ddgd_config.json`")
    return "\n".join(lines) + "\n"


def _classes(names: list[str], dit: list[int], counts: dict | None = None) -> str:
    head = "| label | class | DiT label |" + (" images |" if counts else "") + "\n"
    head += "|---|---|---|" + ("---|" if counts else "") + "\n"
    return head + "".join(f"| {i} | {n} | {d} |" + (f" {counts[i]} |" if counts else "") + "\n"
                          for i, (n, d) in enumerate(zip(names, dit)))


def dataset_card(src, names: list[str], dit: list[int], n_images: int, ipc: int | None, rows: list[dict],
                 export_provenance: dict) -> str:
    """README.md of an exported image folder."""
    per_class = n_images // len(names)
    features = "".join(f"          '{i}': {json.dumps(n)}\n" for i, n in enumerate(names))
    header = ("---\n" + _yaml_list("tags", ["dataset-distillation", "synthetic", "ddgd", src.method])
              + "task_categories:\n- image-classification\nsize_categories:\n- n<1K\n"
              + "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: train/**\n"
              + "dataset_info:\n  config_name: default\n  features:\n  - name: image\n    dtype: image\n"
              + "  - name: label\n    dtype:\n      class_label:\n        names:\n" + features
              + "  - name: class_name\n    dtype: string\n  - name: dit_label\n    dtype: int64\n"
              + "  - name: index\n    dtype: int64\n  - name: sha256\n    dtype: string\n"
              + f"  splits:\n  - name: train\n    num_examples: {n_images}\n---\n")
    counts = {i: per_class for i in range(len(names))}
    return header + f"""# Distilled {src.cfg.data.dataset}: {src.method}, seed {src.cfg.finetune.seed}, {per_class} images per class

{n_images} generated images of {len(names)} classes{f' (the first {ipc} of each class of the pool)' if ipc else ''},
made by `ddgd`, a reproducible companion to [*Diversity-Driven Generative Dataset Distillation Based
on Diffusion Model with Self-Adaptive Memory*](https://arxiv.org/abs/2505.19469) (ICIP 2025). Train a classifier on
them from scratch with hard labels and test it on the real test set: that is the protocol of the
accuracy rows below.

## Load

```python
import datasets
ds = datasets.load_dataset("imagefolder", data_dir="path/to/this/folder", split="train")
ds = ds.cast_column("label", datasets.ClassLabel(names={json.dumps(names)}))
```

Each image has `label` (0..{len(names) - 1}, the order below), `class_name`, `dit_label` (the class the
diffusion model was conditioned on), `index` (its place in the pool; IPC k is the prefix 0..k-1) and
`sha256` (of the PNG as sampled; `ddgd verify` checks a pool against these).

## Classes

{_classes(names, dit, counts)}
## How it was made

{_made(src)}
## Accuracy of networks trained on this set

{_rows_table(rows)}
## Provenance

{_provenance('pool', src.manifest.get('provenance', {}))}{_provenance('export', export_provenance)}
The images derive from a model trained on {src.cfg.data.dataset}; the terms of that dataset apply to them.

## Citation

```bibtex
{CITATION}
```
"""


def model_card(src, names: list[str], dit: list[int], null: int, rows: list[dict], export_provenance: dict) -> str:
    """README.md of an exported fine-tuned DiT; `null` is the label of its null class (guidance)."""
    cfg, ft = src.cfg, src.cfg.finetune
    base = f"base_model: {cfg.model.dit}\n" if is_hub_id(cfg.model.dit) else ""
    layout = ("DiffFit's scale factors are multiplied into the weights they scale, and every block has its own "
              "copy of the (shared, fine-tuned) class embedder" if ft.difffit and not ft.bitfit else
              "Every block has its own copy of the (shared, fine-tuned) class embedder")
    numerics = ("the original DiT's definitions (`ddgd.method.models.original_numerics`: timestep frequencies "
                "spaced by half, LayerNorm eps 1e-6 before the MLP), which a plain `from_pretrained` does not "
                "restore: load it with `ddgd.method.models.load_transformer(path, numerics=\"original\")` to compute "
                "exactly what sampled this set" if cfg.model.dit_numerics == "original" else
                "diffusers' own definitions: `from_pretrained` computes exactly what sampled this set")
    header = ("---\nlibrary_name: diffusers\n" + base
              + _yaml_list("tags", ["dit", "class-conditional", "dataset-distillation", "ddgd", src.method]) + "---\n")
    return header + f"""# {src.method} fine-tuned DiT for {cfg.data.dataset}, seed {cfg.finetune.seed}

{METHOD_TEXT[src.method][0].upper() + METHOD_TEXT[src.method][1:]}: the EMA weights that sampled the distilled set of
this run, as a diffusers `DiTTransformer2DModel`. {layout}: the folder holds plain diffusers
modules.

## Load

```python
from diffusers import DiTTransformer2DModel
model = DiTTransformer2DModel.from_pretrained("path/to/this/folder")
```

The model was run with {numerics}. It is conditioned on the DiT labels below, with label {null} (the
class table's last row) as the null class of classifier-free guidance; the latents are decoded with
`{cfg.model.vae_decode}`.

## Classes

{_classes(names, dit)}
## How it was made

{_made(src)}
## Accuracy of networks trained on its distilled set

{_rows_table(rows)}
## Provenance

{_provenance('pool', src.manifest.get('provenance', {}))}{_provenance('export', export_provenance)}
## Citation

```bibtex
{CITATION}
```
"""
