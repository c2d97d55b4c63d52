"""`ddgd export`: Hugging Face folders that load offline and hold exactly what the run made."""
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ddgd.cli import main
from ddgd.config import config_hash, from_dict, resolve
from ddgd.experiments.export import ExportError, export
from ddgd.experiments.pipeline import run_experiment
from ddgd.experiments.runs import run_config
from ddgd.method.finetune import load_finetuned
from ddgd.method.models import apply_difffit, fold_difffit, load_transformer, untied_copy
from ddgd.method.sample import PoolError


def _run(root, numerics):
    cfg = resolve("digits-tiny", [f"model.dit_numerics={numerics}"])
    run_experiment(cfg, ("ddgd", "dit"), root, root / "results.csv", progress=False)
    return cfg


@pytest.fixture(scope="module", params=["diffusers", "original"])
def finished(request, tmp_path_factory):
    """A finished digits-tiny experiment (ddgd and dit) with the DiT in either numerics."""
    root = tmp_path_factory.mktemp(f"exp-{request.param}")
    return root, _run(root, request.param)


def test_dataset_loads_offline_with_the_pool_bytes(finished, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    root, _ = finished
    pool = root / "ddgd" / "seed0" / "samples"
    made = export(root / "ddgd" / "seed0", tmp_path / "out", what=("dataset",))
    ds = datasets.load_dataset("imagefolder", data_dir=str(made["dataset"]), split="train")
    manifest = json.loads((pool / "manifest.json").read_text())
    assert len(ds) == len(manifest["files"]) == 40  # 10 classes x the pool of 4
    for row in ds:
        rel = f"{row['class_name']}/{row['index']:04d}.png"
        assert row["sha256"] == manifest["files"][rel]
        assert row["label"] == int(row["class_name"])  # digits: class "k" is label k
        with Image.open(pool / rel) as img:
            assert np.array_equal(np.asarray(row["image"]), np.asarray(img))  # the pixels as sampled
        on_disk = made["dataset"] / "train" / rel
        assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == manifest["files"][rel]
    assert json.loads((made["dataset"] / "ddgd_config.json").read_text()) == manifest["config"]


def test_dataset_card_holds_the_rows_and_hashes_of_the_run(finished, tmp_path):
    root, _ = finished
    made = export(root / "ddgd" / "seed0", tmp_path / "out", what=("dataset",), csvs=[root / "results.csv"])
    card = (made["dataset"] / "README.md").read_text()
    manifest = json.loads((root / "ddgd" / "seed0" / "samples" / "manifest.json").read_text())
    rows = [r for r in (root / "results.csv").read_text().splitlines()[1:] if r.startswith("ddgd,")]
    assert len(rows) == 1  # digits-tiny: IPC 2 x convnet-3 x seed 0
    header = (root / "results.csv").read_text().splitlines()[0].split(",")
    row = dict(zip(header, rows[0].split(",")))
    assert f"| 2 | convnet-3 | 0 | {float(row['best']):.2f} | {float(row['final']):.2f} |" in card
    assert manifest["sample_hash"] in card and config_hash(from_dict(manifest["config"])) in card
    assert card.startswith("---\n") and "class_label:" in card and "num_examples: 40" in card
    # the dit row is another run: its accuracy does not appear on ddgd's card
    dit = [r for r in (root / "results.csv").read_text().splitlines()[1:] if r.startswith("dit,")]
    assert len(dit) == 1 and card.count("| convnet-3 |") == 1


def test_ipc_export_is_the_prefix_of_the_pool(finished, tmp_path):
    root, _ = finished
    made = export(root / "ddgd" / "seed0", tmp_path / "out", what=("dataset",), ipc=2)
    files = sorted(str(p.relative_to(made["dataset"] / "train")) for p in made["dataset"].glob("train/*/*.png"))
    assert files == [f"{c}/{k:04d}.png" for c in range(10) for k in range(2)]
    assert "2 images per class" in (made["dataset"] / "README.md").read_text()


def test_exported_model_computes_what_sampled_the_set(finished, tmp_path):
    from diffusers import DiTTransformer2DModel

    root, cfg = finished
    run = root / "ddgd" / "seed0"
    made = export(run, tmp_path / "out", what=("model",))
    theirs = DiTTransformer2DModel.from_pretrained(made["model"]).eval()  # diffusers alone, no ddgd code
    assert not [n for n, _ in theirs.named_parameters() if "gamma" in n]
    plain = untied_copy(load_transformer("tiny"))
    assert theirs.state_dict().keys() == plain.state_dict().keys()  # diffusers' own layout
    ours = load_finetuned(run_config(cfg, "ddgd", 0), run).cpu()  # the weights sampling used
    reread = load_transformer(str(made["model"]), numerics=cfg.model.dit_numerics).eval()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 4, 4, 4, generator=g)
    t, y = torch.tensor([0, 400, 999]), torch.tensor([1, 7, 10])  # 10: the null class
    with torch.no_grad():
        want = ours(z, timestep=t, class_labels=y).sample
        assert torch.allclose(reread(z, timestep=t, class_labels=y).sample, want, atol=1e-5)
        if cfg.model.dit_numerics == "diffusers":  # plain from_pretrained computes the same function
            assert torch.allclose(theirs(z, timestep=t, class_labels=y).sample, want, atol=1e-5)
    card = (made["model"] / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: diffusers\n") and "label 10" in card
    assert ('numerics="original"' in card) == (cfg.model.dit_numerics == "original")


def test_fold_difffit_multiplies_gammas_into_the_weights():
    model = load_transformer("tiny")
    apply_difffit(model)
    block = model.transformer_blocks[0]
    with torch.no_grad():
        block.attn1.to_q.ddgd_gamma.fill_(2.0)
        block.attn1.to_out[0].ddgd_gamma.fill_(3.0)
        block.attn1.ddgd_gamma.fill_(0.5)  # the whole attention branch: acts on to_out[0] too
    w_q, b_out = block.attn1.to_q.weight.clone(), block.attn1.to_out[0].bias.clone()
    folded = fold_difffit(model).transformer_blocks[0]
    assert torch.equal(folded.attn1.to_q.weight, 2.0 * w_q)  # gamma * (W x + b) = (gamma W) x + gamma b
    assert torch.equal(folded.attn1.to_out[0].bias, 1.5 * b_out)  # 3.0 (its own) x 0.5 (the branch)
    assert not folded.attn1.to_q._forward_hooks and "ddgd_gamma" not in folded.attn1._parameters
    assert "ddgd_gamma" in block.attn1._parameters  # the source model is left as it was


def test_refusals_come_before_anything_is_written(finished, tmp_path):
    root, _ = finished
    run = root / "ddgd" / "seed0"
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="more images than the pool holds"):
        export(run, out, ipc=5)
    with pytest.raises(ExportError, match="no fine-tuned model"):
        export(root / "dit" / "seed0", out)
    with pytest.raises(ExportError, match="holds no sample pool"):
        export(root, out)
    phased = tmp_path / "phased" / "seed0"  # a run fine-tuned in class phases: each phase is a run of its own
    shutil.copytree(run, phased / "phase0")
    for p in (2, 10):  # named in numeric order, not in the order of their names
        shutil.copytree(run, phased / f"phase{p}")
    with pytest.raises(ExportError, match="class phases, one model and pool each \\(phase0, phase2, phase10\\): `ddgd export` "
                                          "takes a run of one model"):
        export(phased, out)
    with pytest.raises(ExportError, match="choose from dataset, model"):
        export(run, out, what=("weights",))
    assert not out.exists()
    export(run, out, what=("dataset",))
    with pytest.raises(ExportError, match="exist"):
        export(run, out)  # dataset/ is there already: nothing is overwritten, no model is written
    assert not (out / "model").exists()


