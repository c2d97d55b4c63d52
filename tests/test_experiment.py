"""End to end on sklearn's digits: distill -> sample -> evaluate for every method, resumable CSV."""
import json

import pandas as pd
import pytest

from ddgd.cli import main
from ddgd.config import resolve
from ddgd.experiments.pipeline import results_of, run_experiment


def test_every_method_end_to_end_and_rerun_skips(tmp_path):
    cfg = resolve("digits-tiny")
    csv = tmp_path / "results.csv"
    run_experiment(cfg, ("dit", "finetune", "minimax", "ddgd", "random", "full"), tmp_path / "runs", csv,
                   progress=False)
    df = pd.read_csv(csv)
    assert sorted(df.method) == sorted(["dit", "finetune", "minimax", "ddgd", "random", "full"])
    assert df.best.between(0, 100).all() and (df.best >= df["final"]).all()
    assert int(df[df.method == "full"].ipc.iloc[0]) > 100  # the whole training set per class
    # pools and configs beside the artefacts
    manifest = json.loads((tmp_path / "runs" / "ddgd" / "seed0" / "samples" / "manifest.json").read_text())
    assert manifest["config"]["finetune"]["method"] == "ddgd" and sum(manifest["counts"].values()) == 40
    assert (tmp_path / "runs" / "ddgd" / "seed0" / "config.json").is_file()
    mtime = csv.stat().st_mtime_ns
    run_experiment(cfg, ("ddgd", "random"), tmp_path / "runs", csv, progress=False)
    assert csv.stat().st_mtime_ns == mtime  # nothing recomputed, nothing rewritten
    configs = json.loads((tmp_path / "results.configs.json").read_text())
    assert set(df.config_hash) <= set(configs)  # every row's resolved config beside the CSV
    # what a table page reads: the rows of the asked methods under this config, and nothing computed
    runs = results_of(cfg, ["ddgd", "random"], csv, tmp_path / "runs", compute=True, threads=1)
    assert sorted(runs.method) == ["ddgd", "random"] and csv.stat().st_mtime_ns == mtime
    assert results_of(resolve(cfg, {"eval.epochs": 3}), ["ddgd"], csv, tmp_path / "runs").empty


def test_results_of_computes_with_the_asked_threads_and_restores_them(tmp_path, monkeypatch):
    import torch

    from ddgd.experiments import pipeline as experiment

    seen = []
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    experiment.results_of(resolve("digits-tiny"), ["ddgd"], tmp_path / "r.csv", tmp_path, compute=True, threads=1)
    experiment.results_of(resolve("digits-tiny"), ["ddgd"], tmp_path / "r.csv", tmp_path, compute=False, threads=1)
    assert seen == [1] and torch.get_num_threads() == before


