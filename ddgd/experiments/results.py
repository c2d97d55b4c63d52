"""Result files: one tidy CSV row per run (method, dataset, IPC, network, seed), with provenance.

Every runner (`ddgd.experiments.pipeline`, `ddgd.experiments.variants`, `ddgd evaluate`) writes its rows here and every table
reads them through `ddgd.experiments.report`. A row is keyed by `run_key` (its config hash included), so a rerun
skips the runs a file already holds (`completed_runs`); rows are appended atomically, and parallel
writers take turns (`locked`).
"""
from __future__ import annotations

import csv
import fcntl
import io
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ddgd.base.files import atomic_write, temporaries

RESULT_COLUMNS = ("method", "dataset", "ipc", "network", "seed", "best", "final", "epochs", "config_hash",
                  "torch", "diffusers", "ddgd", "commit", "hardware", "wall_s", "timestamp")
KEY_COLUMNS = ("method", "dataset", "ipc", "network", "seed", "config_hash")


def run_key(method: str, dataset: str, ipc: int, network: str, seed: int, config_hash: str) -> tuple:
    """The identity of one run: what `completed_runs` returns and a runner checks before training."""
    return (str(method), str(dataset), int(ipc), str(network), int(seed), str(config_hash))


def result_row(method: str, dataset: str, ipc: int, network: str, seed: int, result: dict, config_hash: str,
               provenance: dict | None = None) -> dict:
    """One CSV row for a finished run: its key, best/final accuracy and provenance (`ddgd.base.provenance`)."""
    if provenance is None:
        from ddgd.base.provenance import provenance as current  # deferred: reads git and the hardware

        provenance = current()
    row = dict(method=method, dataset=dataset, ipc=int(ipc), network=network, seed=int(seed),
               best=round(float(result["best"]), 4), final=round(float(result["final"]), 4),
               epochs=int(result["epochs"]), config_hash=config_hash)
    row.update({c: provenance.get(c, "unknown") for c in ("torch", "diffusers", "ddgd", "commit", "hardware")})
    row.update(wall_s=round(float(result["wall_s"]), 2),
               timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return row


class ResultsError(ValueError):
    """A malformed results CSV; the message names the file, the line and the fix."""


NUMERIC_COLUMNS = {"ipc": int, "seed": int, "best": float, "final": float, "epochs": int}


def check_rows(path: Path, header: list[str], lines: list[list[str]]) -> None:
    """Refuse a row with more or fewer values than the header, or a key or accuracy that does not parse.

    A truncated last row (an interrupted copy, a bad merge) would otherwise be read as a row padded
    with blanks and counted in the tables; a row with an extra value would fail only when the next
    row is appended, after that run's work.
    """
    fix = (f"restore {path} (e.g. `git checkout -- {path.name}` for a committed file) or delete that line; "
           "nothing was run")
    for number, values in enumerate(lines, start=2):  # line 1 is the header
        if len(values) != len(header):
            raise ResultsError(f"line {number} of {path} holds {len(values)} values for {len(header)} columns "
                               f"(a truncated or extended row): {fix}")
        row = dict(zip(header, values))
        for column, kind in NUMERIC_COLUMNS.items():
            if column in row:
                try:
                    kind(row[column])
                except ValueError:
                    raise ResultsError(f"line {number} of {path}: {column}={row[column]!r} is not a number: "
                                       f"{fix}") from None


def read_checked(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows (lists of values) of a results CSV, each row checked (`check_rows`)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return [], []
    with open(path, newline="") as fh:
        lines = [values for values in csv.reader(fh)]
    header, rows = lines[0], [v for v in lines[1:] if v]  # blank lines carry nothing
    check_rows(path, header, rows)
    return header, rows


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    header, rows = read_checked(path)
    return header, [dict(zip(header, values)) for values in rows]


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on `.<name>.lock` beside `path` (POSIX advisory lock) for a read-modify-write of `path`.

    Runs of one preset may go on in parallel processes (say one per seed, `-o eval.seeds=1`) and
    append to the same results file: without the lock, two writers could each drop the other's row.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_result(csv_path: str | Path, row: dict) -> Path:
    """Append `row` to a results CSV, writing the whole new file under a temporary name, then renaming.

    A new file gets the header; columns missing from an existing header are added at its end. An
    interruption leaves either the old file or the new one, never a partial line; parallel writers
    take turns (`locked`).
    """
    path = Path(csv_path)
    with locked(path):
        return _append(path, row)


def _append(path: Path, row: dict) -> Path:
    for stale in temporaries(path):  # left by a writer killed mid-write: we hold the lock
        stale.unlink(missing_ok=True)
    header, rows = _read_rows(path)
    if not header:
        header = [c for c in RESULT_COLUMNS if c in row]
    header += [c for c in row if c not in header]
    rows.append({c: row.get(c, "") for c in header})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(buf.getvalue())
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the rename: a crash of the machine loses no row either
    return path


def completed_runs(csv_path: str | Path) -> set[tuple]:
    """Keys (`run_key`) of the runs already in a results CSV; empty if the file does not exist."""
    path = Path(csv_path)
    header, rows = _read_rows(path)
    if not header:
        return set()
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path} is not a results CSV: it lacks the column(s) {', '.join(missing)}")
    keys = set()
    for r in rows:
        try:
            keys.add(run_key(*(r[c] for c in KEY_COLUMNS)))
        except (TypeError, ValueError):
            continue  # a row with a blank or malformed key cannot match a run: rerun it
    return keys
