"""Figure 3 helpers (ddgd.pages.figure3): picking, montage, the stored gallery and its diversity sentences."""
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ddgd.pages import figure3 as gallery  # noqa: E402
from ddgd.protocol import data  # noqa: E402
from ddgd.config import resolve  # noqa: E402
from ddgd.embedded.quality import train_judge  # noqa: E402

NAMES = [str(i) for i in range(10)]


@pytest.fixture
def cfg():
    return resolve("digits-tiny")


def _sets(n_classes=3, per=4, size=6):
    """Sets of class-major uint8 images [n_classes * per, 1, size, size]; each image's pixels hold its index."""
    x = torch.arange(n_classes * per, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, size, size).contiguous()
    y = torch.arange(n_classes).repeat_interleave(per)
    return {name: (x + k, y) for k, name in enumerate(("real", "dit", "minimax", "ddgd"))}


def test_first_per_class_picks_in_the_order_of_classes():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    images = torch.arange(8).view(8, 1, 1, 1)
    x, y = gallery.first_per_class(images, labels, [2, 0], 2)
    assert x.flatten().tolist() == [5, 6, 0, 1] and y.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="class 1 holds 2 images, fewer than the 3"):
        gallery.first_per_class(images, labels, [1], 3)


def test_resize_and_montage_shapes():
    x = torch.full((6, 1, 4, 4), 7, dtype=torch.uint8)
    assert data.resize(x, 4) is x
    small = data.resize(x, 2)
    assert small.shape == (6, 1, 2, 2) and small.dtype == torch.uint8 and (small == 7).all()
    grid = gallery.montage(x, per_row=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)  # rows of 3 images of 4 px with 1 px gaps, RGB
    assert (grid[0] == 255).all() and (grid[1:5, 1:5] == 7).all()


def test_spec_check_names_the_problem(cfg):
    with pytest.raises(ValueError, match="add 'sample.pool': 9"):
        gallery.GallerySpec(ipc=9).check(cfg)
    with pytest.raises(ValueError, match="per_class 5 must lie between 2 and ipc"):
        gallery.GallerySpec(ipc=4, per_class=5).check(cfg)
    with pytest.raises(ValueError, match="indices below 10"):
        gallery.GallerySpec(ipc=4, per_class=2, classes=(0, 12)).check(cfg, 10)
    with pytest.raises(ValueError, match="unknown method"):
        gallery.GallerySpec(ipc=4, per_class=2, methods=("real",)).check(cfg)
    gallery.GallerySpec(ipc=4, per_class=2).check(cfg, 10)  # fine


def _write(tmp_path, cfg, spec):
    rows = [dict(method=m, class_index=c, class_name=str(c), images=4, diversity=d, judge_accuracy=50.0)
            for m, d in (("real", 1.0), ("dit", 0.5), ("minimax", 0.6), ("ddgd", 0.7)) for c in range(3)]
    meta = {"config_hash": gallery.gallery_hash(cfg, spec.seed), "judge": {"test_accuracy": 90.0, "train_images": 12}}
    return gallery.write_gallery(tmp_path / "g", _sets(), spec, NAMES, rows, meta)


def test_write_then_load_round_trip(tmp_path, cfg):
    spec = gallery.GallerySpec(classes=(2, 0), per_class=2, ipc=4)
    out = _write(tmp_path, cfg, spec)
    assert not (tmp_path / "g.partial").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["class_names"] == ["2", "0"] and manifest["spec"]["classes"] == [2, 0]
    assert "commit" in manifest["provenance"]
    sets, rows, loaded = gallery.load_gallery(out, cfg, spec)
    assert list(sets) == ["real", "dit", "minimax", "ddgd"]
    x, y = sets["minimax"]  # images 8, 9 (class 2) then 0, 1 (class 0), each + 2
    assert x[:, 0, 0, 0].tolist() == [10, 11, 2, 3] and y.tolist() == [0, 0, 1, 1]
    assert len(rows) == 12 and loaded["judge"]["test_accuracy"] == 90.0
    with pytest.raises(FileExistsError, match="delete it"):
        _write(tmp_path, cfg, spec)


def test_load_refuses_a_gallery_of_other_settings(tmp_path, cfg):
    out = _write(tmp_path, cfg, gallery.GallerySpec(classes=(2, 0), per_class=2, ipc=4))
    with pytest.raises(ValueError, match=r"per_class: stored 2, asked 3"):
        gallery.load_gallery(out, cfg, gallery.GallerySpec(classes=(2, 0), per_class=3, ipc=4))
    with pytest.raises(ValueError, match="config_hash"):
        gallery.load_gallery(out, resolve(cfg, {"finetune.lambda_r": 0.1}),
                             gallery.GallerySpec(classes=(2, 0), per_class=2, ipc=4))


