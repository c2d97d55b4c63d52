"""The package as a user gets it: a wheel built from this checkout, installed outside it.

The wheel is built from a copy of the working tree (setuptools writes build/ and *.egg-info into the
folder it builds, and a stale build/lib could smuggle deleted modules into the wheel), checked file by
file, and installed with --no-deps into a fresh venv in a temporary folder. The dependencies (torch,
diffusers, ...) are not installed again: one .pth line in the fresh venv's site-packages puts this
environment's site-packages on its sys.path. Python adds such a line to sys.path but does not run the
.pth files of the folder it names, so the checkout's editable install (a finder installed by a .pth
file there) stays out, and `ddgd` can only come from the wheel; the tests check that too.

The Colab test simulates Colab's preinstalled CUDA torch and torchvision (dist-info folders of
in-range versions that this environment does not have) and asks pip, offline, what the set-up cell of
the Colab copies would install: the package alone, never torch.
"""
from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DIST_INFO = f"{PROJECT['name']}-{PROJECT['version']}.dist-info/"
# what the working tree holds that is no source: environments, builds, caches, run outputs
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "venv", "_build", "runs", "build", "dist", "__pycache__",
                                    "*.egg-info", "*.pyc", ".pytest_cache", "node_modules", ".whl", ".gl")
# This environment's site-packages, where the dependencies live (and, for a checkout, ddgd editable).
DEPS = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


def _env(**extra: str) -> dict[str, str]:
    """The environment of a process that must not see the checkout: no PYTHONPATH, no venv variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DDGD_CACHE")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1", **extra)
    return env


def _run(cmd: list, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{shlex.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _pip(*args, cwd: Path, python: Path | None = None) -> subprocess.CompletedProcess:
    """This environment's pip, acting on another interpreter's environment when `python` is given."""
    target = ["--python", python] if python else []
    return _run([sys.executable, "-m", "pip", *target, *args, "--disable-pip-version-check"], cwd=cwd)


def _fresh_venv(path: Path) -> tuple[Path, Path]:
    """A venv without pip whose sys.path ends with this environment's site-packages; (python, site-packages)."""
    _run([sys.executable, "-m", "venv", "--without-pip", path], cwd=path.parent)
    python = path / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=path.parent).stdout.strip())
    assert site.is_relative_to(path)
    (site / "zz-ddgd-test-deps.pth").write_text("".join(f"{d}\n" for d in DEPS))
    return python, site


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("wheel") / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE, symlinks=True)
    return src


@pytest.fixture(scope="module")
def wheel(source) -> Path:
    dist = source.parent / "dist"
    _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, source, cwd=source.parent)
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    assert wheels[0].name == f"{PROJECT['name']}-{PROJECT['version']}-py3-none-any.whl"
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel) -> Path:
    """A fresh venv, outside the checkout, with the wheel installed (no dependencies); its folder."""
    venv = wheel.parents[1] / "venv"
    python, _ = _fresh_venv(venv)
    _pip("install", "-q", "--no-deps", "--no-index", wheel, cwd=venv.parent, python=python)
    assert not venv.resolve().is_relative_to(ROOT)
    return venv


