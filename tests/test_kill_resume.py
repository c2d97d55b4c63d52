"""kill -9 at repeatable points of `ddgd distill` and `ddgd run`, restart until done: the same outcome.

Each command runs in a child process on the `digits-tiny` preset. A child is killed with SIGKILL
either at the k-th commit of an artefact (every artefact is committed by an `os.replace` or
`os.rename` of ddgd's, which the child wraps: "before" leaves the fully written temporary, "after"
the new file with the next step not begun) or a pseudo-random time after its first commit (mid
fine-tuning, mid sampling, mid evaluation). Both come from a seeded `random.Random`, so a failure
reproduces. After every kill nothing that looks complete may be half written; once a restart finishes, every
artefact must be bit-identical to the uninterrupted run's, with no temporary left behind.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ddgd.base.files import PARTIAL_SUFFIX, TMP_SUFFIX
from ddgd.config import resolve, to_dict
from ddgd.experiments.results import read_checked
from ddgd.experiments.runs import with_seed
from ddgd.method.checkpoints import read_checkpoint
from ddgd.method.sample import verify_image_folder

ROOT = Path(__file__).resolve().parents[1]
ATTEMPT_TIMEOUT_S = 180  # a restart stuck on a lock the killed process held fails instead of hanging

# The child: ddgd's command line, with os.replace and os.rename wrapped so that each call from ddgd's
# own modules (every commit of an artefact: ddgd.base.files, the sampler's pool) is logged (time,
# target) and the process kills itself at the `n`-th, before or after the rename.
CHILD = r"""
import os, signal, sys, time
log, n, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = 0

def committing(rename):
    def commit(src, dst, **kw):
        global seen
        if not sys._getframe(1).f_globals.get("__name__", "").startswith("ddgd."):
            return rename(src, dst, **kw)  # torch's, tempfile's, the hub's own renames
        dst = os.fspath(dst)
        # The first config.json of a run folder is no kill point here: test_a_run_killed_before_its_first_config
        first_config = os.path.basename(dst) == "config.json" and not os.path.exists(dst)
        seen += not first_config
        kill = seen == n and not first_config
        with open(log, "a") as fh:
            fh.write(f"{time.time():.6f} {dst}\n")
        if kill and phase == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        rename(src, dst, **kw)
        if kill and phase == "after":
            os.kill(os.getpid(), signal.SIGKILL)
    return commit

