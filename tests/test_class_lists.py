"""ImageNet class lists of one's own (book page Parity): listed wnids, a seeded draw, and the refusals.

`data.dataset=imagenet` takes its classes from `data.classes` (wnids, in label order) or from
`data.class_draw` / `data.class_seed` (IDC's --nclass / --dseed draw); `subset_classes` is the one
place that turns a config into the list, and `check_classes` refuses a bad list before any work.
"""
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from ddgd.config import ConfigError, DataConfig, config_hash, resolve
from ddgd.experiments.pipeline import load_data, real_set
from ddgd.protocol.data import class_indices, class_names, data_classes
from ddgd.protocol.imagenet import (SUBSETS, ImageNetSubset, check_classes, draw_classes, imagenet_wnids,
                                    subset_classes, subset_name)

from fakes import make_fake_imagenet

# Three ImageNette classes listed out of their sorted order; ImageNet-1k indices 217, 0 and 491
# (the 218th, 1st and 492nd line of imagenet_wnids.txt; test_data.py pins the ImageNette indices).
LISTED = ("n02102040", "n01440764", "n03000684")
DISTRACTOR = "n02979186"  # present on disk, not listed: must be left out


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_fake_imagenet(tmp_path_factory.mktemp("imagenet"), [*LISTED, DISTRACTOR], n_train=3, n_val=2, size=20)


def listed_cfg(tree, **extra):
    return resolve("imagewoof", {"data.dataset": "imagenet", "data.classes": ",".join(LISTED), "data.root": str(tree),
                                 "data.workers": 0, "data.resolution": 16, "eval.image_size": 16, **extra})


def test_a_wnid_list_selects_those_folders_in_its_order(tree):
    cfg = listed_cfg(tree)
    assert cfg.data.classes == LISTED  # the override string is parsed into a tuple of wnids
    classes = subset_classes(cfg.data)
    assert classes == list(LISTED) == data_classes(cfg.data)
    subset = ImageNetSubset(tree, classes, "train")
    # label k holds exactly the files of the k-th listed wnid; the distractor folder is never read
    assert [(p.parent.name, y) for p, y in subset.samples] == [(w, k) for k, w in enumerate(LISTED) for _ in range(3)]
    assert class_names(classes) == list(LISTED)
    assert class_indices(classes) == [217, 0, 491]  # DiT's labels: the ImageNet-1k index of each wnid
    data = load_data(cfg)
    assert data.names == list(LISTED) and data.dit_labels == [217, 0, 491]
    assert data.test_y.tolist() == [0, 0, 1, 1, 2, 2] and data.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    x, y = real_set(cfg, data, "random", 2, seed=0)  # the baselines read the same three folders
    assert x.shape == (6, 3, 16, 16) and y.tolist() == [0, 0, 1, 1, 2, 2]


def test_a_fixed_subset_is_its_list():
    cfg = resolve("imagenette")
    assert subset_classes(cfg.data) == SUBSETS["imagenette"] and subset_name(cfg.data) == "imagenette"
    assert data_classes(resolve("digits-tiny").data) == "digits"


def test_the_seeded_draw_is_idcs_deterministic_and_seed_dependent():
    # Written out once from NumPy's frozen RandomState stream: the first five of
    # RandomState(1).permutation(1000) are 507, 818, 452, 368, 242, these lines of imagenet_wnids.txt (from 0).
    expected = ["n03075370", "n04286575", "n02869837", "n02483362", "n02108089"]
    assert draw_classes(5, 1) == expected
    assert draw_classes(5, 1) == expected  # the same on every call
    assert draw_classes(5, 2) != expected  # another seed, other classes
    # IDC's own code path (data.py, find_subclasses): seed NumPy's global generator, permute the class folders
    state = np.random.get_state()
    try:
        np.random.seed(1)
        idc = [imagenet_wnids()[i] for i in np.random.permutation(1000)[:5]]
    finally:
        np.random.set_state(state)
    assert idc == expected
    assert draw_classes(8, 1)[:5] == expected  # a larger draw extends a smaller one
    assert len(set(draw_classes(1000, 3))) == 1000  # a draw of all 1000 is a permutation
    cfg = resolve("imagewoof", {"data.dataset": "imagenet", "data.class_draw": 5, "data.class_seed": 1})
    assert subset_classes(cfg.data) == expected


