"""Failures that used to end in a raw traceback now name the problem and the fix, before any work."""
import os
import subprocess
import sys

import pytest

from fakes import make_fake_imagenet

from ddgd.config import PRESETS
from ddgd.protocol.imagenet import SUBSETS


def _ddgd(args, env_extra, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run([sys.executable, "-m", "ddgd", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("command", [["run", "--methods", "dit,ddgd"], ["distill", "--method", "ddgd"]])
def test_an_unreachable_hub_stops_the_run_before_any_work(tmp_path, command):
    root = make_fake_imagenet(tmp_path / "imagenet", SUBSETS["imagewoof"], n_train=1, n_val=1)
    cache = tmp_path / "latent-cache"
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "DDGD_CACHE": str(cache)}  # nothing cached
    out = tmp_path / "exp"
    result = _ddgd([*command, "--preset", "imagewoof", "--root", str(root), "--out", str(out), "--quiet",
                    *(["--csv", str(tmp_path / "r.csv")] if command[0] == "run" else [])], env, tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    model = PRESETS["imagewoof"].model.dit
    assert f"could not load {model!r} from the model hub" in result.stderr
    assert f"hf download {model}" in result.stderr and "local save_pretrained folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert not cache.exists() or not any(cache.iterdir())  # no latent was encoded
    assert not (tmp_path / "r.csv").exists()


def test_check_available_names_a_folder_without_a_config(tmp_path):
    from ddgd.method.hub import check_available

    (tmp_path / "weights").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        check_available(str(tmp_path / "weights"), "transformer")
    with pytest.raises(FileNotFoundError, match="neither a local folder, a hub id"):
        check_available("no-such-model", "vae")
    check_available("tiny", "transformer")  # small configs need nothing


def test_a_truncated_png_is_named_with_the_fix(tmp_path, capsys):
    from ddgd.cli import main
    from ddgd.method.sample import write_image_folder

    import torch

    images = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    folder = write_image_folder(images, torch.arange(20) % 10, [str(d) for d in range(10)], tmp_path / "pool", {})
    (folder / "manifest.json").unlink()  # a folder from elsewhere: no manifest to check it against
    victim = folder / "3" / "0001.png"
    victim.write_bytes(victim.read_bytes()[:40])  # cut short, as by a full disk or an interrupted copy
    code = main(["evaluate", "--preset", "digits-tiny", "--folder", str(folder), "--csv", str(tmp_path / "r.csv"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"{victim} is not a readable image" in err and "replace or delete it" in err
    assert not (tmp_path / "r.csv").exists()