def test_a_gallery_does_not_depend_on_the_evaluation_settings(tmp_path, cfg):
    """A gallery fine-tunes and samples but evaluates nothing: other seeds to evaluate or epochs keep it valid."""
    spec = gallery.GallerySpec(classes=(2, 0), per_class=2, ipc=4)
    out = _write(tmp_path, cfg, spec)
    other = resolve(cfg, {"eval.seeds": [0, 1, 2], "eval.epochs": 7})
    assert gallery.gallery_hash(other, spec.seed) == gallery.gallery_hash(cfg, spec.seed)
    gallery.load_gallery(out, other, spec)
    assert gallery.gallery_hash(cfg, 1) != gallery.gallery_hash(cfg, 0)  # the seed is what it samples with


def test_gallery_reads_a_stored_one_and_never_recomputes_it(tmp_path, cfg, monkeypatch):
    spec = gallery.GallerySpec(classes=(1,), per_class=2, ipc=4)
    with pytest.raises(FileNotFoundError, match="compute=True"):
        gallery.gallery(cfg, spec, tmp_path / "g", tmp_path / "runs", compute=False)
    _write(tmp_path, cfg, spec)

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a stored gallery")

    monkeypatch.setattr(gallery, "compute_gallery", boom)
    sets, rows, manifest, computed = gallery.gallery(cfg, spec, tmp_path / "g", tmp_path / "runs", compute=True)
    assert computed is False and sets["ddgd"][0].shape == (2, 1, 6, 6)


def test_judge_rows_per_class():
    torch.manual_seed(0)
    real_x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    real_y = torch.arange(4).repeat_interleave(10)
    judge = train_judge(real_x, real_y, epochs=1, progress=False)
    rows = gallery.judge_rows(judge, "ddgd", real_x[:20], real_y[:20], real_x, real_y, NAMES)
    assert [r["class_index"] for r in rows] == [0, 1] and all(r["images"] == 10 for r in rows)
    assert all(r["diversity"] > 0 and 0 <= r["judge_accuracy"] <= 100 for r in rows)


def _rows(ddgd, minimax):
    data = [("real", c, 1.0) for c in range(len(minimax))] + [("minimax", c, d) for c, d in enumerate(minimax)]
    data += [("ddgd", c, d) for c, d in enumerate(ddgd)]
    return pd.DataFrame([dict(method=m, class_index=c, diversity=d, judge_accuracy=80.0) for m, c, d in data])


def test_describe_diversity_says_which_way_it_goes():
    # higher in every one of six classes, by 0.1 to 0.4: the interval over classes lies above 0
    more = gallery.describe_diversity(_rows([0.9, 0.8, 0.6, 0.7, 0.6, 0.8], [0.5] * 6), others=("minimax", "dit"))
    assert more.startswith("DDGD (ours) is more diverse than Minimax by this measure: mean ratio 0.73 against "
                           "0.50, higher in 6 of 6 classes; paired by class, +0.23 (95 % CI +0.15 to +0.32, "
                           "6 classes): more diverse.")
    assert "real images of the same size scores 1.00" in more and "DiT" not in more
    less = gallery.describe_diversity(_rows([0.4] * 6, [0.5] * 6), others=("minimax",))
    assert "is less diverse than Minimax" in less and "higher in 0 of 6" in less and "): less diverse." in less
    # higher in 4 of 6 classes, but by little against a large loss in one: the interval holds 0
    mixed = gallery.describe_diversity(_rows([0.6, 0.6, 0.6, 0.6, 0.0, 0.5], [0.5] * 6), others=("minimax",))
    assert "not told apart in diversity from Minimax" in mixed and "): unresolved." in mixed
    # three classes are too few for a verdict; the phrase names classes, not seeds
    few = gallery.describe_diversity(_rows([0.9, 0.8, 0.7], [0.5] * 3), others=("minimax",))
    assert "3 classes): too few classes for a verdict (it takes 6)" in few and "seed" not in few
    assert gallery.describe_diversity(_rows([], [0.5]).query("method != 'ddgd'")).startswith("No diversity")


def test_diversity_summary_and_plot(cfg):
    s = gallery.diversity_summary(_rows([0.9, 0.8, 0.4], [0.5, 0.5, 0.5]))
    assert list(s.index) == ["Original", "Minimax", "DDGD (ours)"]
    assert s.loc["DDGD (ours)", "diversity"] == pytest.approx(0.7) and s.loc["DDGD (ours)", "lowest"] == 0.4
    sets = {k: gallery.first_per_class(x, y, [0, 2], 3) for k, (x, y) in _sets().items()}
    fig = gallery.plot_gallery(sets, ["0", "2"], 3)
    assert [ax.get_title() for ax in fig.axes] == ["Original", "DiT", "Minimax", "DDGD (ours)"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0", "2"]
    plt.close(fig)
