"""The hard-label protocol (book page Parity) and the result CSV of every run."""
import csv
import os

import pytest
import torch

from ddgd.experiments import results
from ddgd.config import EvalConfig
from ddgd.protocol.schedule import epochs_for_ipc, evaluation_epochs, num_epochs
from ddgd.protocol.evaluate import prepare_images, train_and_test
from ddgd.experiments.results import RESULT_COLUMNS, append_result, completed_runs, result_row, run_key

TINY = EvalConfig(image_size=8, epochs=12, evaluations=3, batch_size=8)


def two_classes(n, seed, dtype=torch.float32):
    """Class 0: dark constant images; class 1: bright ones (8 px, one channel), with a little noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (0.2 + 0.6 * y.float()).view(-1, 1, 1, 1) + 0.05 * torch.randn(n, 1, 8, 8, generator=g)
    x = x.clamp(0, 1)
    return ((x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x), y


@pytest.mark.parametrize("ipc, epochs", [(1, 3000), (2, 2000), (10, 2000), (11, 1500), (50, 1500), (51, 1000),
                                         (200, 1000), (201, 500), (500, 500), (501, 300), (5000, 300)])
def test_epochs_for_ipc(ipc, epochs):
    assert epochs_for_ipc(ipc) == epochs


def test_epochs_for_ipc_refuses_zero():
    with pytest.raises(ValueError, match="positive"):
        epochs_for_ipc(0)


def test_num_epochs_scale_floor_and_override():
    assert num_epochs(EvalConfig(), 10) == 2000
    assert num_epochs(EvalConfig(epoch_scale=0.1), 1) == 300
    assert num_epochs(EvalConfig(epoch_scale=1e-4, min_epochs=5), 10) == 5
    assert num_epochs(EvalConfig(epochs=7, epoch_scale=0.1), 10) == 7


def test_evaluation_epochs_are_spread_and_end_at_the_end():
    assert evaluation_epochs(100, 10) == list(range(10, 101, 10))
    assert evaluation_epochs(3, 10) == [1, 2, 3]
    assert evaluation_epochs(7, 0) == [7]
    assert evaluation_epochs(1000, 3)[-1] == 1000


def test_prepare_images_resizes_and_checks():
    u8 = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    out = prepare_images(u8, 32)
    assert out.shape == (3, 1, 32, 32) and out.dtype == torch.uint8
    assert prepare_images(u8, 32, keep_native=True) is u8  # the crop samples native images directly
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        prepare_images(torch.full((1, 1, 4, 4), -0.5), 4)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        prepare_images(torch.zeros(4, 4), 4)


def test_train_and_test_learns_a_separable_problem_deterministically():
    train_x, train_y = two_classes(8, 0)
    test_x, test_y = two_classes(40, 1)
    threads = torch.get_num_threads()
    r = train_and_test(train_x, train_y, test_x, test_y, "convnet-3", TINY, seed=0, ipc=4, progress=False,
                       threads=1)  # tiny tensors: one thread is fastest on a busy machine
    assert torch.get_num_threads() == threads  # restored
    assert r["best"] >= 95 and r["final"] >= 90
    assert r["epochs"] == 12 and [e for e, _ in r["history"]] == [4, 8, 12]
    assert r["best"] == max(a for _, a in r["history"]) and r["final"] == r["history"][-1][1]
    assert r["images_per_second"] > 0 and r["wall_s"] > 0
    again = train_and_test(train_x, train_y, test_x, test_y, "convnet-3", TINY, seed=0, ipc=4, progress=False,
                           threads=1)
    assert again["history"] == r["history"]


def test_train_and_test_uint8_test_limit_and_caller_rng_untouched():
    train_x, train_y = two_classes(8, 0, torch.uint8)
    test_x, test_y = two_classes(40, 1, torch.uint8)
    cfg = EvalConfig(image_size=8, epochs=2, evaluations=1, batch_size=8, test_limit=7, cutmix_beta=0.0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    r = train_and_test(train_x, train_y, test_x, test_y, "convnet-3", cfg, seed=3, ipc=4, progress=False, threads=1)
    assert torch.equal(torch.rand(1), before)
    assert all(round(a * 7 / 100) == pytest.approx(a * 7 / 100) for _, a in r["history"])  # k of 7 images


def test_train_and_test_refuses_mismatched_labels():
    x, y = two_classes(8, 0)
    with pytest.raises(ValueError, match="one label per image"):
        train_and_test(x, y[:5], x, y, "convnet-3", TINY, seed=0, ipc=4, progress=False)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken_compile(model, **kwargs):
        def fn(x):
            raise RuntimeError("no compiler")
        return fn

    monkeypatch.setattr(torch, "compile", broken_compile)
    x, y = two_classes(8, 0)
    cfg = EvalConfig(image_size=8, epochs=1, evaluations=1, batch_size=8, compile=True)
    with pytest.warns(RuntimeWarning, match="no compiler"):
        r = train_and_test(x, y, x, y, "convnet-3", cfg, seed=0, ipc=4, progress=False, threads=1)
    assert 0 <= r["final"] <= 100


PROV = {"torch": "2.x", "diffusers": "0.x", "ddgd": "0.1.0", "commit": "abc", "hardware": "cpu"}


def row(seed, method="ddgd", best=50.0):
    res = {"best": best, "final": best - 1, "epochs": 10, "wall_s": 1.5}
    return result_row(method, "fashion-mnist", 10, "convnet-3", seed, res, "h1", provenance=PROV)


def test_result_row_has_every_column():
    assert list(row(0)) == list(RESULT_COLUMNS)


def test_append_result_and_completed_runs_roundtrip(tmp_path):
    path = tmp_path / "sub" / "results.csv"
    assert completed_runs(path) == set()
    append_result(path, row(0))
    append_result(path, row(1, method="minimax"))
    with open(path) as fh:
        lines = fh.read().splitlines()
    assert lines[0].split(",") == list(RESULT_COLUMNS) and len(lines) == 3
    keys = completed_runs(path)
    assert keys == {run_key("ddgd", "fashion-mnist", 10, "convnet-3", 0, "h1"),
                    run_key("minimax", "fashion-mnist", "10", "convnet-3", "1", "h1")}
    assert run_key("ddgd", "fashion-mnist", 10, "convnet-3", 2, "h1") not in keys


def test_append_result_adds_new_columns(tmp_path):
    path = tmp_path / "r.csv"
    append_result(path, row(0))
    append_result(path, {**row(1), "note": "extra"})
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["note"] for r in rows] == ["", "extra"] and rows[1]["seed"] == "1"


def test_append_result_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    append_result(path, row(0))
    before = path.read_bytes()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        append_result(path, row(1))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [".r.csv.lock", "r.csv"]  # no temporary file left behind


def test_completed_runs_refuses_a_foreign_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="config_hash"):
        completed_runs(path)


def _append_many(args):
    path, writer = args
    for k in range(15):
        append_result(path, {"method": "ddgd", "dataset": "digits", "ipc": 1, "network": "convnet-3",
                             "seed": writer, "best": float(k), "final": float(k), "epochs": 1,
                             "config_hash": f"{writer:06d}{k:06d}"})


def test_parallel_writers_keep_every_row(tmp_path):
    import multiprocessing

    path = tmp_path / "r.csv"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(path, w) for w in range(4)])
    keys = completed_runs(path)
    assert len(keys) == 60 and {k[4] for k in keys} == {0, 1, 2, 3}
