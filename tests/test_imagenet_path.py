"""The ImageNet path end to end on a fake tree (real wnids, JPEGs of every shape and mode), in seconds.

Regression tests for the two failures of the paper-scale path: the latent cache of an ImageNet
subset (whose items are (image, label) pairs) and the real-image baselines `random` and `full`,
which had no ImageNet code path. The same path at DiT-XL/2's shapes is rehearsed in
test_paper_scale.py.
"""
import pandas as pd
import pytest
import torch

from ddgd.config import resolve
from ddgd.protocol.imagenet import SUBSETS, ImageNetSubset, diffusion_transform, imagenet_index
from ddgd.experiments.pipeline import load_data, real_set, run_experiment
from ddgd.method.latents import build_cache
from ddgd.protocol.loaders import StreamedSet, read_images, uint8_transform

from fakes import TINY_RGB_DIT, TINY_RGB_VAE, make_standins, make_varied_imagenet

ALL_WNIDS = [w for wnids in SUBSETS.values() for w in wnids]
METHODS = ("dit", "finetune", "minimax", "ddgd", "random", "full")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_varied_imagenet(tmp_path_factory.mktemp("imagenet"), ALL_WNIDS, n_train=2, n_val=1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_standins(tmp_path_factory.mktemp("standins"), TINY_RGB_DIT, TINY_RGB_VAE)


def tiny_imagenet_cfg(tree, models, dataset="imagewoof", **extra):
    values = {"data.root": str(tree), "data.resolution": 16, "data.workers": 0, **models,
              "finetune.max_steps": 2, "finetune.batch_size": 4, "finetune.n_real": 2, "finetune.n_gen": 2,
              "sample.pool": 1, "sample.steps": 2, "sample.batch_size": 10,
              "eval.networks": ["convnet-3"], "eval.ipcs": [1], "eval.image_size": 16, "eval.epochs": 1,
              "eval.seeds": [0], "eval.full_epochs": 1, **extra}
    return resolve(dataset, values)


def test_the_fake_tree_has_every_mode_and_shape(tree):
    data = ImageNetSubset(tree, "imagewoof", "train")
    from PIL import Image

    modes, ratios = set(), set()
    for path, _ in data.samples + ImageNetSubset(tree, "imageidc", "train").samples:
        with Image.open(path) as img:
            modes.add(img.mode)
            ratios.add(round(img.size[0] / img.size[1], 1))
    assert {"RGB", "L", "CMYK"} <= modes and len(ratios) >= 3
    assert all(img.shape == (3, 16, 16) for img, _ in [data.__class__(tree, "imagewoof", "train",
                                                                       uint8_transform(16))[i] for i in range(6)])


def test_latent_cache_of_an_imagenet_subset(tree):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY_RGB_VAE).eval()
    subset = ImageNetSubset(tree, "imagewoof", "train", transform=diffusion_transform(16, flip=False))
    one = build_cache(vae, subset, torch.tensor(subset.targets), batch_size=8, progress=False, workers=0)
    two = build_cache(vae, subset, torch.tensor(subset.targets), batch_size=8, progress=False, workers=2)
    assert one.mean.shape == (20, 2, 4, 4, 4) and one.labels.tolist() == subset.targets
    assert torch.equal(one.mean, two.mean) and torch.equal(one.std, two.std)  # workers change nothing
    assert one.std.min() > 0


def test_every_method_writes_its_rows_on_an_imagenet_subset(tree, models, tmp_path):
    cfg = tiny_imagenet_cfg(tree, models, **{"data.workers": 2})
    csv = tmp_path / "woof.csv"
    run_experiment(cfg, METHODS, tmp_path / "runs", csv, progress=False)
    df = pd.read_csv(csv)
    assert sorted(df.method) == sorted(METHODS) and set(df.dataset) == {"imagewoof"}
    assert int(df[df.method == "full"].ipc.iloc[0]) == 2  # every training image of the fake tree
    assert df.best.between(0, 100).all()
    mtime = csv.stat().st_mtime_ns
    run_experiment(cfg, METHODS, tmp_path / "runs", csv, progress=False)
    assert csv.stat().st_mtime_ns == mtime  # a rerun computes nothing


