"""Any image dataset: image folders of one's own, CIFAR-10 / CIFAR-100, and a fresh class table for the DiT.

Every dataset is written by the tests themselves (nothing downloads): an image folder of PNGs and
JPEGs of varied sizes and modes, and CIFAR trees in torchvision's on-disk format (its pickles). The
runs go through the command line at tiny counts with the RGB stand-in models of tests/fakes.py.
"""
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ddgd.cli import main
from ddgd.config import ConfigError, DataConfig, config_hash, resolve, to_dict
from ddgd.experiments.pipeline import latent_cache, load_data, real_set
from ddgd.method.class_table import INIT_STD, class_embedder, fresh_table, set_class_table
from ddgd.method.models import load_transformer, select_trainable, untied_copy
from ddgd.protocol.cifar import CIFAR10_NAMES, CIFAR100_NAMES
from ddgd.protocol.data import DATASETS, class_indices, class_names, data_classes, load_real
from ddgd.protocol.folders import FolderClasses, check_data_root, check_image_folder, folder_split, train_set_name
from ddgd.protocol.imagenet import DataError
from ddgd.protocol.loaders import TensorImages

from fakes import TINY_RGB_DIT, TINY_RGB_VAE, make_standins

CLASSES = ["cat", "dog", "emu"]  # written out of order below: the labels follow the sorted folder names
TINY = ["-o", "data.resolution=16", "-o", "eval.image_size=16", "-o", "data.workers=0", "-o", "model.class_table=fresh"]


def _image(path, h: int, w: int, mode: str, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)


def make_image_folder(root, classes=CLASSES, n_train: int = 3, n_val: int = 1):
    """train/<class>/ and val/<class>/ of PNGs and JPEGs of varied sizes and modes, one JPEG one folder deeper."""
    root, seed = Path(root), 0
    for c in reversed(classes):
        for split, n in (("train", n_train), ("val", n_val)):
            for k in range(n):
                seed += 1
                name = [f"{k}.png", f"{k}.jpg", f"deeper/{k}.JPEG"][k % 3]
                mode = ["RGB", "L", "RGBA"][seed % 3] if name.endswith("png") else ["RGB", "L"][seed % 2]
                _image(root / split / c / name, 20 + 7 * k, 30 + 5 * seed % 40, mode, seed)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_standins(tmp_path_factory.mktemp("standins"), TINY_RGB_DIT, TINY_RGB_VAE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("pets"))


def _models(models: dict) -> list[str]:
    return [a for k, v in models.items() for a in ("-o", f"{k}={v}")] + ["-o", "model.dit_numerics=diffusers"]


# ----------------------------------------------------------------------------- image folders
def test_an_image_folder_runs_every_stage_from_the_command_line(folder, models, tmp_path):
    out, csv = tmp_path / "exp", tmp_path / "pets.csv"
    argv = ["run", "--preset", "digits-tiny", "-o", "data.dataset=imagefolder", "--root", str(folder), *TINY,
            *_models(models), "--methods", "dit,ddgd,random,full", "--out", str(out), "--csv", str(csv), "--quiet"]
    assert main(argv) == 0
    df = pd.read_csv(csv)
    assert sorted(df.method) == ["ddgd", "dit", "full", "random"] and set(df.dataset) == {"imagefolder"}
    assert int(df[df.method == "full"].ipc.iloc[0]) == 3  # every training image: 3 per class
    pool = out / "ddgd" / "seed0" / "samples"
    assert sorted(p.name for p in pool.iterdir() if p.is_dir()) == CLASSES


def test_an_image_folder_is_read_as_torchvision_reads_it(folder, models):
    from torchvision.datasets import ImageFolder

    cfg = resolve("digits-tiny", {"data.dataset": "imagefolder", "data.root": str(folder), "data.resolution": 16,
                                  "eval.image_size": 16, "data.workers": 0, **models})
    data = load_data(cfg)
    assert data.names == CLASSES and data.dit_labels == [0, 1, 2]  # sorted folder names; a fresh table's rows
    assert data.train_x is None and data.test_x.shape == (3, 3, 16, 16) and data.test_y.tolist() == [0, 1, 2]
    theirs = ImageFolder(str(folder / "train"))
    files = folder_split(folder, data_classes(cfg.data), "train")
    assert files.samples == [(Path(p), y) for p, y in theirs.samples]  # nested JPEGs too
    assert data.train_y.tolist() == theirs.targets == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len(latent_cache(cfg, data, None, progress=False)) == 9
    x, y = real_set(cfg, data, "random", 2, seed=0)
    assert x.shape == (6, 3, 16, 16) and x.dtype == torch.uint8 and y.tolist() == [0, 0, 1, 1, 2, 2]