def test_wheel_holds_every_module_and_the_data_the_code_reads(source, wheel):
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("ddgd/", DIST_INFO))]
    assert not outside, f"files outside ddgd/ in the wheel: {outside}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    package = source / "ddgd"
    modules = {p.relative_to(source).as_posix() for p in package.rglob("*.py")}
    subpackages = {p.parent.name for p in package.glob("*/__init__.py")}
    assert {"base", "config", "method", "protocol", "embedded", "experiments", "pages"} <= subpackages
    assert len(modules) > 40
    missing = sorted(modules - set(names))
    assert not missing, f"modules of the checkout left out of the wheel: {missing}"
    assert "ddgd/cli.py" in names and "ddgd/protocol/__init__.py" in names

    # every other file under ddgd/ that a module beside it reads relative to itself (a module of its
    # folder that uses __file__ and names the file in quotes) must be shipped too
    def read_beside(path: Path) -> bool:
        quoted = re.compile(rf"[\"']{re.escape(path.name)}[\"']")
        return any("__file__" in text and quoted.search(text) for text in (m.read_text() for m in path.parent.glob("*.py")))

    data = [p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    read = {p.relative_to(source).as_posix() for p in data if read_beside(p)}
    assert "ddgd/protocol/imagenet_wnids.txt" in read
    assert read <= set(names), f"data files the code reads, not in the wheel: {sorted(read - set(names))}"
    with zipfile.ZipFile(wheel) as z:
        assert len(z.read("ddgd/protocol/imagenet_wnids.txt").decode().split()) == 1000
        metadata = z.read(DIST_INFO + "METADATA").decode()
        entry_points = z.read(DIST_INFO + "entry_points.txt").decode()
    assert "ddgd = ddgd.cli:main" in entry_points
    assert "Requires-Python: <3.14,>=3.11" in metadata or "Requires-Python: >=3.11,<3.14" in metadata
    for version in ("3.11", "3.12", "3.13"):
        assert f"Classifier: Programming Language :: Python :: {version}" in metadata
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    torch = [r for r in requires if re.match(r"torch\s*[<>=!~(]", r)]
    assert torch and "==" not in torch[0], f"torch should be a range, not a pin: {torch}"


def test_installed_wheel_runs_outside_the_checkout(installed, tmp_path):
    work = tmp_path / "work"  # the working directory: outside the checkout, nothing of ddgd in it
    work.mkdir()
    ddgd = installed / "bin" / "ddgd"
    assert ddgd.is_file()

    help_text = _run([ddgd, "--help"], cwd=work).stdout
    for command in ("distill", "sample", "evaluate", "verify", "export", "run", "diversity", "report", "pretrain",
                    "reproduce"):
        assert command in help_text

    # where every ddgd module comes from, whether the editable finder ran, the shipped wnids
    probe = r"""
import importlib, json, pkgutil, sys
import ddgd
from ddgd.protocol.imagenet import WNID_FILE, imagenet_wnids
names = [m.name for m in pkgutil.walk_packages(ddgd.__path__, "ddgd.") if m.name != "ddgd.__main__"]  # runs the CLI
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "file": ddgd.__file__,
    "modules": {n: m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "ddgd"},
    "editable": [n for n in sys.modules if n.startswith("__editable__")]
                + [repr(f) for f in sys.meta_path if "editable" in repr(f).lower()],
    "path": sys.path, "wnids": len(imagenet_wnids()), "wnid_file": str(WNID_FILE),
}))
"""
    facts = json.loads(_run([installed / "bin" / "python", "-c", probe], cwd=work).stdout.splitlines()[-1])
    venv = installed.resolve()
    assert Path(facts["file"]).resolve().is_relative_to(venv)
    assert len(facts["modules"]) > 40
    elsewhere = {n: f for n, f in facts["modules"].items() if not Path(f).resolve().is_relative_to(venv)}
    assert not elsewhere, f"modules not loaded from the wheel: {elsewhere}"
    assert not facts["editable"], f"the checkout's editable install was activated: {facts['editable']}"
    on_path = [p for p in facts["path"] if p and Path(p).resolve().is_relative_to(ROOT)
               and not any(Path(p).resolve() == Path(d).resolve() for d in DEPS)]
    assert not on_path, f"the checkout is on sys.path: {on_path}"
    assert facts["wnids"] == 1000 and Path(facts["wnid_file"]).resolve().is_relative_to(venv)

    # a tiny run, end to end: distill (none for dit), sample, evaluate; digits come with scikit-learn
    before = {p for p in venv.rglob("*") if "__pycache__" not in p.parts}
    out, results = work / "run", work / "results.csv"
    log = _run([ddgd, "run", "--preset", "digits-tiny", "--methods", "dit", "--out", out, "--csv", results, "--quiet"],
               cwd=work, timeout=180)
    assert str(results) in log.stdout
    rows = list(csv.DictReader(results.open()))
    assert len(rows) == 1, rows  # digits-tiny: one IPC (2), one network, one seed
    row = rows[0]
    assert (row["method"], row["dataset"], row["ipc"], row["network"], row["seed"]) == ("dit", "digits", "2", "convnet-3", "0")
    assert 0.0 <= float(row["best"]) <= 100.0 and 0.0 <= float(row["final"]) <= 100.0
    assert float(row["best"]) >= float(row["final"])
    assert row["ddgd"] == PROJECT["version"] and row["torch"] == importlib.metadata.version("torch")
    assert re.fullmatch(r"[0-9a-f]{12}", row["config_hash"])
    assert row["config_hash"] in json.loads((work / "results.configs.json").read_text())
    manifest = json.loads((out / "dit" / "seed0" / "samples" / "manifest.json").read_text())
    assert manifest, "the sample pool has an empty manifest"
    assert len(list((out / "dit" / "seed0" / "samples").rglob("*.png"))) == 10 * 4  # 10 digits x pool 4
    written = sorted(str(p.relative_to(venv)) for p in venv.rglob("*") if "__pycache__" not in p.parts and p not in before)
    assert not written, f"the run wrote into the installed environment: {written}"


def test_installed_wheel_keeps_its_latent_cache_out_of_site_packages(installed, tmp_path):
    venv = installed.resolve()
    before = {p for p in venv.rglob("*") if "__pycache__" not in p.parts}
    _run([installed / "bin" / "ddgd", "run", "--preset", "digits-tiny", "--methods", "ddgd", "--out", tmp_path / "run",
          "--csv", tmp_path / "results.csv", "--quiet"], cwd=tmp_path, timeout=180, HOME=str(tmp_path / "home"))
    assert len(list(csv.DictReader((tmp_path / "results.csv").open()))) == 1
    assert list((tmp_path / "home" / ".cache" / "ddgd").glob("latents-*/meta.json")), \
        "the latent cache is not in ~/.cache/ddgd"
    written = sorted(str(p.relative_to(venv)) for p in venv.rglob("*") if "__pycache__" not in p.parts and p not in before)
    for path in sorted(written, key=len, reverse=True):  # leave the shared venv as it was for any later test
        if (venv / path).is_dir():
            shutil.rmtree(venv / path, ignore_errors=True)
        else:
            (venv / path).unlink(missing_ok=True)
    assert not written, f"the run wrote into the installed environment: {written}"


def _colab_pip_args(source: Path) -> list[str]:
    """The arguments of every `!pip install` of the Colab set-up cell, with the clone's path replaced by `source`."""
    from ddgd.pages.colab import COLAB_SETUP

    cell = COLAB_SETUP.format(url="https://example.invalid/ddgd")
    installs = [shlex.split(line.strip()[1:])[2:] for line in cell.splitlines() if line.strip().startswith("!pip install")]
    assert installs, "the Colab set-up cell installs nothing"
    args = [a for line in installs for a in line]
    for flag in ("--no-deps", "--ignore-requires-python", "-U", "--upgrade", "--force-reinstall", "-c", "--constraint"):
        assert flag not in args, f"the Colab set-up cell passes {flag} to pip"
    assert not [a for a in args if re.match(r"torch(vision)?\b", a)], "the Colab set-up cell names torch itself"
    return [str(source) if a == "/content/ddgd" else a for a in args if a != "-q"]


def test_colab_setup_keeps_an_in_range_preinstalled_torch(source, tmp_path):
    """Colab's CUDA torch and torchvision (other versions than ours, within the range) are kept."""
    python, site = _fresh_venv(tmp_path / "colab")
    for name, version, requires in (("torch", "2.10.0+cu126", None), ("torchvision", "0.25.0+cu126", "torch==2.10.0")):
        info = site / f"{name}-{version}.dist-info"  # found before this environment's copies on sys.path
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                       + (f"Requires-Dist: {requires}\n" if requires else ""))
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    report = tmp_path / "report.json"
    # offline: anything to install but the package itself would fail for want of an index
    _pip("install", "--dry-run", "-q", "--no-index", "--no-build-isolation", "--report", report,
         *_colab_pip_args(source), cwd=tmp_path, python=python)
    install = {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    assert install == {PROJECT["name"]: PROJECT["version"]}, f"the Colab set-up cell would install {install}"