def test_a_listed_or_drawn_subset_runs_every_stage(tree, models, tmp_path):
    # data.dataset=imagenet with its own classes (tests/test_class_lists.py): three wnids of the fake tree,
    # listed out of order, through fine-tuning, sampling and both real-image baselines
    listed = [SUBSETS["imagenette"][3], SUBSETS["imagewoof"][0], SUBSETS["imageidc"][9]]
    cfg = tiny_imagenet_cfg(tree, models, **{"data.dataset": "imagenet", "data.classes": ",".join(listed)})
    csv = tmp_path / "listed.csv"
    run_experiment(cfg, ("ddgd", "random", "full"), tmp_path / "runs", csv, progress=False)
    df = pd.read_csv(csv)
    assert sorted(df.method) == ["ddgd", "full", "random"] and set(df.dataset) == {"imagenet"}
    pool = tmp_path / "runs" / "ddgd" / "seed0" / "samples"
    assert sorted(p.name for p in pool.iterdir() if p.is_dir()) == sorted(listed)  # one folder per listed class
    assert load_data(cfg).dit_labels == [imagenet_index(w) for w in listed]


def test_real_baselines_read_from_disk(tree, models):
    cfg = tiny_imagenet_cfg(tree, models)
    data = load_data(cfg)
    assert data.train_x is None and data.test_x.shape == (10, 3, 16, 16)  # 1 val image per class at eval.image_size
    x, y = real_set(cfg, data, "random", 1, seed=0)
    assert x.shape == (10, 3, 16, 16) and x.dtype == torch.uint8 and y.tolist() == list(range(10))
    again, _ = real_set(cfg, data, "random", 1, seed=0)
    assert torch.equal(x, again)  # a seeded draw
    stream, labels = real_set(cfg, data, "full", 2, seed=0)
    assert isinstance(stream, StreamedSet) and len(stream) == 20 and labels.tolist() == stream.subset.targets
    batches = list(stream.batches(torch.arange(20).flip(0), 8))
    assert [len(b[1]) for b in batches] == [8, 8, 4] and batches[0][1][0] == labels[19]


def test_test_images_follow_the_protocol_switch(tree, models):
    ref = load_data(tiny_imagenet_cfg(tree, models, **{"eval.image_size": 56}))
    legacy = load_data(tiny_imagenet_cfg(tree, models, **{"eval.image_size": 56, "eval.protocol": "legacy"}))
    wide = load_data(tiny_imagenet_cfg(tree, models, **{"eval.image_size": 56, "eval.test_resize": 64}))
    assert ref.test_x.shape == legacy.test_x.shape == (10, 3, 56, 56)
    assert not torch.equal(ref.test_x, legacy.test_x)  # shorter side 56 (Minimax) vs 64 (56 // 7 * 8) before the crop
    assert torch.equal(legacy.test_x, wide.test_x)  # the legacy transform is the 8/7 variant


def test_a_class_is_conditioned_on_its_imagenet_index(tree, models):
    data = load_data(tiny_imagenet_cfg(tree, models, "imagenette"))
    assert data.dit_labels == [imagenet_index(w) for w in SUBSETS["imagenette"]] and data.dit_labels[0] == 0


def test_read_images_refuses_nothing_to_read(tree):
    subset = ImageNetSubset(tree, "imagewoof", "val", uint8_transform(16))
    with pytest.raises(ValueError, match="no images"):
        read_images(subset, 0, [])


def test_fine_tuning_on_the_first_images_per_class(tree, models):
    # Minimax's --finetune-ipc: the first N files of each class, in file-name order, for every use of the train set
    cfg = tiny_imagenet_cfg(tree, models, **{"data.train_per_class": 1})
    data = load_data(cfg)
    assert data.train_y.tolist() == list(range(10))
    from ddgd.experiments.pipeline import latent_cache

    assert len(latent_cache(cfg, data, None, progress=False)) == 10
    stream, _ = real_set(cfg, data, "full", 1, seed=0)
    first = [p.name for p, _ in stream.subset.samples]
    assert first == [sorted(p.name for p in (tree / "train" / w).iterdir())[0] for w in SUBSETS["imagewoof"]]