def test_two_image_folders_never_share_a_cache_or_a_hash(folder, tmp_path):
    other = make_image_folder(tmp_path / "other")  # the same folder, file for file ...
    for k, p in enumerate(sorted((other / "train" / "cat").iterdir())):
        if p.is_file():
            _image(p, 60, 61, "RGB", 100 + k)  # ... but for other images of cats: same names, other sizes
    cfgs = [DataConfig(dataset="imagefolder", root=str(r)) for r in (folder, other)]
    names = [train_set_name(d, folder_split(d.root, data_classes(d), "train")) for d in cfgs]
    assert names[0] != names[1] and all(n.startswith("imagefolder3-") for n in names)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    same = DataConfig(dataset="imagefolder", root=str(copy))
    assert train_set_name(same, folder_split(copy, data_classes(same), "train")) == names[0]  # content, not place
    run = resolve("digits-tiny", {"data.dataset": "imagefolder"})
    hashes = {config_hash(resolve(run, {"data.root": str(r)})) for r in (folder, other)}
    assert len(hashes) == 2  # an image folder is named by its root
    woof = resolve("imagewoof")
    assert config_hash(resolve(woof, {"data.root": "/a"})) == config_hash(resolve(woof, {"data.root": "/b"}))


@pytest.mark.parametrize("case, message", [
    ("no root", "needs data.root"),
    ("missing", "is not a folder"),
    ("no val", "has no val/"),
    ("no splits", "has no train/ and no val/"),
    ("different classes", "only train/ has dog; only val/ has eel"),
    ("empty class", "val/emu holds no images"),
    ("one class", "holds 1 class folder (cat)"),
])
def test_a_bad_image_folder_is_refused_naming_the_problem(tmp_path, case, message):
    root = tmp_path / "data"
    if case not in ("no root", "missing"):
        make_image_folder(root, n_train=1, n_val=1)
    if case == "no val":
        shutil.rmtree(root / "val")
    if case == "no splits":
        for s in ("train", "val"):
            shutil.rmtree(root / s)
    if case == "different classes":
        (root / "val" / "dog").rename(root / "val" / "eel")
    if case == "empty class":
        for p in [p for p in (root / "val" / "emu").rglob("*") if p.is_file()]:
            p.unlink()
        (root / "val" / "emu" / "notes.txt").write_text("not an image")
    if case == "one class":
        for s in ("train", "val"):
            for c in ("dog", "emu"):
                shutil.rmtree(root / s / c)
    data = DataConfig(dataset="imagefolder", root=None if case == "no root" else str(root))
    with pytest.raises(ConfigError, match="data.root") as err:
        check_image_folder(data.root)
    assert message in str(err.value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        data_classes(data)  # what load_data calls first: refused before any image is read
    if case != "no root":
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_data_root(data)  # what validation calls


def test_the_command_line_refuses_a_bad_folder_before_any_work(tmp_path, models, capsys):
    root = make_image_folder(tmp_path / "data", n_train=1)
    (root / "val" / "dog").rename(root / "val" / "eel")
    out, csv = tmp_path / "exp", tmp_path / "x.csv"
    argv = ["run", "--preset", "digits-tiny", "-o", "data.dataset=imagefolder", "--root", str(root), *TINY,
            *_models(models), "--methods", "ddgd", "--out", str(out), "--csv", str(csv), "--quiet"]
    assert main(argv) == 2
    assert "only train/ has dog; only val/ has eel" in capsys.readouterr().err
    assert not out.exists() and not csv.exists()


def test_a_config_without_a_root_passes_validation_and_other_datasets_are_untouched():
    check_data_root(DataConfig(dataset="imagefolder"))  # the command line's --root may come later
    check_data_root(DataConfig(dataset="cifar10", root="/no/such/folder"))  # not an image folder: not read here
    assert {"imagefolder", "cifar10", "cifar100"} <= set(DATASETS)
    assert class_names(FolderClasses(("a", "b"))) == ["a", "b"] and class_indices(FolderClasses(("a", "b"))) == [0, 1]


# ----------------------------------------------------------------------------- CIFAR
def _pickle(path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def make_fake_cifar10(root, per_batch: int = 10, n_test: int = 10, seed: int = 0):
    """torchvision's cifar-10-batches-py/: five training batches, a test batch and batches.meta, each a
    pickled dict of `data` (uint8 [n, 3072], channel-major rows) and `labels` (cycling 0..9)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    for name, n in [(f"data_batch_{k}", per_batch) for k in range(1, 6)] + [("test_batch", n_test)]:
        _pickle(folder / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                "labels": [i % 10 for i in range(n)], "batch_label": name})
    _pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch})
    return root


def make_fake_cifar100(root, n: int = 200, seed: int = 0):
    """torchvision's cifar-100-python/: train, test and meta, labelled by `fine_labels` / `fine_label_names`."""
    rng = np.random.default_rng(seed)
    for name in ("train", "test"):
        _pickle(root / "cifar-100-python" / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                                    "fine_labels": [i % 100 for i in range(n)],
                                                    "coarse_labels": [i % 20 for i in range(n)]})
    _pickle(root / "cifar-100-python" / "meta", {"fine_label_names": CIFAR100_NAMES,
                                                 "coarse_label_names": [str(i) for i in range(20)]})
    return root


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks every CIFAR file against the md5 of the real download, which a fake tree cannot
    match. Only that sum is skipped: `check_integrity` is patched where cifar.py looks it up, to "the file
    exists", so torchvision's own checks for missing files and its unpickling path run as they are."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def test_cifar10_is_read_through_torchvision(tmp_path, no_md5):
    root = make_fake_cifar10(tmp_path)
    x, y = load_real("cifar10", "train", root=str(root))
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and y.tolist() == [i % 10 for i in range(50)]
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f)["data"][0]
    # a row is 1024 red, 1024 green, 1024 blue values, row-major: pixel (0, 1) of the blue plane is value 2049
    assert x[0, 2, 0, 1] == first[2049] and x[0, 0, 31, 31] == first[1023]
    test_x, _ = load_real("cifar10", "test", root=str(root))
    assert test_x.shape == (10, 3, 32, 32)
    assert class_names("cifar10") == CIFAR10_NAMES and class_indices("cifar10") == list(range(10))


