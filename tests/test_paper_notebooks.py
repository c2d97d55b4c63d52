"""Every artefact notebook's `paper` parameter set, executed through `ddgd reproduce` and papermill.

The paper presets run on a fake ImageNet tree (the real wnids of all three subsets, JPEGs of varied
shapes and modes) with stand-in models at the paper's resolution: 256 px images, 4x32x32 latents,
a DiT with 1000 + 1 labels and patch 2, narrow so that a CPU runs every page in seconds (the
paper's widths are rehearsed end to end by test_paper_scale.py). Only counts are lowered: steps,
pool, epochs, seeds, IPCs, sweep values, images shown; everything else is each notebook's `paper`
parameter set. The checks read what each page wrote: result rows of every method, manifests, figures.
"""
import json
from pathlib import Path

import pandas as pd
import pytest

from ddgd.experiments import reproduce
from ddgd.protocol.imagenet import SUBSETS

from fakes import make_standins, make_varied_imagenet

NARROW_DIT = dict(num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=8, num_layers=2,
                  sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
NARROW_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
                  latent_channels=4, norm_num_groups=4, sample_size=256, scaling_factor=0.18215)
COUNTS = {"finetune.max_steps": 2, "sample.pool": 2, "sample.steps": 2, "sample.batch_size": 10,
          "eval.ipcs": [1], "eval.epochs": 1, "eval.seeds": [0], "eval.full_epochs": 1, "data.workers": 0}


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    tree = make_varied_imagenet(tmp_path_factory.mktemp("imagenet-nb"), [w for ws in SUBSETS.values() for w in ws],
                                n_train=2, n_val=1, seed=5)
    models = make_standins(tmp_path_factory.mktemp("narrow-standins"), NARROW_DIT, NARROW_VAE)
    return tree, {**models, **COUNTS, "data.root": str(tree)}


def run_paper(artefact: str, params: dict, out: Path) -> Path:
    nb = reproduce.run(artefact, preset="paper", overrides=params, output_dir=out, progress=False)
    assert nb.is_file()
    return nb.parent


def rows(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name)


def test_table1(setting, tmp_path):
    _, o = setting
    folder = run_paper("table1", {"overrides": o, "results_csv": None, "compute": True}, tmp_path)
    df = rows(folder, "table1.csv")
    assert set(df.method) == {"random", "dit", "finetune", "minimax", "ddgd", "full"}
    assert set(df.network) == {"convnet-6", "resnetap-10", "resnet-18"} and set(df.dataset) == {"imagewoof"}
    # the benchmark page's paper set shows the same comparison, read from that file without computing
    bench = run_paper("benchmark", {"overrides": o, "results_csv": str(folder / "table1.csv")}, tmp_path)
    assert any(bench.rglob("*.png"))


def test_table2(setting, tmp_path):
    _, o = setting
    folder = run_paper("table2", {"overrides": {**o, "eval.networks": ["resnetap-10"]}, "results_csv": None,
                                  "compute": True, "features": None}, tmp_path)  # Inception is fetched on first use
    df = rows(folder, "table2.csv")
    assert set(df.dataset) == {"imagenette", "imageidc"}
    assert set(df.method) == {"random", "dit", "minimax", "ddgd", "full"}


def test_table3(setting, tmp_path):
    _, o = setting
    folder = run_paper("table3", {"overrides": {**o, "eval.networks": ["resnetap-10"]}, "results_csv": None,
                                  "compute": True, "features": None}, tmp_path)  # Inception is fetched on first use
    df = rows(folder, "table3.csv")
    assert df["variant"].nunique() >= 3 and set(df.network) == {"resnetap-10"}


def test_figure3(setting, tmp_path):
    _, o = setting
    folder = run_paper("figure3", {"overrides": o, "classes": [0, 1], "per_class": 2, "ipc": 2, "judge_epochs": 1,
                                   "judge_size": 32, "images_dir": None}, tmp_path)
    manifest = json.loads(next(folder.rglob("gallery/manifest.json")).read_text())
    assert manifest and (folder / "figure3.png").is_file()


def test_figure4(setting, tmp_path):
    _, o = setting
    sweeps = {"finetune.lambda_g": [0.008, 0.016], "finetune.n_gen": [32, 64]}
    folder = run_paper("figure4", {"overrides": {**o, "eval.networks": ["resnetap-10"]}, "sweeps": sweeps,
                                   "results_csv": None, "compute": True}, tmp_path)
    df = rows(folder, "figure4.csv")
    assert len(df) == 3 and (folder / "figure4.png").is_file()  # the shared point and one more per parameter


@pytest.mark.parametrize("artefact, params", [
    ("latent-encoding", {"train_per_class": 2, "n_show": 2, "n_recon": 2, "timing_repeats": 1}),
    ("memory-initialisation", {"train_per_class": 2, "finetune_steps": 2, "stream_steps": 10, "n_show": 2,
                               "n_classes_show": 2}),
    ("minimax-losses", {"train_per_class": 2, "warmup_steps": 2, "multiplicity_steps": 10}),
    ("adaptive-update", {"train_per_class": 2, "stream_length": 2, "capacity": 1, "n_show": 1,
                         "timing_new": [1], "timing_repeats": 1}),
    ("full-run", {"ipc": 1, "smoothing": 1}),
])
def test_walk_throughs(setting, tmp_path, artefact, params):
    tree, o = setting
    overrides = {k: v for k, v in o.items() if k != "data.root"}
    folder = run_paper(artefact, {**params, "imagenet_root": str(tree), "overrides": overrides}, tmp_path)
    assert any(folder.rglob("*.png")) or any(folder.rglob("*.csv"))


def test_figure2_figure1_and_the_embedded_model(tmp_path):
    assert (run_paper("figure2", {}, tmp_path) / "figure2.png").is_file()
    assert any(run_paper("embedded-model", {}, tmp_path).rglob("*.png"))
    folder = run_paper("figure1", {"seeds": [0], "pretrain_steps": 20, "finetune_steps": 4, "n_train": 200,
                                   "n_eval": 200}, tmp_path)
    assert any(folder.rglob("*.png"))
