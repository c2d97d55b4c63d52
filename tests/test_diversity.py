"""Distribution metrics of distilled sets: exact cases of each figure, and the rows of a digits run."""
import csv
import json
import math
import socket
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from ddgd.protocol.diversity import distribution_metrics, fid, kid, prdc, vendi


@pytest.fixture
def points():
    return np.random.default_rng(0).normal(size=(40, 6))  # distinct pairwise distances (no ties, almost surely)


def test_a_set_against_itself_has_every_prdc_figure_one(points):
    # Fake = real: every fake point lies on its real twin (distance 0 < its k-NN radius), so precision,
    # recall and coverage are 1. Density: each real ball holds exactly k points strictly inside it (itself
    # and its k - 1 nearest neighbours; the k-th lies on the border), so the mean count is N k / (k N) = 1.
    assert prdc(points, points, k=5) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_far_apart_clusters_share_nothing(points):
    # Every real-fake distance (about 1000) exceeds every k-NN radius within a set (a few units).
    assert prdc(points, points + 1000.0, k=3) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_half_the_real_points_reached_gives_half_the_coverage():
    # Real: 10 points at 0 .. 9 on a line and 10 at 1000 .. 1009. Fake = the first cluster: every fake
    # point is a real point, so precision = 1; only the real points of the first cluster have a fake point
    # inside their k-NN ball (radius >= 1), so recall = coverage = 10 / 20.
    line = np.arange(10.0)[:, None]
    real = np.vstack([line, line + 1000.0])
    out = prdc(real, line.copy(), k=2)
    assert out["precision"] == 1.0 and out["recall"] == 0.5 and out["coverage"] == 0.5