def test_the_index_of_each_hand_written_class():
    wnids = imagenet_wnids()
    assert [wnids.index(w) for w in draw_classes(5, 1)] == [507, 818, 452, 368, 242]
    assert class_indices(draw_classes(5, 1)) == [507, 818, 452, 368, 242]  # DiT's labels of the drawn classes


@pytest.mark.parametrize("fields, match", [
    (dict(classes=("n01440764", "n99999999")), r"'n99999999'.*imagenet_wnids\.txt"),
    (dict(classes=("n01440764", "n02102040", "n01440764")), r"n01440764 more than once"),
    (dict(classes=("n01440764",)), r"needs two or more"),
    (dict(classes="n01440764,n02102040"), r"tuple of wnid strings"),
    (dict(class_draw=1001), r"class_draw=1001.*between 2 and 1000"),
    (dict(class_draw=0), r"between 2 and 1000"),
    (dict(class_draw=10, class_seed=-1), r"class_seed=-1"),
    (dict(classes=("n01440764", "n02102040"), class_draw=10), r"both set.*keep one"),
    (dict(), r"needs its classes.*data\.classes=.*data\.class_draw=K"),
    (dict(classes=("n01440764", "n02102040"), class_seed=3),
     r"class_seed=3 seeds data\.class_draw.*drop data\.class_seed"),
])
def test_bad_lists_fail_naming_the_fix(fields, match):
    with pytest.raises(ConfigError, match=match):
        check_classes(DataConfig(dataset="imagenet", **fields))


@pytest.mark.parametrize("dataset", ["imagewoof", "digits"])
def test_a_fixed_dataset_takes_no_class_list(dataset):
    with pytest.raises(ConfigError, match=r"takes no data\.classes.*data\.dataset=imagenet"):
        check_classes(DataConfig(dataset=dataset, classes=("n01440764", "n02102040")))
    with pytest.raises(ConfigError, match="takes no data.classes"):
        check_classes(DataConfig(dataset=dataset, class_draw=10))
    check_classes(DataConfig(dataset=dataset))  # the defaults pass


def test_a_bad_list_fails_before_any_work(tmp_path):
    # no data root at all: the class list is refused first, so no folder is ever looked at
    cfg = replace(resolve("imagewoof"), data=DataConfig(dataset="imagenet", classes=("n01440764", "nonsense")))
    with pytest.raises(ConfigError, match="'nonsense'"):
        load_data(cfg)
    digits = resolve("digits-tiny")
    with pytest.raises(ConfigError, match="not ImageNet"):  # a list on a dataset that takes none is refused too
        load_data(replace(digits, data=replace(digits.data, classes=("n01440764", "n02102040"))))


def test_new_fields_at_their_defaults_keep_every_hash(tree):
    cfg = resolve("imagewoof")
    old = asdict(cfg)
    for key in ("classes", "class_draw", "class_seed"):
        del old["data"][key]  # a config written before the fields existed
    del old["eval"]["augment"]
    assert config_hash(old) == config_hash(cfg) and config_hash(old, "data") == config_hash(cfg, "data")
    one, two = listed_cfg(tree), listed_cfg(tree, **{"data.classes": ",".join(reversed(LISTED))})
    assert len({config_hash(one), config_hash(two), config_hash(cfg)}) == 3  # another order is another subset
    drawn = [resolve("imagewoof", {"data.dataset": "imagenet", "data.class_draw": 5, "data.class_seed": seed})
             for seed in (0, 1)]
    assert config_hash(drawn[0]) != config_hash(drawn[1])
    # each list has a latent cache of its own
    assert subset_name(one.data) != subset_name(two.data) and subset_name(one.data).startswith("imagenet3-")


def test_wnid_lists_reach_the_loaders(tree):
    from ddgd.protocol.loaders import StreamedSet, test_images

    x, y = test_images(tree, list(LISTED[:2]), 16, 16, workers=0)
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0, 0, 1, 1]
    stream = StreamedSet(tree, list(LISTED), 16, workers=0, per_class=1)
    assert stream.labels.tolist() == [0, 1, 2] and torch.equal(stream.labels, torch.tensor([0, 1, 2]))
