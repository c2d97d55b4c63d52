"""The feature judge of the diversity metrics: training, saving, loading, and the shipped judge."""
import json
from pathlib import Path

import pytest
import torch

from ddgd.embedded.judge import JudgeConfig, accuracy, build_judge, embed, load_judge, main, train_judge
from ddgd.protocol.data import load_digits_images
from fakes import make_fake_fashion_mnist

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "judge"
DIGITS = JudgeConfig(epochs=4, resolution=16)  # about 3 s on one core


@pytest.fixture(scope="module")
def digits():
    return load_digits_images("train", 16), load_digits_images("test", 16)


def test_the_judge_learns_digits_and_is_seeded(digits):
    (x, y), (xt, yt) = digits
    judge = train_judge(x, y, DIGITS, progress=False)
    assert accuracy(judge, xt, yt) >= 85.0  # 93 % at seed 0; chance is 10 %
    again = train_judge(x, y, DIGITS, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), again.state_dict().values()))
    other = train_judge(x, y, JudgeConfig(epochs=1, resolution=16, seed=1), progress=False)
    assert not torch.equal(judge.features[0].weight, other.features[0].weight)
    feats = embed(judge, xt[:7])
    assert feats.shape == (7, DIGITS.feature_dim) and (feats >= 0).all()  # after the ReLU


def test_bad_input_is_refused_with_the_fix(digits):
    (x, y), _ = digits
    with pytest.raises(ValueError, match="uint8 tensor"):
        train_judge(x.float(), y, DIGITS)
    with pytest.raises(ValueError, match="one label per image"):
        train_judge(x, y[:-1], DIGITS)
    with pytest.raises(ValueError, match="at least 8 px"):
        train_judge(x[:, :, :4, :4], y, DIGITS)


def test_build_save_and_load_on_a_fake_fashion_mnist(tmp_path):
    make_fake_fashion_mnist(tmp_path / "fm", n=40, all_classes=True)
    cfg = JudgeConfig(epochs=1, width=4, feature_dim=8, batch_size=16)
    card = build_judge(tmp_path / "judge", cfg, data_root=tmp_path / "fm", progress=False, command="test")
    on_disk = json.loads((tmp_path / "judge" / "card.json").read_text())
    assert on_disk == card and card["config"]["seed"] == 0 and card["train_images"] == card["test_images"] == 40
    assert 0.0 <= card["test_accuracy"] <= 100.0 and card["provenance"]["torch"]
    judge, loaded = load_judge(tmp_path / "judge")
    assert loaded == card and judge.arch == dict(channels=1, num_classes=10, width=4, feature_dim=8, dropout=0.3)
    images = torch.randint(0, 256, (5, 1, 32, 32), dtype=torch.uint8)
    assert embed(judge, images).shape == (5, 8)
    # the folder exists: refused before any data is read
    with pytest.raises(FileExistsError, match="delete it"):
        build_judge(tmp_path / "judge", cfg, data_root=tmp_path / "missing")
    # an edited weight file is caught by its digest
    weights = tmp_path / "judge" / "judge.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="SHA-256"):
        load_judge(tmp_path / "judge")
    with pytest.raises(FileNotFoundError, match="python -m ddgd.embedded.judge"):
        load_judge(tmp_path / "nothing")


def test_the_entry_point_writes_a_judge(tmp_path, capsys):
    make_fake_fashion_mnist(tmp_path / "fm", n=20, all_classes=True)
    assert main(["--out", str(tmp_path / "j"), "--epochs", "1", "--data-root", str(tmp_path / "fm"), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert json.loads((tmp_path / "j" / "card.json").read_text())["command"].startswith("python -m ddgd.embedded.judge")


@pytest.mark.skipif(not (SHIPPED / "card.json").is_file(), reason="no shipped judge in data/judge")
def test_the_shipped_judge_loads_and_reaches_90_percent():
    from ddgd.protocol.data import DataError, load_real

    judge, card = load_judge(SHIPPED)  # also checks the weights against the card's SHA-256
    assert card["test_accuracy"] >= 90.0 and card["test_images"] == 10_000 and card["config"]["seed"] == 0
    try:
        x, y = load_real("fashion-mnist", "test", resolution=card["config"]["resolution"])
    except DataError:
        pytest.skip("Fashion-MNIST is not installed here: the card's accuracy cannot be checked")
    assert round(accuracy(judge, x, y), 2) == pytest.approx(card["test_accuracy"], abs=0.02)
