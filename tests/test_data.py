"""Tests of ddgd.protocol.data: class indices, the ImageNet root checks, the loaders, baselines."""
import gzip
import shutil
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ddgd.protocol import data
from ddgd.protocol.data import (DATASETS, class_indices, class_names, load_digits_images, load_fashion_mnist,
                                load_image_folder, load_real, read_idx, real_baseline)
from ddgd.protocol.imagenet import (SUBSETS, DataError, ImageNetSubset, adm_center_crop, check_imagenet_root,
                                    diffusion_transform, eval_transform, imagenet_index, imagenet_wnids)
from fakes import make_fake_fashion_mnist, make_fake_imagenet, write_idx


# ----------------------------------------------------------------------------- class labels
def test_subsets_are_ten_distinct_imagenet_classes():
    wnids = set(imagenet_wnids())
    assert set(SUBSETS) == {"imagewoof", "imagenette", "imageidc"}
    assert DATASETS == ("imagewoof", "imagenette", "imageidc", "imagenet", "fashion-mnist", "fashion-tops", "fashion-other",
                        "digits", "imagefolder", "cifar10", "cifar100")
    for name, subset in SUBSETS.items():
        assert len(subset) == 10 and len(set(subset)) == 10, name
        assert set(subset) <= wnids, name


def test_wnid_list_is_the_canonical_sorted_list():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    assert wnids == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[-1] == "n15075141"


def test_imagenet_index_of_known_classes():
    assert imagenet_index("n01440764") == 0  # tench
    assert imagenet_index("n02086240") == 155  # Shih-Tzu
    assert imagenet_index("n02096294") == 193  # Australian terrier
    assert imagenet_index("n02115641") == 273  # dingo
    assert imagenet_index("n15075141") == 999  # toilet tissue
    with pytest.raises(DataError, match="n99999999"):
        imagenet_index("n99999999")


