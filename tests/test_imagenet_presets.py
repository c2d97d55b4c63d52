"""The ImageNet-100 and ImageNet-1k presets: their class lists, their evaluation settings, their data roots, and
fine-tuning in class phases end to end on a fake tree (real wnids, stand-in models), in seconds."""
import shutil
from dataclasses import asdict

import pandas as pd
import pytest
import torch

from ddgd.config import ConfigError, config_hash, resolve
from ddgd.experiments import phases
from ddgd.experiments.phases import phase_classes, sub_cache
from ddgd.experiments.pipeline import load_data, run_experiment
from ddgd.method.latents import LatentCache
from ddgd.protocol.imagenet import SUBSETS, DataError, imagenet_index, imagenet_wnids, subset_classes
from ddgd.protocol.schedule import epochs_for_ipc, num_epochs

from fakes import TINY_RGB_DIT, TINY_RGB_VAE, make_fake_imagenet, make_standins


def test_imagenet_1k_is_every_class_in_index_order():
    cfg = resolve("imagenet-1k", {})
    wnids = subset_classes(cfg.data)
    assert wnids == imagenet_wnids() and len(set(wnids)) == 1000
    assert [imagenet_index(w) for w in wnids] == list(range(1000))  # local label = DiT's label


def test_imagenet_100_is_minimax_and_idc_list():
    wnids = subset_classes(resolve("imagenet-100", {}).data)
    assert len(wnids) == len(set(wnids)) == 100 and set(wnids) <= set(imagenet_wnids())
    # rows 1, 2, 3, 100 of misc/class100.txt (vimar-gu/MinimaxDiffusion 969fc6f), read by hand
    assert wnids[:3] == ["n02869837", "n01749939", "n02488291"] and wnids[-1] == "n02090622"
    assert wnids[97:99] == ["n03424325", "n01855672"]
    assert wnids[:10] == SUBSETS["imageidc"]  # the paper's ImageIDC is the list's first ten


def test_evaluation_settings_by_class_count():
    hundred, thousand = resolve("imagenet-100", {}), resolve("imagenet-1k", {})
    # above 100 classes: lr 0.1, weight decay 1e-4, batch >= 128 (Minimax argument.py L295-302)
    assert (thousand.eval.lr, thousand.eval.weight_decay, thousand.eval.batch_size) == (0.1, 1e-4, 128)
    assert (hundred.eval.lr, hundred.eval.weight_decay, hundred.eval.batch_size) == (0.01, 5e-4, 64)
    # exactly 100 classes: 2/3 of the table, down to hundreds: 2000 -> 1333 -> 1300, 1500 -> 1000, 1000 -> 666 -> 600
    assert [epochs_for_ipc(i, 100) for i in (10, 20, 50, 100)] == [1300, 1000, 1000, 600]
    assert [epochs_for_ipc(i, 1000) for i in (10, 20, 50)] == [2000, 1500, 1500] == [epochs_for_ipc(i) for i in
                                                                                       (10, 20, 50)]
    assert (hundred.eval.epoch_classes, thousand.eval.epoch_classes) == (100, 1000)
    assert [num_epochs(hundred.eval, i) for i in (10, 20)] == [1300, 1000]
    assert [num_epochs(thousand.eval, i) for i in (10, 20)] == [2000, 1500] == [num_epochs(resolve("imagewoof", {}).eval, i)
                                                                              for i in (10, 20)]
    assert hundred.finetune.classes_per_phase == thousand.finetune.classes_per_phase == 20


def test_no_phases_keeps_every_hash():
    cfg = resolve("imagewoof", {})
    d = asdict(cfg)
    del d["finetune"]["classes_per_phase"], d["eval"]["epoch_classes"]
    assert config_hash(cfg) == config_hash(d)  # the field at None is left out of the hash
    assert config_hash(resolve("imagewoof", {"finetune.classes_per_phase": 5})) != config_hash(cfg)


def test_data_roots_are_checked_before_any_work(tmp_path):
    with pytest.raises(DataError, match="no ImageNet root given .*--root"):
        load_data(resolve("imagenet-100", {}))
    make_fake_imagenet(tmp_path, SUBSETS["imageidc"], n_train=1, n_val=1, size=8)  # 10 of the 100 folders
    with pytest.raises(DataError, match="lacks 90 of the chosen wnid folders"):
        load_data(resolve("imagenet-100", {"data.root": str(tmp_path)}))
    with pytest.raises(DataError, match="lacks 990 of the chosen"):
        load_data(resolve("imagenet-1k", {"data.root": str(tmp_path)}))