def test_cli_commands_and_clear_errors(tmp_path, capsys):
    out = str(tmp_path / "exp")
    assert main(["distill", "--preset", "digits-tiny", "--method", "minimax", "--out", out, "--quiet"]) == 0
    assert main(["sample", "--preset", "digits-tiny", "--method", "minimax", "--out", out, "--quiet"]) == 0
    csv = str(tmp_path / "r.csv")
    assert main(["evaluate", "--preset", "digits-tiny", "--method", "minimax", "--out", out, "--csv", csv,
                 "--quiet"]) == 0
    assert main(["report", csv]) == 0
    assert "minimax" in capsys.readouterr().out
    assert main(["report", csv, "--references", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert "minimax" in out and "Published numbers" in out and "KIP" in out
    assert main(["distill", "--preset", "digits-tiny", "-o", "finetune.n_real=0", "--out", out]) == 2
    assert "n_real" in capsys.readouterr().err
    assert main(["distill", "--preset", "digits-tiny", "-o", "eval.ipcs=9", "--out", out]) == 2
    assert "sample.pool" in capsys.readouterr().err
    assert main(["distill", "--preset", "digits-tiny", "-o", "finetune.memory_rule=lifo", "--out", out]) == 2
    assert "lifo" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["distill", "sample", "evaluate", "verify", "run", "pretrain", "report", "reproduce"])
def test_help_describes_options(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "usage: ddgd" in capsys.readouterr().out


def test_a_tampered_pool_is_refused_before_any_training(tmp_path, capsys):
    # Delete, swap or edit an image of a finished pool, or its hash in the manifest: `ddgd verify` and
    # every reader of the pool name the files, and no row is written.
    out = str(tmp_path / "exp")
    csv = tmp_path / "r.csv"
    assert main(["sample", "--preset", "digits-tiny", "--method", "dit", "--out", out, "--quiet"]) == 0
    pool = tmp_path / "exp" / "dit" / "seed0" / "samples"
    assert main(["verify", str(pool.parent)]) == 0 and "match their manifest" in capsys.readouterr().out
    first, second = sorted(pool.glob("*/*.png"))[:2]
    original = first.read_bytes()
    first.write_bytes(second.read_bytes())  # a swapped image
    assert main(["verify", str(pool)]) == 2
    assert f"changed since sampling: {first.parent.name}/{first.name}" in capsys.readouterr().err
    argv = ["evaluate", "--preset", "digits-tiny", "--method", "dit", "--out", out, "--csv", str(csv), "--quiet"]
    assert main(argv) == 2 and not csv.exists()
    assert "does not match its manifest" in capsys.readouterr().err
    first.write_bytes(original)
    manifest = json.loads((pool / "manifest.json").read_text())
    manifest["files"][f"{first.parent.name}/{first.name}"] = "0" * 64  # an edited hash
    (pool / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(pool)]) == 2
    first.unlink()
    assert main(["verify", str(pool)]) == 2 and "missing" in capsys.readouterr().err


def test_two_runs_of_one_seed_on_one_folder_take_turns(tmp_path):
    # Two writers on the same experiment folder and CSV (threads here; the lock is a POSIX file lock,
    # so processes behave alike): both finish, and every run's row is there exactly once.
    import threading

    cfg = resolve("digits-tiny")
    errors = []

    def go():
        try:
            run_experiment(cfg, ("dit", "ddgd"), tmp_path / "runs", tmp_path / "r.csv", progress=False)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    df = pd.read_csv(tmp_path / "r.csv")
    assert sorted(df.method) == ["ddgd", "dit"]  # one row each, no duplicate


def test_a_stale_temporary_of_the_results_file_is_removed(tmp_path):
    from ddgd.experiments.results import append_result

    stale = tmp_path / ".r.csv.abc123.tmp"
    stale.write_text("half a file")
    append_result(tmp_path / "r.csv", {"method": "dit", "dataset": "digits", "ipc": 2, "network": "convnet-3",
                                       "seed": 0, "best": 1.0, "final": 1.0, "epochs": 1, "config_hash": "x"})
    assert not stale.exists()


def test_cli_refuses_an_ignored_root_and_an_out_that_is_a_file(tmp_path, capsys):
    assert main(["distill", "--preset", "digits-tiny", "--root", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "--root has no effect" in capsys.readouterr().err
    afile = tmp_path / "a-file"
    afile.write_text("")
    assert main(["distill", "--preset", "digits-tiny", "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_the_latent_cache_is_readable_by_everyone(tmp_path):
    import torch

    from ddgd.method.latents import LatentCache

    path = tmp_path / "cache"
    LatentCache(torch.zeros(1, 2, 1, 1, 1), torch.ones(1, 2, 1, 1, 1), torch.zeros(1)).save(path, {"k": 1})
    assert path.stat().st_mode & 0o777 == 0o755
    assert sorted(f.name for f in path.iterdir()) == ["labels.npy", "mean.npy", "meta.json", "std.npy"]
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in path.iterdir())


def test_a_bf16_row_says_so_in_its_provenance(tmp_path):
    # bf16 autocast changes the numbers (benchmarks/results/precision-summary.csv): the row names it
    cfg = resolve("digits-tiny", {"model.precision": "bf16", "eval.precision": "bf16"})
    csv = tmp_path / "r.csv"
    run_experiment(cfg, ("ddgd", "random"), tmp_path / "runs", csv, progress=False)
    df = pd.read_csv(csv).set_index("method")
    assert df.loc["ddgd", "hardware"].endswith("; bf16 autocast: model, eval")
    assert df.loc["random", "hardware"].endswith("; bf16 autocast: eval")  # no model makes real images
    fp32 = tmp_path / "fp32.csv"
    run_experiment(resolve("digits-tiny"), ("random",), tmp_path / "runs32", fp32, progress=False)
    assert "autocast" not in pd.read_csv(fp32).hardware.iloc[0]