def test_class_indices_and_names():
    # the ImageWoof and ImageNette indices of the fastai subsets
    assert class_indices("imagewoof") == [193, 182, 258, 162, 155, 167, 159, 273, 207, 229]
    assert class_indices("imagenette") == [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
    assert class_indices("imageidc") == [imagenet_index(w) for w in SUBSETS["imageidc"]]
    assert class_indices("fashion-mnist") == list(range(10)) == class_indices("digits")
    assert class_names("imagewoof") == SUBSETS["imagewoof"]
    assert class_names("fashion-mnist")[0] == "T-shirt/top" and class_names("fashion-mnist")[9] == "Ankle boot"
    assert class_names("digits") == [str(d) for d in range(10)]
    with pytest.raises(DataError, match="imagewolf"):
        class_indices("imagewolf")


# ----------------------------------------------------------------------------- ImageNet subsets
@pytest.fixture(scope="module")
def woof_root(tmp_path_factory):
    """A fake ImageNet tree holding only the ImageWoof folders."""
    return make_fake_imagenet(tmp_path_factory.mktemp("imagenet"), SUBSETS["imagewoof"], n_train=3, n_val=2)


def test_subset_labels_follow_the_subset_not_the_folder_listing(woof_root):
    train = ImageNetSubset(woof_root, "imagewoof", "train")
    assert len(train) == 30 and train.targets == [c for c in range(10) for _ in range(3)]
    index = class_indices("imagewoof")
    for path, label in train.samples:
        wnid = path.parent.name
        assert label == SUBSETS["imagewoof"].index(wnid)
        assert index[label] == imagenet_index(wnid)  # the label DiT is conditioned on
    # the released code's way (position in the listing) would label the Shih-Tzu 0 and condition on class 0
    listing = sorted(p.name for p in (woof_root / "train").iterdir())
    assert listing.index("n02086240") == 0 != SUBSETS["imagewoof"].index("n02086240")
    img, label = train[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and label == 0


def test_subset_transforms(woof_root):
    val = ImageNetSubset(woof_root, "imagewoof", "val", transform=diffusion_transform(16))
    x, label = val[3]
    assert len(val) == 20 and label == 1
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert -1.0 <= x.min() < 0.0 < x.max() <= 1.0
    images, labels = load_real("imagewoof", "val", root=woof_root, resolution=24)
    assert images.shape == (20, 3, 24, 24) and images.dtype == torch.uint8
    assert labels.tolist() == [c for c in range(10) for _ in range(2)]
    y = eval_transform(24)(Image.new("RGB", (50, 40), (10, 200, 30)))
    assert y.shape == (3, 24, 24) and y.dtype == torch.uint8 and y[:, 12, 12].tolist() == [10, 200, 30]


def test_incomplete_root_names_the_missing_wnids(tmp_path):
    root = make_fake_imagenet(tmp_path, SUBSETS["imagewoof"], n_train=1, n_val=1, size=8)
    shutil.rmtree(root / "val" / "n02115641")
    shutil.rmtree(root / "val" / "n02105641")
    check_imagenet_root(root, "imagewoof", ("train",))  # train is complete
    with pytest.raises(DataError) as err:
        check_imagenet_root(root, "imagewoof")
    msg = str(err.value)
    assert "n02115641" in msg and "n02105641" in msg and "n02096294" not in msg and "valprep" in msg
    with pytest.raises(DataError, match="n02115641"):
        ImageNetSubset(root, "imagewoof", "val")
    with pytest.raises(DataError, match="lacks 10"):
        check_imagenet_root(root, "imagenette")
    with pytest.raises(DataError, match="does not exist"):
        check_imagenet_root(tmp_path / "nowhere", "imagewoof")
    with pytest.raises(DataError, match="no ImageNet root"):
        check_imagenet_root(None, "imagewoof")
    shutil.rmtree(root / "val")
    with pytest.raises(DataError, match="missing"):
        check_imagenet_root(root, "imagewoof")


def test_adm_center_crop_keeps_the_centre():
    # 400 x 100, thirds in red, blue, green; the square crop (columns 150-250) must be all blue
    arr = np.zeros((100, 400, 3), np.uint8)
    arr[:, :134, 0] = arr[:, 134:266, 2] = arr[:, 266:, 1] = 255
    out = np.asarray(adm_center_crop(Image.fromarray(arr), 32))
    assert out.shape == (32, 32, 3)
    assert out[:, :, 2].min() > 200 and out[:, :, :2].max() < 60


# ----------------------------------------------------------------------------- Fashion-MNIST
def test_fashion_idx_parsing(tmp_path):
    arrays = make_fake_fashion_mnist(tmp_path)
    for split in ("train", "test"):
        x, y = load_fashion_mnist(split, root=tmp_path)
        assert x.shape == (5, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
        assert np.array_equal(x[:, 0].numpy(), arrays[split][0]) and np.array_equal(y.numpy(), arrays[split][1])
    x32, _ = load_real("fashion-mnist", "test", root=tmp_path, resolution=32)
    assert x32.shape == (5, 1, 32, 32) and x32[:, :, :2].max() == 0 and x32[:, :, -2:].max() == 0
    assert torch.equal(x32[:, :, 2:30, 2:30], x)


def test_fashion_in_torchvision_layout(tmp_path):
    make_fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw", n=3)
    assert len(load_fashion_mnist("train", root=tmp_path)[0]) == 3


def test_corrupt_idx_files(tmp_path):
    short = tmp_path / "short.gz"  # the header promises 5 images, the data holds 4 bytes
    with gzip.open(short, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 5, 28, 28) + b"\0" * 4)
    with pytest.raises(DataError, match="truncated"):
        read_idx(short)
    bad = tmp_path / "bad.gz"
    write_idx(bad, np.zeros((2, 2)), magic=0x0D02)  # float data, not unsigned bytes
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)
    cut = tmp_path / "cut.gz"  # a gzip stream cut in the middle
    write_idx(cut, np.zeros((50, 28, 28)))
    cut.write_bytes(cut.read_bytes()[:30])
    with pytest.raises(DataError, match="corrupt"):
        read_idx(cut)


def test_fashion_missing_everywhere_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setenv("DDGD_DATA", str(tmp_path / "cache"))
    with pytest.raises(DataError) as err:
        load_fashion_mnist("train")
    msg = str(err.value)
    assert str(tmp_path / "debian") in msg and str(tmp_path / "cache" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=True" in msg


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_files():
    x, y = load_fashion_mnist("test", root=data.DEBIAN_FASHION_MNIST)
    assert x.shape == (10000, 1, 28, 28) and torch.bincount(y).tolist() == [1000] * 10


# ----------------------------------------------------------------------------- digits and baselines
def test_digits_loader():
    x, y = load_digits_images("train", size=16)
    xt, yt = load_digits_images("test", size=16)
    assert x.shape == (1437, 1, 16, 16) and xt.shape == (360, 1, 16, 16) and x.dtype == torch.uint8
    assert int(x.max()) == 255 and set(y.tolist()) == set(range(10)) == set(yt.tolist())
    assert torch.equal(load_real("digits", "test", resolution=16)[0], xt)
    assert load_digits_images("test", size=8)[0].shape == (360, 1, 8, 8)


def test_real_baseline_random_and_full():
    labels = torch.arange(60) % 3  # 20 images of each of 3 classes
    images = torch.arange(60, dtype=torch.uint8).view(60, 1, 1, 1)  # each image holds its own index
    x, y = real_baseline("random", images, labels, ipc=4, seed=7)
    assert torch.bincount(y).tolist() == [4, 4, 4]
    assert torch.equal(labels[x.flatten().long()], y)  # images travel with their labels
    assert len(set(x.flatten().tolist())) == 12  # without replacement
    assert torch.equal(real_baseline("random", images, labels, 4, seed=7)[0], x)
    assert not torch.equal(real_baseline("random", images, labels, 4, seed=8)[0], x)
    fx, fy = real_baseline("full", images, labels, ipc=4, seed=0)
    assert torch.equal(fx, images) and torch.equal(fy, labels)
    with pytest.raises(ValueError, match="fewer than IPC 21"):
        real_baseline("random", images, labels, ipc=21, seed=0)
    with pytest.raises(ValueError, match="unknown real baseline"):
        real_baseline("herding", images, labels, ipc=1, seed=0)


def test_image_folder_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (2, 3, 6, 8, 3), dtype=np.uint8)  # class, image, H, W, C
    for c, name in enumerate(["b", "a"]):
        (tmp_path / name).mkdir()
        for k in range(3):
            Image.fromarray(rgb[c, k]).save(tmp_path / name / f"{k:04d}.png")
    x, y = load_image_folder(tmp_path, ["b", "a"])
    assert x.shape == (6, 3, 6, 8) and x.dtype == torch.uint8 and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.array_equal(x.permute(0, 2, 3, 1).numpy(), rgb.reshape(6, 6, 8, 3))  # PNG is lossless
    x_sorted, y_sorted = load_image_folder(tmp_path)  # default: sorted folders, "a" first
    assert torch.equal(x_sorted[:3], x[3:]) and y_sorted.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DataError, match="c"):
        load_image_folder(tmp_path, ["a", "b", "c"])