def test_phases_split_the_list_in_order():
    assert phase_classes(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert phase_classes(4, 20) == [range(0, 4)]
    with pytest.raises(ConfigError, match="classes_per_phase=0 must be a positive integer"):
        phase_classes(4, 0)
    with pytest.raises(ConfigError, match="classes_per_phase=-2"):  # refused with the config, before any work
        resolve("imagenet-100", {"finetune.classes_per_phase": -2})


def test_a_phase_cache_holds_its_classes_relabelled():
    # rows labelled 0,1,2,1,3: phase range(1, 3) keeps rows 1, 2, 3 with labels 1,2,1 -> 0,1,0
    mean = torch.arange(5.0).view(5, 1)
    cache = LatentCache(mean, mean + 10, torch.tensor([0, 1, 2, 1, 3]))
    sub = sub_cache(cache, range(1, 3))
    assert sub.mean.flatten().tolist() == [1.0, 2.0, 3.0] and sub.std.flatten().tolist() == [11.0, 12.0, 13.0]
    assert sub.labels.tolist() == [0, 1, 0]


WNIDS = ["n02869837", "n01749939", "n02488291", "n02107142"]  # the first four of ImageNet-100


def test_phases_fine_tune_separate_runs_and_the_pool_holds_every_class(tmp_path, monkeypatch):
    tree = make_fake_imagenet(tmp_path / "imagenet", WNIDS, n_train=4, n_val=1, size=20)
    models = make_standins(tmp_path / "standins", TINY_RGB_DIT, TINY_RGB_VAE)
    cfg = resolve("imagenet-100", {
        "data.root": str(tree), "data.classes": ",".join(WNIDS), "data.resolution": 16, "data.workers": 0, **models,
        "finetune.classes_per_phase": 2, "finetune.max_steps": 2, "finetune.batch_size": 4, "finetune.n_real": 2,
        "finetune.n_gen": 2, "sample.pool": 2, "sample.steps": 2, "sample.batch_size": 10,
        "eval.networks": ["convnet-3"], "eval.ipcs": [1], "eval.image_size": 16, "eval.epochs": 1,
        "eval.seeds": [0], "eval.batch_size": 8})
    seen = []
    real_finetune = phases.finetune

    def spy(cfg, cache, dit_labels, out, progress=True):
        seen.append((out.name, sorted(cache.labels.unique().tolist()), len(cache), list(dit_labels)))
        return real_finetune(cfg, cache, dit_labels, out, progress=progress)

    monkeypatch.setattr(phases, "finetune", spy)
    csv = tmp_path / "in100.csv"
    run_experiment(cfg, ("ddgd",), tmp_path / "runs", csv, progress=False)
    index = [imagenet_index(w) for w in WNIDS]
    # two runs, each on its two classes (4 images each), conditioned on their ImageNet indices
    assert seen == [("phase0", [0, 1], 8, index[:2]), ("phase1", [0, 1], 8, index[2:])]
    seed_dir = tmp_path / "runs" / "ddgd" / "seed0"
    for p, wnids in ((0, WNIDS[:2]), (1, WNIDS[2:])):
        run = seed_dir / f"phase{p}"
        assert (run / "done.json").is_file() and (run / "ema.pt").is_file()
        assert sorted(f.name for f in (run / "samples").iterdir() if f.is_dir()) == sorted(wnids)
    assert not (seed_dir / "ema.pt").exists() and not (seed_dir / "samples").exists()
    df = pd.read_csv(csv)
    assert df.method.tolist() == ["ddgd"] and df.best.between(0, 100).all()

    from ddgd.experiments.pipeline import sample_pool

    x, y = sample_pool(cfg, seed_dir, load_data(cfg), progress=False)  # read back: every class, 2 images each
    assert y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and x.shape == (8, 3, 16, 16)
    assert not torch.equal(x[0], x[4])  # class 0 of phase 0 and of phase 1: other models, other noise

    # the diversity rows measure the same joined pool: IPC 1 of every class of both phases (a stand-in for
    # Inception's features, which are fetched on first use: the mean colour of each image)
    from ddgd.experiments import diversity

    monkeypatch.setattr(diversity, "inception_network", lambda device: lambda im: im.float().mean(dim=(2, 3)))
    spec = diversity.DiversitySpec(features="inception", real_per_class=2, kid_subsets=2, kid_subset_size=2)
    rows = diversity.diversity_rows(cfg, ("ddgd",), tmp_path / "runs", spec, progress=False)
    assert [(r["class"], r["n_fake"]) for r in rows] == [("all", 4), ("0", 1), ("1", 1), ("2", 1), ("3", 1)]
    (seed_dir / "phase1" / "samples" / "manifest.json").unlink()  # an unfinished phase is named, not sampled
    with pytest.raises(FileNotFoundError, match="phase1/samples"):
        diversity.diversity_rows(cfg, ("ddgd",), tmp_path / "runs", spec, progress=False)
    assert not (seed_dir / "phase1" / "samples" / "manifest.json").exists()
    shutil.rmtree(seed_dir / "phase1")  # a phase never fine-tuned: found missing once the class list is read
    with pytest.raises(FileNotFoundError, match="phase1/samples"):
        diversity.diversity_rows(cfg, ("ddgd",), tmp_path / "runs", spec, progress=False)
    assert not (seed_dir / "phase1").exists()
