"""Files that are either complete or absent: the one way every artefact of `ddgd` is written.

A run may be killed at any moment (a laptop lid, a cluster's time limit, kill -9). Every file is
therefore written under a temporary name beside its target and renamed onto it at the end
(`os.replace` is atomic on POSIX), and every folder is built as ``<name>.partial`` and renamed when
complete. An interruption leaves the old artefact or none, never one that looks complete.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP_SUFFIX = ".tmp"
PARTIAL_SUFFIX = ".partial"


def temporaries(path: str | Path) -> list[Path]:
    """The temporaries `atomic_write(path)` leaves when a writer is killed mid-write."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"))


@contextmanager
def atomic_write(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a fresh temporary path beside `path`; when the block succeeds, rename it onto `path`.

    The temporary name is unique (parallel writers of one file do not collide) and keeps no suffix
    of the target, so writers that infer a format from the suffix must be told it. On an error the
    temporary is removed and `path` is untouched. `mode`: the file is readable by every user of the
    machine unless told otherwise (a shared cache; `mkstemp` alone would make it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """`path.write_text(text)`, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def partial_dir(out: str | Path) -> Path:
    """The sibling ``<out>.partial`` in which `atomic_dir` builds `out`."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


@contextmanager
def atomic_dir(out: str | Path, fix: str, resume: bool = False) -> Iterator[Path]:
    """Yield the folder ``<out>.partial``; when the block succeeds, rename it to `out`.

    Refuses an existing `out` before any work, with `fix` in the message. `resume=False` starts from
    an empty folder (a partial one left by a killed run is removed); `resume=True` keeps what a
    killed run left there, for writers that resume stage by stage. On an error the partial folder
    stays (it never looks complete) and is cleared or resumed by the next start.
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists already: {fix}")
    tmp = partial_dir(out)
    if tmp.exists() and not resume:
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    yield tmp
    os.replace(tmp, out)


def folder_name(class_name: str) -> str:
    """The folder of a class in an ImageFolder tree ("T-shirt/top" -> "T-shirt-top": no nesting).

    Shared by the writer of sample pools and the reader of image folders, so the two cannot drift.
    """
    return class_name.replace("/", "-")
