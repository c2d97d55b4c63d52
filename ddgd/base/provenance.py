"""Where a result comes from: the versions, commit and hardware of a run.

`provenance()` is recorded with every result row (`ddgd.experiments.results.result_row`), every sample pool
and the shipped model card; `provenance_line` turns the provenance columns of result rows back
into the one line a table of the book prints under itself.
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read_commit() -> str:
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if status else "")


@functools.cache
def git_commit() -> str:
    """The repository's commit, with "-dirty" if tracked files differ from it; "unknown" outside git.

    Read once per process, the first time it is asked (no git call at import; `run_experiment`
    asks as it starts): a long run that outlives a commit (the full CPU preset takes hours) keeps
    recording the code it started with, not what the repository holds when each later row is written.
    """
    return _read_commit()


def hardware() -> str:
    """GPU name(s) if CUDA is available, else the CPU model and the number of cores torch uses."""
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return f"{names[0]} x{len(names)}" if len(set(names)) == 1 else ", ".join(names)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:  # Linux; elsewhere the platform string above stands
            for line in fh:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads of {os.cpu_count()} cores"


def provenance() -> dict:
    """Versions, commit and hardware recorded with every result row."""
    return {"python": platform.python_version(), "torch": _version("torch"), "torchvision": _version("torchvision"),
            "diffusers": _version("diffusers"), "ddgd": _version("ddgd"), "commit": git_commit(),
            "hardware": hardware()}


def _distinct(values, shorten=None) -> str:
    found = sorted({str(v) for v in values if isinstance(v, str) or v == v})  # v == v drops NaN
    return ", ".join(shorten(v) if shorten else v for v in found) or "unknown"


def short_commit(commit: str) -> str:
    sha, dirty = (commit[:-6], "-dirty") if commit.endswith("-dirty") else (commit, "")
    return sha[:12] + dirty


def provenance_line(rows) -> str:
    """"commit ...; hardware: ...; torch ..." from the provenance columns of result rows (a DataFrame).

    Every distinct value is listed, so rows from several commits or machines say so; the summed
    `wall_s` of the rows tells what the evaluations cost.
    """
    if len(rows) == 0:
        return "no result rows yet"
    cols = {c: _distinct(rows[c], short_commit if c == "commit" else None) if c in rows.columns else "unknown"
            for c in ("commit", "hardware", "torch")}
    line = f"commit {cols['commit']}; hardware: {cols['hardware']}; torch {cols['torch']}"
    if "wall_s" in rows.columns:  # the evaluations' own clock: fine-tuning and sampling come on top
        line += f"; evaluation wall time {float(rows['wall_s'].astype(float).sum()) / 60:.0f} min in all"
    return line
