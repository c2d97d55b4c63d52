"""The paper-scale rehearsal: the `imagewoof` preset end to end at DiT-XL/2's and the SD-VAE's shapes.

Stand-ins of the paper's models, random weights, in the hub's folder layout: a DiT with DiT-XL/2's
hidden size 1152, 16 heads, patch 2 and 1000 + 1 labels on 4x32x32 latents (depth 2 instead of 28),
and an AutoencoderKL with the SD-VAE's config at 256 px; a fake ImageNet tree with the real wnids of
all three subsets (JPEGs of varied sizes, greyscale and CMYK among them). `ddgd run --preset
imagewoof` then runs all six methods with only counts lowered (steps, pool, epochs, seeds). An SD-VAE
encode or decode at 256 px costs seconds per image on a CPU, so the tree holds one training image
per class, and the run's latent cache is shared by the session (DDGD_CACHE).
"""
import json

import pandas as pd
import pytest
import torch

from ddgd.cli import main
from ddgd.protocol.imagenet import SUBSETS
from ddgd.method.models import load_transformer

from fakes import PAPER_DIT, SD_VAE, make_standins, make_varied_imagenet

SIX = ("dit", "finetune", "minimax", "ddgd", "random", "full")
COUNTS = ["finetune.max_steps=2", "sample.pool=1", "sample.steps=2", "sample.batch_size=5", "eval.ipcs=1",
          "eval.epochs=1", "eval.seeds=0", "eval.full_epochs=1", "data.workers=2"]


@pytest.fixture(scope="module")
def paper_tree(tmp_path_factory):
    wnids = [w for ws in SUBSETS.values() for w in ws]
    return make_varied_imagenet(tmp_path_factory.mktemp("imagenet-paper"), wnids, n_train=1, n_val=1, seed=3)


@pytest.fixture(scope="module")
def paper_models(tmp_path_factory):
    return make_standins(tmp_path_factory.mktemp("paper-standins"), PAPER_DIT, SD_VAE)


def test_the_standins_have_the_papers_shapes(paper_models):
    model = load_transformer(paper_models["model.dit"], numerics="original")
    assert model.inner_dim == 1152 and model.config.num_attention_heads == 16 and model.config.patch_size == 2
    assert model.config.num_embeds_ada_norm == 1000 and model.config.sample_size == 32
    assert model.transformer_blocks[0].norm1.emb.class_embedder.embedding_table.num_embeddings == 1001  # + null


def test_imagewoof_preset_runs_all_six_methods_at_paper_shapes(paper_tree, paper_models, tmp_path):
    torch.set_num_threads(2)  # the SD-VAE at 256 px is the cost here: both cores
    csv = tmp_path / "imagewoof.csv"
    overrides = [f"{k}={v}" for k, v in paper_models.items()] + COUNTS
    argv = ["run", "--preset", "imagewoof", "--root", str(paper_tree), "--out", str(tmp_path / "runs"),
            "--csv", str(csv), "--methods", ",".join(SIX), "--quiet"]
    assert main(argv + [x for o in overrides for x in ("-o", o)]) == 0
    df = pd.read_csv(csv)
    # every method x the paper's three networks at 224 px, one IPC, one seed
    assert sorted(set(df.method)) == sorted(SIX) and len(df) == len(SIX) * 3
    assert set(df.network) == {"convnet-6", "resnetap-10", "resnet-18"}
    assert df.best.between(0, 100).all() and set(df.dataset) == {"imagewoof"}
    manifest = json.loads((tmp_path / "runs" / "ddgd" / "seed0" / "samples" / "manifest.json").read_text())
    assert sum(manifest["counts"].values()) == 10 and manifest["config"]["model"]["dit_numerics"] == "original"
    configs = json.loads(csv.with_name("imagewoof.configs.json").read_text())
    assert {c["eval"]["protocol"] for c in configs.values()} == {"reference"}
    assert all(c["eval"]["evaluations"] == 100 for c in configs.values())