def test_cifar100_uses_its_fine_labels(tmp_path, no_md5):
    x, y = load_real("cifar100", "test", root=str(make_fake_cifar100(tmp_path)))
    assert x.shape == (200, 3, 32, 32) and y.tolist() == [i % 100 for i in range(200)]
    assert class_names("cifar100")[:2] == ["apple", "aquarium_fish"] and len(class_indices("cifar100")) == 100


def test_cifar_that_is_absent_or_foreign_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="data.download=true"):
        load_real("cifar10", "train", root=str(tmp_path / "empty"))  # nothing there, and no download
    make_fake_cifar10(tmp_path / "fake")
    with pytest.raises(DataError, match="not found or corrupt"):
        load_real("cifar10", "train", root=str(tmp_path / "fake"))  # torchvision's md5 check refuses the fake


def test_cifar_with_foreign_class_names_is_refused(tmp_path, no_md5):
    root = make_fake_cifar10(tmp_path)
    _pickle(root / "cifar-10-batches-py" / "batches.meta", {"label_names": CIFAR10_NAMES[::-1]})
    with pytest.raises(DataError, match="names its classes"):
        load_real("cifar10", "train", root=str(root))


def test_cifar10_runs_every_stage_from_the_command_line(tmp_path, models, no_md5):
    root, out, csv = make_fake_cifar10(tmp_path / "cifar"), tmp_path / "exp", tmp_path / "cifar.csv"
    argv = ["run", "--preset", "digits-tiny", "-o", "data.dataset=cifar10", "--root", str(root), *TINY,
            "-o", "eval.image_size=32", *_models(models), "--methods", "ddgd,random", "--out", str(out),
            "--csv", str(csv), "--quiet"]
    assert main(argv) == 0
    df = pd.read_csv(csv)
    assert sorted(df.method) == ["ddgd", "random"] and set(df.dataset) == {"cifar10"}
    cfg = resolve("digits-tiny", {"data.dataset": "cifar10", "data.root": str(root), "data.resolution": 16,
                                  "eval.image_size": 32, "data.workers": 0, **models})
    data = load_data(cfg)
    assert data.train_x.shape == (50, 3, 32, 32)  # held at CIFAR's own size; the cache brings it to 16 px
    cache = latent_cache(cfg, data, None, progress=False)
    assert cache.mean.shape == (50, 2, 4, 4, 4) and torch.equal(cache.labels, data.train_y)


def test_the_cifar_presets_upsample_for_dit_and_evaluate_at_32_px():
    for name in ("cifar10", "cifar100"):
        cfg = resolve(name)
        assert cfg.data.dataset == name and cfg.data.resolution == 256 and cfg.eval.image_size == 32
        assert cfg.eval.networks == ("convnet-3",) and cfg.model.class_table == "fresh"
        assert cfg.model.dit == "facebook/DiT-XL-2-256"  # the paper's hub ids: the user's machine downloads them
    assert resolve("imagefolder").model.class_table == "fresh"
    assert resolve("imagewoof").model.class_table == "pretrained"


def test_in_memory_images_reach_the_diffusion_resolution_through_the_adm_crop():
    # a constant image stays constant under BICUBIC resizing (its weights sum to 1): 51 -> 51 / 127.5 - 1 = -0.6
    x = torch.full((2, 3, 32, 32), 51, dtype=torch.uint8)
    item, label = TensorImages(x, torch.tensor([4, 7]), 64)[1]
    assert item.shape == (3, 64, 64) and label == 7
    assert torch.allclose(item, torch.full_like(item, -0.6), atol=1e-6)
    with pytest.raises(ValueError, match="uint8 RGB"):
        TensorImages(x[:, :1], torch.tensor([0, 1]), 64)


