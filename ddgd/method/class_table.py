"""The class embedding table of a DiT conditioned on classes it was not pretrained on (book page: deviations).

DiT-XL/2's table has 1001 rows: ImageNet-1k's 1000 labels and, last, the null class of classifier-free
guidance. `model.class_table` says which table a run conditions on:

* ``pretrained`` keeps the DiT's own: an ImageNet subset is conditioned on its classes' ImageNet
  indices (the paper's setting), our small models on their own labels;
* ``fresh`` replaces it by a table of K + 1 rows for the K classes of the dataset (labels 0..K-1,
  null class K), drawn as DiT initialises its table (normal, std 0.02; DiT's `models.py`,
  `initialize_weights`) and trained during fine-tuning, whatever parameters the fine-tuning trains.

`num_embeds_ada_norm` becomes K in the model's config, so `save_pretrained` writes a model that
`DiTTransformer2DModel.from_pretrained` reads back with the same table, and the null class of
training and sampling (`model.config.num_embeds_ada_norm`) is row K.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from diffusers import DiTTransformer2DModel

from ddgd.config.fields import CLASS_TABLES
from ddgd.method.models import num_classes, tie_embedders

INIT_STD = 0.02  # DiT: nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)


def class_embedder(model: DiTTransformer2DModel):
    """The (tied) label embedder every block conditions on: diffusers' `LabelEmbedding` of block 0."""
    return model.transformer_blocks[0].norm1.emb.class_embedder


def fresh_table(model: DiTTransformer2DModel, k: int, seed: int = 0) -> DiTTransformer2DModel:
    """`model` with a new class table of k + 1 rows ~ N(0, 0.02^2), drawn from `seed`, trainable; in place.

    The draw uses a generator of its own (torch's global one is left as it was), on the CPU, so the
    table is the same on every device. Every block shares the new table (`tie_embedders`).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"a class table needs K >= 1 classes, not {k!r}")
    tie_embedders(model)  # one embedder for all blocks, so one table is replaced for all
    embedder = class_embedder(model)
    old = embedder.embedding_table.weight
    weight = torch.randn(k + 1, old.shape[1], generator=torch.Generator().manual_seed(seed)) * INIT_STD
    embedder.embedding_table = nn.Embedding.from_pretrained(weight.to(old.device, old.dtype), freeze=False)
    embedder.num_classes = k  # diffusers' own label dropout (off here, `tie_embedders`) would drop to row k
    model.register_to_config(num_embeds_ada_norm=k)
    return model


def set_class_table(model: DiTTransformer2DModel, table: str, k: int | None,
                    seed: int = 0) -> DiTTransformer2DModel:
    """The DiT conditioned as `model.class_table` says, for a dataset of `k` classes.

    ``pretrained``: the model as it is, once it is clear that it has at least k classes (None: not
    checked); ``fresh``: `fresh_table`, which needs k. Before fine-tuning, call it after the
    trainable parameters are chosen (`models.select_trainable`), so that a fresh table is trained
    under DiffFit, BitFit and full fine-tuning alike; to load a fine-tuned run, before its weights
    are copied in (its EMA holds the trained table).
    """
    if table not in CLASS_TABLES:
        raise ValueError(f"model.class_table={table!r}: choose one of {', '.join(CLASS_TABLES)}")
    if table == "fresh":
        if k is None:
            raise ValueError("a fresh class table needs the number K of the dataset's classes: pass it")
        return fresh_table(model, k, seed)
    if k is not None and k > num_classes(model):
        raise ValueError(f"the DiT knows {num_classes(model)} classes and the dataset has {k}: set "
                         "-o model.class_table=fresh to condition it on a new table of the dataset's classes")
    return model
