"""Files that are either complete or absent: the one way every artefact of `ddgd` is written.

A run may be killed at any moment (a laptop lid, a cluster's time limit, kill -9). Every file is
therefore written under a temporary name beside its target and renamed onto it at the end
(`os.replace` is atomic on POSIX), and every folder is built as ``<name>.partial`` and renamed when
complete. An interruption leaves the old artefact or none, never one that looks complete. A
temporary names the process that writes it, so that the next writer of the same file removes those
of writers that died (a killed run's half checkpoint would otherwise stay beside the new one).
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"
PARTIAL_SUFFIX = ".partial"


def temporaries(path: str | Path) -> list[Path]:
    """The temporaries `atomic_write(path)` leaves when a writer is killed mid-write."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*{TMP_SUFFIX}"))


def _writer_tag() -> str:
    """``w<pid>@<host>``: who writes a temporary (the host too: a shared file system has many writers)."""
    return f"w{os.getpid()}@{socket.gethostname().replace('/', '-')}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def stale_temporaries(path: str | Path) -> list[Path]:
    """The temporaries of `path` whose writer was a process of this host that no longer runs.

    Those of live writers (parallel runs of one preset write one cache), of other hosts, and of
    unknown writers are left alone: only their own writer, or a person, knows they are dead.
    """
    path = Path(path)
    tag = re.compile(r"w(\d+)@(.+)\.[^.]+")
    host = _writer_tag().split("@", 1)[1]
    stale = []
    for tmp in temporaries(path):
        m = tag.fullmatch(tmp.name[len(path.name) + 2:-len(TMP_SUFFIX)])  # .<name>.<tag>.<random>.tmp
        if m and m.group(2) == host and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            stale.append(tmp)
    return stale


@contextmanager
def atomic_write(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a fresh temporary path beside `path`; when the block succeeds, rename it onto `path`.

    The temporary name is unique (parallel writers of one file do not collide) and keeps no suffix
    of the target, so writers that infer a format from the suffix must be told it. On an error the
    temporary is removed and `path` is untouched; temporaries of `path` that killed writers left
    are removed first (`stale_temporaries`). `mode`: the file is readable by every user of the
    machine unless told otherwise (a shared cache; `mkstemp` alone would make it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(path):  # left by a writer killed mid-write
        stale.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{_writer_tag()}.", suffix=TMP_SUFFIX, dir=path.parent)
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
    if resume:
        tmp = partial_dir(out)
        tmp.mkdir(parents=True, exist_ok=True)
    else:
        tmp = start_partial(out)
    yield tmp
    finish_partial(out)


def folder_name(class_name: str) -> str:
    """The folder of a class in an ImageFolder tree ("T-shirt/top" -> "T-shirt-top": no nesting).

    Shared by the writer of sample pools and the reader of image folders, so the two cannot drift.
    """
    return class_name.replace("/", "-")


@contextmanager
def shared_dir(out: str | Path) -> Iterator[Path]:
    """Yield a fresh folder of this writer's own beside `out`; when the block succeeds, rename it to `out`.

    For an artefact that parallel processes may build at once with the same content (a latent cache,
    which parallel seeds of one preset all need): each builds its own folder, the first to finish
    renames it into place, and the others drop theirs. On an error the folder is removed; folders
    that killed writers of this host left are removed first (`stale_temporaries`).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(out):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{_writer_tag()}.", suffix=TMP_SUFFIX, dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp's folder is private; a shared cache is for every user of the machine
        try:
            os.rename(tmp, out)  # atomic; refuses an existing non-empty `out`
        except OSError:
            if not out.is_dir():
                raise
            # another writer finished first: its folder holds the same content, ours is dropped below
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def start_partial(out: str | Path) -> Path:
    """A fresh, empty ``<out>.partial`` (one a killed run left is cleared): what `atomic_dir` yields, for writers
    whose work spans processes (the ranks of a torchrun launch), which no `with` block can hold."""
    tmp = partial_dir(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def finish_partial(out: str | Path) -> Path:
    """Rename the complete ``<out>.partial`` to `out` (atomic): the end of `start_partial`'s folder."""
    os.replace(partial_dir(out), out)
    return Path(out)