def test_image_folder_reads_the_sampler_export(tmp_path):
    from ddgd.method.sample import write_image_folder

    names = class_names("fashion-mnist")  # "T-shirt/top" holds a slash
    images = torch.randint(0, 256, (20, 1, 32, 32), dtype=torch.uint8)
    labels = torch.arange(10).repeat_interleave(2)
    write_image_folder(images, labels, names, tmp_path / "out", {"note": "test"})
    x, y = load_image_folder(tmp_path / "out", names)
    assert torch.equal(x, images) and torch.equal(y, labels)


def test_fashion_subsets_relabel_and_condition_on_the_original_class(monkeypatch):
    from ddgd.protocol import data

    x = torch.arange(20, dtype=torch.uint8).reshape(20, 1, 1, 1).expand(20, 1, 28, 28).contiguous()
    y = torch.arange(20) % 10
    monkeypatch.setattr(data, "load_fashion_mnist", lambda split, root=None, download=False: (x, y))
    xs, ys = data.load_real("fashion-tops", "train", resolution=32)
    assert xs.shape == (10, 1, 32, 32)
    assert ys.tolist() == [0, 1, 2, 3, 4] * 2
    assert data.class_indices("fashion-tops") == [0, 2, 3, 4, 6]
    assert data.class_names("fashion-other")[0] == "Trouser"
    # the local label of an image follows its original class
    assert int(xs[1, 0, 16, 16]) == 2 and int(xs[4, 0, 16, 16]) == 6