os.replace, os.rename = committing(os.replace), committing(os.rename)
from ddgd.cli import main
sys.exit(main(sys.argv[4:]))
"""


def _env(cache: Path) -> dict:
    env = {**os.environ, "DDGD_CACHE": str(cache), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])  # this checkout
    return env


def attempt(args: list[str], work: Path, kill: tuple | None, child: str = CHILD) -> int:
    """Run `ddgd <args>` in a child once; `kill`: ("commit", n, phase), ("time", seconds) or None.

    ("time", s) kills s seconds after the child's first commit: its imports, seconds of a busy machine,
    are no interesting kill point. Returns the child's exit status (-9 when killed).
    """
    log = work / "commits.log"
    before = log.stat().st_size if log.exists() else 0
    n, phase = (kill[1], kill[2]) if kill and kill[0] == "commit" else (0, "never")
    with open(work / "child.err", "ab") as err:
        err.write(f"--- ddgd {' '.join(args)}, kill {kill}\n".encode())
        err.flush()
        proc = subprocess.Popen([sys.executable, "-c", child, str(log), str(n), phase, *args], cwd=work,
                                env=_env(work / "cache"), stdout=subprocess.DEVNULL, stderr=err)
        start = time.monotonic()
        try:
            if kill and kill[0] == "time":
                while proc.poll() is None and not (log.exists() and log.stat().st_size > before):
                    time.sleep(0.01)
                    assert time.monotonic() - start < ATTEMPT_TIMEOUT_S, f"ddgd {args} made no commit"
                time.sleep(kill[1])
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            return proc.wait(timeout=ATTEMPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ddgd {args} (kill {kill}) did not end within {ATTEMPT_TIMEOUT_S} s: "
                                 f"a lock or a partial artefact a killed run left? See {work / 'child.err'}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def commits(work: Path) -> list[tuple[float, str]]:
    log = work / "commits.log"
    lines = log.read_text().split("\n") if log.exists() else []
    return [(float(t), dst) for t, dst in (line.split(" ", 1) for line in lines if line)]


def kill_schedule(name: str, kills: int, span_s: float) -> list[tuple]:
    """`kills` kill points, the same on every machine: at the 1st to 4th commit of an attempt, before
    or after it, or at a time within `span_s`, the uninterrupted run's time from first to last commit
    (a restart has less left to do: the time kills shrink with the attempts)."""
    rng = random.Random(f"kill-resume-{name}")
    return [("commit", rng.randint(1, 4), rng.choice(("before", "after"))) if rng.random() < 0.5
            else ("time", round(rng.uniform(0.1, 0.9) * span_s / (i + 1), 3)) for i in range(kills)]


def files_under(*roots: Path) -> list[Path]:
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def in_progress(path: Path) -> bool:
    """A temporary, a partial folder or something inside one, or a lock file: no artefact."""
    return any(part.endswith((TMP_SUFFIX, PARTIAL_SUFFIX)) for part in path.parts) or path.name.endswith(".lock")


def nothing_half_written_looks_complete(out: Path, cache: Path) -> None:
    """Every artefact under its final name reads in full: what a kill may leave is old, absent or temporary."""
    for path in files_under(out, cache):
        if in_progress(path):
            continue
        if path.name in ("checkpoint.pt", "ema.pt"):
            read_checkpoint(path, keys=("config_id", "ema"))  # raises on a truncated or empty file
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        elif path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # a truncated array does not load
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            header, rows = read_checked(path)  # a truncated row is refused
            assert header and rows, path
    for run in {p.parent for p in out.rglob("config.json")}:
        assert not (run / "done.json").exists() or (run / "ema.pt").exists(), run  # done only once complete
        if (run / "samples").exists():
            verify_image_folder(run / "samples")  # a pool under its final name is whole
            assert (run / "done.json").exists(), run


def leftovers(*roots: Path) -> list[str]:
    return [str(p) for root in roots if root.exists() for p in root.rglob("*")
            if p.name.endswith((TMP_SUFFIX, PARTIAL_SUFFIX))]


def kill_until_done(args: list[str], work: Path, schedule: list[tuple]) -> list[tuple]:
    """Run `ddgd <args>` with each kill of `schedule` in turn, then without, until it finishes.

    Returns what each attempt did: (kill, exit status, the names it committed), printed for a failure.
    """
    done: list[tuple] = []

    def run(kill):
        seen = len(commits(work))
        rc = attempt(args, work, kill)
        done.append((kill, rc, [Path(dst).name for _, dst in commits(work)[seen:]]))
        assert rc in (0, -signal.SIGKILL), f"ddgd {args} failed (exit {rc}) after {done}: see {work / 'child.err'}"
        return rc

    for kill in schedule:
        if run(kill) == 0:  # finished before its kill point: nothing left to interrupt
            break
        nothing_half_written_looks_complete(work / "out", work / "cache")
    else:
        assert run(None) == 0
    print(f"ddgd {args[0]}:", *done, sep="\n  ")
    assert not leftovers(work), f"temporaries left after {done}: {leftovers(work)}"
    assert any(rc != 0 for _, rc, _ in done), f"the run ended before any kill: {done}"
    return done


# ------------------------------------------------------------------------------------ comparisons
def blob_equal(a, b) -> bool:
    """Exact equality of nested checkpoint contents: tensors bit for bit, floats as floats."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(blob_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(blob_equal(x, y) for x, y in zip(a, b))
    return a == b


def same_run_folder(ref: Path, run: Path) -> None:
    for name in ("ema.pt", "checkpoint.pt"):
        a, b = (torch.load(d / name, weights_only=True) for d in (ref, run))
        assert blob_equal(a, b), f"{run / name} differs from the uninterrupted run's"
    a, b = (json.loads((d / "done.json").read_text()) for d in (ref, run))
    assert {**a, "wall_s": 0} == {**b, "wall_s": 0}  # wall_s: the clock of the last start
    assert (run / "memory_log.csv").read_bytes() == (ref / "memory_log.csv").read_bytes()


def same_files(ref: Path, other: Path) -> None:
    """The same files under both folders, each bit for bit (torch files by their tensors)."""
    names = [[str(p.relative_to(root)) for p in files_under(root)] for root in (ref, other)]
    assert names[0] and names[0] == names[1], names
    for rel in names[0]:
        a, b = ref / rel, other / rel
        if a.suffix == ".pt":
            assert blob_equal(torch.load(a, weights_only=True), torch.load(b, weights_only=True)), rel
        else:
            assert a.read_bytes() == b.read_bytes(), rel


def csv_rows(path: Path) -> list[dict]:
    # wall_s and timestamp: clocks; commit: read by each process, and other work may change the tree meanwhile
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k not in ("wall_s", "timestamp", "commit")} for r in csv.DictReader(fh)]


def same_pool(ref: Path, pool: Path) -> None:
    a, b = (json.loads((d / "manifest.json").read_text()) for d in (ref, pool))
    for key in ("files", "counts", "config", "config_hash", "sample_hash"):
        assert a[key] == b[key], f"manifest {key} differs"
    for rel in a["files"]:
        assert (ref / rel).read_bytes() == (pool / rel).read_bytes(), rel
        assert hashlib.sha256((pool / rel).read_bytes()).hexdigest() == b["files"][rel], rel


RUN_ARGS = ["run", "--preset", "digits-tiny", "--methods", "ddgd", "--out", "out", "--csv", "out/results.csv",
            "--quiet"]
