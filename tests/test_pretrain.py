"""`ddgd pretrain` end to end on a fake Fashion-MNIST tree, and the model-card helpers on hand-made cards."""
import json
import math

import pytest
import torch

from ddgd.cli import main
from ddgd.method.models import load_transformer, load_vae
from ddgd.embedded.card import card_figures, compare_cards, load_card, same_weights, weights_digests
from fakes import make_fake_fashion_mnist

TINY = ["--size", "tiny", "--vae-steps", "2", "--dit-steps", "2", "--eval-per-class", "2", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    root = tmp_path_factory.mktemp("fashion")
    make_fake_fashion_mnist(root, n=40, all_classes=True)
    return root


def test_pretrain_short_run_writes_a_loadable_model_and_its_card(fashion, tmp_path):
    out = tmp_path / "ldm"
    main(["pretrain", "--out", str(out), "--root", str(fashion), *TINY])
    card = load_card(out)
    assert card["command"].startswith("ddgd pretrain --out") and card["config"]["dit_steps"] == 2
    assert 0.0 <= card["quality"]["conditional_accuracy"] <= 100.0
    assert set(card["quality"]["diversity_ratio_per_class"]) == {str(c) for c in range(10)}
    assert card["reconstruction"]["psnr_db"] > 0 and card["provenance"]["torch"] == torch.__version__.split("+")[0]
    assert "PSNR" in (out / "README.md").read_text()
    grid = torch.load(out / "sample_grid.pt")
    assert grid["images"].dtype == torch.uint8 and grid["images"].shape[1] == 1  # one channel; the tiny DiT samples 16 px
    assert load_transformer(str(out / "transformer")).config.num_embeds_ada_norm == 10
    assert load_vae(str(out / "vae")).config.scaling_factor > 0
    assert not out.with_name("ldm.partial").exists()  # no stage folder is left behind
    assert card["weights_sha256"] == weights_digests(out)  # the card names the weights it describes
    # the same command again gives the same weights (seeded, on one machine)
    again = tmp_path / "again"
    main(["pretrain", "--out", str(again), "--root", str(fashion), *TINY])
    assert same_weights(out, again) == {"vae": True, "transformer": True}
    assert compare_cards(card, load_card(again))["difference"].abs().max() == 0


def test_pretrain_without_data_names_both_ways_to_get_it(tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path / "ldm"), "--root", str(tmp_path / "empty"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST" in err and "apt-get install dataset-fashion-mnist" in err and "download" in err
    assert not (tmp_path / "ldm").exists() and not (tmp_path / "ldm.partial").exists()


def _card(accuracy=90.0, judge=80.0, per_class=(0.4, 0.6), psnr=20.0, per_class_n=50):
    return {"config": {"eval_per_class": per_class_n},
            "quality": {"conditional_accuracy": accuracy, "judge_test_accuracy": judge,
                        "diversity_ratio_mean": sum(per_class) / len(per_class),
                        "diversity_ratio_per_class": {str(i): v for i, v in enumerate(per_class)}},
            "reconstruction": {"psnr_db": psnr, "mse": 0.01, "mae": 0.05}}


def test_card_figures_noise_scales():
    figures = {name: (value, noise) for name, value, noise in card_figures(_card())}
    value, noise = figures["conditional accuracy of guided samples (%)"]
    assert value == 90.0 and noise == pytest.approx(100 * math.sqrt(0.9 * 0.1 / 500))  # 10 classes x 50
    assert figures["judge accuracy on the real test set (%)"][1] == pytest.approx(100 * math.sqrt(0.8 * 0.2 / 10_000))
    # two classes, 0.4 and 0.6: sample std 0.1414, over sqrt(2)
    assert figures["intra-class diversity ratio (mean)"] == (0.5, pytest.approx(0.1))
    assert math.isnan(figures["VAE reconstruction PSNR (dB)"][1])


def test_compare_cards_flags_differences_beyond_two_standard_errors():
    se = 100 * math.sqrt(0.9 * 0.1 / 500)  # 1.34 points
    table = compare_cards(_card(), _card(accuracy=90.0 + 1.9 * se, psnr=21.0)).set_index("figure")
    assert table.loc["conditional accuracy of guided samples (%)", "within_noise"] is True
    assert table.loc["VAE reconstruction PSNR (dB)", "difference"] == pytest.approx(1.0)
    assert table.loc["VAE reconstruction PSNR (dB)", "within_noise"] is None
    far = compare_cards(_card(), _card(accuracy=90.0 - 2.1 * se)).set_index("figure")
    assert far.loc["conditional accuracy of guided samples (%)", "within_noise"] is False


def test_load_card_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="card.json.*ddgd pretrain --out"):
        load_card(tmp_path)
    (tmp_path / "card.json").write_text(json.dumps(_card()))
    assert load_card(tmp_path)["quality"]["conditional_accuracy"] == 90.0
