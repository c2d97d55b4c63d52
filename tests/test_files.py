"""base/files and base/accel.torch_threads: artefacts are complete or absent, thread counts come back."""
import os

import pytest
import torch

from ddgd.base.accel import torch_threads
from ddgd.base.files import atomic_dir, atomic_write, partial_dir, temporaries, write_text


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and not temporaries(path)  # the old file, no temporary left
    with atomic_write(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".a.json.")  # beside it: os.replace stays atomic
        tmp.write_text("new")
    assert path.read_text() == "new" and not temporaries(path)
    assert os.stat(path).st_mode & 0o777 == 0o644  # readable by every user, unlike mkstemp's 0600


def test_atomic_dir_refuses_an_existing_folder_and_never_looks_complete(tmp_path):
    out = tmp_path / "pool"
    with pytest.raises(ValueError):
        with atomic_dir(out, "delete it") as tmp:
            (tmp / "x.png").write_bytes(b"1")
            raise ValueError("interrupted")
    assert not out.exists() and (partial_dir(out) / "x.png").exists()  # only the .partial folder
    with atomic_dir(out, "delete it") as tmp:  # a fresh start clears what the interrupted one left
        assert not any(tmp.iterdir())
        (tmp / "y.png").write_bytes(b"2")
    assert sorted(p.name for p in out.iterdir()) == ["y.png"] and not partial_dir(out).exists()
    with pytest.raises(FileExistsError, match="pool exists already: delete it"):
        with atomic_dir(out, "delete it"):
            pass


def test_atomic_dir_resume_keeps_the_stages_done(tmp_path):
    out = tmp_path / "model"
    partial_dir(out).mkdir()
    (partial_dir(out) / "vae_stage.json").write_text("{}")
    with atomic_dir(out, "x", resume=True) as tmp:
        assert (tmp / "vae_stage.json").exists()
    assert (out / "vae_stage.json").exists()


def test_torch_threads_restores_the_count_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(KeyError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise KeyError
    assert torch.get_num_threads() == before
    with torch_threads(None):  # None: leave it as it is
        assert torch.get_num_threads() == before