DISTILL_ARGS = ["distill", "--preset", "digits-tiny", "--method", "ddgd", "--seed", "0", "--out", "out", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted `ddgd run`: its folder, cache and log of commits."""
    work = tmp_path_factory.mktemp("uninterrupted")
    assert attempt(RUN_ARGS, work, None) == 0, (work / "child.err").read_text()
    assert not leftovers(work)
    return work


def span(work: Path, first: str, last: str) -> float:
    """Seconds from the first commit of a target named `first` to the last of one named `last`."""
    times = commits(work)
    return max(t for t, dst in times if Path(dst).name == last) - min(t for t, dst in times if Path(dst).name == first)


def test_killed_distill_resumes_to_the_same_model(reference, tmp_path):
    schedule = kill_schedule("distill", 4, span(reference, "config.json", "done.json"))  # the training
    kill_until_done(DISTILL_ARGS, tmp_path, schedule)
    run, ref = tmp_path / "out" / "ddgd" / "seed0", reference / "out" / "ddgd" / "seed0"
    same_run_folder(ref, run)
    same_files(reference / "cache", tmp_path / "cache")
    expected = to_dict(with_seed(resolve("digits-tiny"), 0, "ddgd"))
    assert json.loads((run / "config.json").read_text()) == json.loads(json.dumps(expected))
    assert sorted(p.name for p in files_under(run)) == ["checkpoint.pt", "config.json", "done.json", "ema.pt",
                                                        "memory_log.csv"]


def test_killed_run_resumes_to_the_same_results(reference, tmp_path):
    schedule = kill_schedule("run", 4, span(reference, "results.configs.json", "results.csv"))
    kill_until_done(RUN_ARGS, tmp_path, schedule)
    out, ref = tmp_path / "out", reference / "out"
    same_run_folder(ref / "ddgd" / "seed0", out / "ddgd" / "seed0")
    same_pool(ref / "ddgd" / "seed0" / "samples", out / "ddgd" / "seed0" / "samples")
    same_files(reference / "cache", tmp_path / "cache")
    assert csv_rows(out / "results.csv") == csv_rows(ref / "results.csv") and len(csv_rows(ref / "results.csv")) == 1
    for name in ("results.configs.json", "ddgd/seed0/config.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    relative = [[str(p.relative_to(root)) for p in files_under(root)] for root in (ref, out)]
    assert relative[0] == relative[1]  # the same files, not one more


def test_a_temporary_of_a_killed_writer_is_removed_by_the_next_writer(tmp_path):
    import socket

    from ddgd.base.files import stale_temporaries, write_text

    target = tmp_path / "checkpoint.pt"
    writer = ("import os, signal, sys\nfrom ddgd.base.files import atomic_write\n"
              "with atomic_write(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half')\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    rc = subprocess.run([sys.executable, "-c", writer, str(target)], env=_env(tmp_path / "cache"),
                        check=False).returncode
    assert rc == -signal.SIGKILL and not target.exists()
    (left,) = tmp_path.glob(f".checkpoint.pt.*{TMP_SUFFIX}")  # what kill -9 leaves: the temporary, no target
    assert stale_temporaries(target) == [left]
    # a live writer of this host (our parent process) keeps its temporary, and so does a writer of
    # another host, whose process this host cannot see (the same dead pid as the killed writer's)
    host = socket.gethostname()
    live = tmp_path / f".checkpoint.pt.w{os.getppid()}@{host}.abcd{TMP_SUFFIX}"
    elsewhere = tmp_path / left.name.replace(f"@{host}.", "@another-host.")
    assert elsewhere != left
    for p in (live, elsewhere):
        p.write_bytes(b"")
    write_text(target, "whole")
    assert target.read_text() == "whole" and not left.exists() and live.exists() and elsewhere.exists()


def test_a_run_killed_before_its_first_config_resumes(reference, tmp_path):
    # With the latent cache in place, the first commit of a fresh distill is its run folder's
    # config.json: a kill before that rename leaves the folder holding `.config.json.<writer>.tmp` alone.
    shutil.copytree(reference / "cache", tmp_path / "cache")
    first_config = CHILD.replace('os.path.basename(dst) == "config.json" and not os.path.exists(dst)', "False")
    rc = attempt(DISTILL_ARGS, tmp_path, ("commit", 1, "before"), child=first_config)
    made = [Path(dst).name for _, dst in commits(tmp_path)]
    if first_config == CHILD or rc != -signal.SIGKILL or made != ["config.json"]:
        pytest.fail(f"the kill before the first config.json did not happen as planned: {commits(tmp_path)}")
    assert attempt(DISTILL_ARGS, tmp_path, None) == 0, (tmp_path / "child.err").read_text()[-2000:]
    same_run_folder(reference / "out" / "ddgd" / "seed0", tmp_path / "out" / "ddgd" / "seed0")