def test_prdc_needs_k_plus_2_points_and_says_nan_below(points):
    assert all(math.isnan(v) for v in prdc(points, points[:6], k=5).values())  # 6 < k + 2
    assert not any(math.isnan(v) for v in prdc(points, points[:7], k=5).values())
    with pytest.raises(ValueError, match="positive integer"):
        prdc(points, points, k=0)
    with pytest.raises(ValueError, match="same network"):
        prdc(points, points[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        prdc(points, np.full((10, 6), np.nan))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        prdc(points, points[0])


def test_vendi_counts_distinct_images():
    # One image repeated: the cosine kernel is all ones, eigenvalues of K/n are (1, 0, ...): exp(0) = 1.
    assert vendi(np.tile([[1.0, 2.0, 3.0]], (7, 1))) == pytest.approx(1.0)
    # n orthogonal images: K = I, eigenvalues 1/n each, exp(log n) = n (n <= D: the n x n kernel).
    assert vendi(np.eye(4)) == pytest.approx(4.0)
    assert vendi(3.0 * np.eye(12)[:5]) == pytest.approx(5.0)  # scale does not matter: cosine similarity
    # 3 orthogonal images, 5 copies each (n = 15 > D = 3: the D x D kernel): eigenvalues 5/15 three times -> 3.
    assert vendi(np.repeat(np.eye(3), 5, axis=0)) == pytest.approx(3.0)
    assert math.isnan(vendi(np.zeros((0, 3))))


def test_fid_of_a_shifted_set_is_the_squared_shift(points):
    # Same covariance, means apart by v: FID = |v|^2 + Tr(S + S - 2 (S S)^1/2) = |v|^2.
    v = np.array([3.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    assert fid(points, points) == pytest.approx(0.0, abs=1e-6)
    assert fid(points, points + v) == pytest.approx(25.0, rel=1e-6)
    assert math.isnan(fid(points, points[:1]))


def test_kid_is_seeded_and_leaves_torch_s_generator_alone(points):
    torch.manual_seed(7)
    before = torch.get_rng_state()
    a = kid(points, points + 0.5, subsets=10, subset_size=20, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert a == kid(points, points + 0.5, subsets=10, subset_size=20, seed=3)
    assert kid(points, points + 100.0, subsets=10, subset_size=20)[0] > 100 * a[0] > 0
    assert all(math.isnan(x) for x in kid(points, points[:1]))


def test_distribution_metrics_reports_the_set_sizes(points):
    out = distribution_metrics(points, points[:10], k=3, kid_subsets=5)
    assert out["n_real"] == 40 and out["n_fake"] == 10 and out["k"] == 3
    assert out["precision"] == 1.0 and 0 < out["coverage"] < 1  # a subset lies on the real manifold


# ----------------------------------------------------------------------------- the rows of a run
@pytest.fixture(scope="module")
def digits_pools(tmp_path_factory):
    from ddgd.cli import main

    out = tmp_path_factory.mktemp("digits") / "runs"
    assert main(["distill", "--preset", "digits-tiny", "--method", "ddgd", "--out", str(out), "--quiet"]) == 0
    for method in ("dit", "ddgd"):
        assert main(["sample", "--preset", "digits-tiny", "--method", method, "--out", str(out), "--quiet"]) == 0
    return out


def test_rows_of_a_digits_run(digits_pools, tmp_path, monkeypatch):
    from ddgd.config import resolve
    from ddgd.experiments.diversity import DIVERSITY_COLUMNS, DiversitySpec, diversity_path, run_diversity

    def no_network(*args, **kwargs):
        raise AssertionError("the diversity metrics tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)  # nothing downloads: the judge is trained here
    cfg = resolve("digits-tiny")
    spec = DiversitySpec(real_per_class=30, kid_subsets=5, digits_judge_epochs=1)
    path = run_diversity(cfg, ("dit", "ddgd", "random"), digits_pools, tmp_path / "r.csv", spec, progress=False)
    assert path == diversity_path(tmp_path / "r.csv") == tmp_path / "r.diversity.csv"
    with open(path, newline="") as fh:
        header = next(csv.reader(fh))
        fh.seek(0)
        rows = list(csv.DictReader(fh))
    assert tuple(header) == DIVERSITY_COLUMNS
    # 3 methods x IPC 2 x seed 0 x (the class 'all' + 10 classes)
    assert len(rows) == 3 * 11 and {(r["method"], r["ipc"], r["seed"]) for r in rows} == {
        (m, "2", "0") for m in ("dit", "ddgd", "random")}
    assert len({r["feature_space"] for r in rows}) == 1 and "digits" in rows[0]["feature_space"]
    whole = [r for r in rows if r["class"] == "all"]
    parts = [r for r in rows if r["class"] != "all"]
    assert {r["n_fake"] for r in whole} == {"20"} and {r["n_real"] for r in whole} == {"300"}
    assert {r["n_fake"] for r in parts} == {"2"} and {r["n_real"] for r in parts} == {"30"}
    # 20 points are enough for prdc at k = 5, 2 are not (k + 2 = 7): blank, never a made-up number
    assert all(0 <= float(r[c]) <= 1 for r in whole for c in ("precision", "recall", "coverage"))
    assert all(r[c] == "" for r in parts for c in ("precision", "recall", "density", "coverage"))
    assert all(1 <= float(r["vendi"]) <= float(r["n_fake"]) + 1e-6 for r in rows)
    assert all(float(r["fid"]) >= -1e-6 and r["kid_mean"] != "" for r in rows)
    assert {r["torch"] for r in rows} == {metadata.version("torch")} and all(r["commit"] for r in rows)
    # a generative row's config hash is its pool's sample hash: the rows say which pool they measured
    manifest = json.loads((digits_pools / "ddgd" / "seed0" / "samples" / "manifest.json").read_text())
    assert {r["config_hash"] for r in rows if r["method"] == "ddgd"} == {manifest["sample_hash"]}
    # a rerun replaces its rows (same key), another method's rows stay
    run_diversity(cfg, ("dit",), digits_pools, tmp_path / "r.csv", spec, progress=False)
    with open(path, newline="") as fh:
        again = list(csv.DictReader(fh))
    assert len(again) == 33 and sorted(r["method"] for r in again) == sorted(r["method"] for r in rows)


def test_clear_errors_before_any_work(digits_pools, tmp_path):
    from ddgd.config import resolve
    from ddgd.experiments.diversity import DiversitySpec, run_diversity

    cfg = resolve("digits-tiny")
    with pytest.raises(FileNotFoundError, match="ddgd sample --preset digits-tiny"):
        run_diversity(cfg, ("minimax",), digits_pools, tmp_path / "r.csv")  # no pool sampled
    with pytest.raises(ValueError, match="`full` is the real training set"):
        run_diversity(cfg, ("full",), digits_pools, tmp_path / "r.csv")
    with pytest.raises(ValueError, match="choose one of judge, inception"):
        run_diversity(cfg, ("dit",), digits_pools, tmp_path / "r.csv", DiversitySpec(features="clip"))
    with pytest.raises(ValueError, match="features='inception'"):
        run_diversity(resolve("imagenette"), ("dit",), digits_pools, tmp_path / "r.csv")
    assert not (tmp_path / "r.diversity.csv").exists()


def test_the_inception_space_gets_three_channels_and_names_itself(digits_pools, tmp_path, monkeypatch):
    # Torch-fidelity's weights are fetched on first use, never in a test: a stand-in takes their place
    # and shows what the network is given (uint8 RGB images).
    from ddgd.config import resolve
    from ddgd.experiments import diversity

    seen = []

    def stand_in(device):
        def net(x):
            seen.append((x.dtype, x.shape[1]))
            return x.float().mean(dim=(2, 3)).repeat(1, 4)  # [B, 12]
        return net

    monkeypatch.setattr(diversity, "inception_network", stand_in)
    spec = diversity.DiversitySpec(features="inception", real_per_class=10, kid_subsets=2)
    rows = diversity.diversity_rows(resolve("digits-tiny"), ("dit",), digits_pools, spec, progress=False)
    assert {r["feature_space"] for r in rows} == {"inception-v3 pool 2048-d (torch-fidelity weights)"}
    assert set(seen) == {(torch.uint8, 3)}


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "data" / "judge" / "card.json").is_file(),
                    reason="no shipped judge in data/judge")
def test_fashion_mnist_is_measured_in_the_shipped_judge_s_space():
    from ddgd.config import resolve
    from ddgd.experiments.diversity import DiversitySpec, feature_space

    space = feature_space(resolve("fashion-mnist-quick"), DiversitySpec(), data=None)
    card = json.loads((Path(__file__).resolve().parents[1] / "data" / "judge" / "card.json").read_text())
    assert f"sha256:{card['weights_sha256'][:12]}" in space.name and "128-d" in space.name
    images = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    assert space.embed(images).shape == (3, 128)
    assert space.embed(images[:, :, 2:-2, 2:-2]).shape == (3, 128)  # 28 px: resized to the judge's 32 px


def test_the_diversity_command(digits_pools, tmp_path, capsys):
    from ddgd.cli import main

    root = digits_pools
    csv = tmp_path / "r.csv"
    assert main(["diversity", "--preset", "digits-tiny", "--out", str(root), "--csv", str(csv), "--methods", "ddgd",
                 "--quiet"]) == 0
    rows = (tmp_path / "r.diversity.csv").read_text().splitlines()
    assert len(rows) == 1 + 11 and rows[1].startswith("ddgd,digits,2,0,all,")  # header, 'all' and 10 classes
    assert main(["diversity", "--preset", "digits-tiny", "--out", str(root), "--csv", str(csv), "--methods", "full",
                 "--quiet"]) == 2
    assert "no diversity rows for full" in capsys.readouterr().err


def test_the_page_measures_only_the_sets_it_lacks(digits_pools, tmp_path):
    # dit's rows are measured once; afterwards its pool is gone, and the page still gets ddgd's rows
    # without asking for dit's pool (the old rule measured every method again and failed on it)
    import shutil

    from ddgd.config import resolve
    from ddgd.experiments.diversity import DiversitySpec, run_diversity
    from ddgd.pages.diversity_accuracy import diversity_of

    cfg, spec = resolve("digits-tiny"), DiversitySpec(real_per_class=10, kid_subsets=2, digits_judge_epochs=1)
    run_diversity(cfg, ("dit",), digits_pools, tmp_path / "r.csv", spec, progress=False)
    only_ddgd = tmp_path / "runs"
    shutil.copytree(digits_pools / "ddgd", only_ddgd / "ddgd")
    rows = diversity_of(cfg, ["dit", "ddgd"], tmp_path / "r.csv", only_ddgd, compute=True, spec=spec)
    assert sorted(rows["method"]) == ["ddgd", "dit"] and set(rows["class"].astype(str)) == {"all"}