def test_a_tampered_pool_is_refused_naming_the_file(tmp_path):
    root = tmp_path / "exp"
    _run(root, "diffusers")
    victim = root / "ddgd" / "seed0" / "samples" / "3" / "0001.png"
    Image.new("L", (16, 16)).save(victim)
    with pytest.raises(PoolError, match="3/0001.png"):
        export(root / "ddgd" / "seed0", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_interrupted_export_leaves_nothing_that_looks_complete(finished, tmp_path, monkeypatch):
    import shutil

    root, _ = finished
    copied, real_copy = [], shutil.copyfile

    def failing_copy(a, b):
        if len(copied) == 7:
            raise KeyboardInterrupt  # the user's Ctrl-C halfway through the images
        copied.append(b)
        return real_copy(a, b)

    monkeypatch.setattr(shutil, "copyfile", failing_copy)
    with pytest.raises(KeyboardInterrupt):
        export(root / "ddgd" / "seed0", tmp_path / "out", what=("dataset",))
    assert not (tmp_path / "out" / "dataset").exists()  # only dataset.partial, cleared by the next export
    monkeypatch.undo()
    made = export(root / "ddgd" / "seed0", tmp_path / "out", what=("dataset",))
    assert len(list(made["dataset"].glob("train/*/*.png"))) == 40
    assert not (tmp_path / "out" / "dataset.partial").exists()


def test_cli_export_and_its_errors(finished, tmp_path, capsys):
    root, _ = finished
    with pytest.raises(SystemExit) as help_exit:
        main(["export", "--help"])
    assert help_exit.value.code == 0
    assert main(["export", str(root / "ddgd" / "seed0"), "--to", str(tmp_path / "o"), "--ipc", "1"]) == 0
    assert (tmp_path / "o" / "dataset" / "README.md").is_file() and (tmp_path / "o" / "model" / "config.json").is_file()
    assert main(["export", str(root / "dit" / "seed0"), "--to", str(tmp_path / "p")]) == 2
    assert "no fine-tuned model" in capsys.readouterr().err