# ----------------------------------------------------------------------------- a fresh class table
def test_a_fresh_table_has_k_plus_one_rows_drawn_as_dit_draws_them():
    model = load_transformer("tiny")
    before = torch.random.get_rng_state()
    fresh_table(model, 37, seed=3)
    table = class_embedder(model).embedding_table.weight
    assert table.shape == (38, model.inner_dim) and model.config.num_embeds_ada_norm == 37
    expected = torch.randn(38, model.inner_dim, generator=torch.Generator().manual_seed(3)) * INIT_STD
    assert torch.equal(table.detach(), expected) and INIT_STD == 0.02
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is untouched
    assert all(b.norm1.emb.class_embedder.embedding_table is class_embedder(model).embedding_table
               for b in model.transformer_blocks)  # one table for every block


def test_a_fresh_table_trains_under_bitfit():
    torch.manual_seed(0)
    model = load_transformer("tiny")
    select_trainable(model, difffit=False, bitfit=True)  # would freeze every table row
    set_class_table(model, "fresh", 3, seed=0)
    table = class_embedder(model).embedding_table.weight
    assert table.requires_grad
    start = table.detach().clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    z, t = torch.randn(2, 4, 4, 4), torch.tensor([10, 500])
    model(z, timestep=t, class_labels=torch.tensor([0, 3])).sample.pow(2).mean().backward()  # 3 = null class
    opt.step()
    moved = (table.detach() - start).abs().sum(1) > 0
    assert moved.tolist() == [True, False, False, True]  # the rows of the labels seen, no other (no weight decay)


def test_a_fresh_table_round_trips_through_save_pretrained(tmp_path):
    from diffusers import DiTTransformer2DModel

    model = fresh_table(load_transformer("tiny"), 5, seed=1).eval()
    untied_copy(model).save_pretrained(tmp_path / "m")
    back = load_transformer(str(tmp_path / "m")).eval()
    assert back.config.num_embeds_ada_norm == 5 and DiTTransformer2DModel.load_config(tmp_path / "m")[
        "num_embeds_ada_norm"] == 5
    assert torch.equal(class_embedder(back).embedding_table.weight, class_embedder(model).embedding_table.weight)
    z, t, y = torch.randn(3, 4, 4, 4), torch.tensor([1, 2, 3]), torch.tensor([0, 4, 5])
    with torch.no_grad():
        assert torch.allclose(back(z, timestep=t, class_labels=y).sample, model(z, timestep=t, class_labels=y).sample)


def test_the_pretrained_table_is_kept_when_it_has_room_for_the_classes():
    model = load_transformer("tiny")  # 10 classes
    table = class_embedder(model).embedding_table
    assert set_class_table(model, "pretrained", 10) is model and class_embedder(model).embedding_table is table
    with pytest.raises(ValueError, match="model.class_table=fresh"):
        set_class_table(model, "pretrained", 11)
    with pytest.raises(ValueError, match="choose one of pretrained, fresh"):
        set_class_table(model, "new", 3)


def test_the_class_table_field_keeps_committed_hashes_at_its_default():
    cfg = resolve("digits-tiny")
    without = to_dict(cfg)
    del without["model"]["class_table"]  # a config.json written before the field existed
    assert config_hash(without) == config_hash(cfg)
    assert config_hash(resolve(cfg, {"model.class_table": "fresh"})) != config_hash(cfg)


def test_a_run_with_a_fresh_table_fine_tunes_and_samples_with_it(folder, models, tmp_path):
    from ddgd.experiments.pipeline import distill, sample_pool
    from ddgd.experiments.runs import with_seed
    from ddgd.method.checkpoints import read_checkpoint
    from ddgd.method.finetune import load_finetuned

    cfg = with_seed(resolve("digits-tiny", {"data.dataset": "imagefolder", "data.root": str(folder),
                                            "data.resolution": 16, "eval.image_size": 16, "data.workers": 0,
                                            "model.class_table": "fresh", "model.dit_numerics": "diffusers",
                                            **models}), 0, "ddgd")
    data = load_data(cfg)
    out = distill(cfg, tmp_path, data, progress=False)
    ema = read_checkpoint(out / "ema.pt", keys=("ema",))["ema"]
    assert [v.shape[0] for k, v in ema.items() if "embedding_table" in k] == [4]  # K + 1 rows, trained
    assert load_finetuned(cfg, out, num_classes=3).config.num_embeds_ada_norm == 3
    pool_x, pool_y = sample_pool(cfg, out, data, progress=False)
    assert pool_y.unique().tolist() == [0, 1, 2]
