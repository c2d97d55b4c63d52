"""Re-run one artefact of the paper (a table, a figure or a walk-through) through papermill.

Every artefact is one jupytext percent-format notebook under ``notebooks/`` (the pages of the
book), with one cell tagged ``parameters`` whose defaults are the CPU analogue that the book
shows. Named parameter sets live beside them::

    notebooks/params/<artefact>/cpu.yaml     the book's own defaults (may restate them or be empty)
    notebooks/params/<artefact>/smoke.yaml   seconds-long values used by the tests
    notebooks/params/<artefact>/paper.yaml   paper scale (book page: The method), meant for a GPU

`run` executes the notebook with a preset plus ``key=value`` overrides and writes the executed
notebook, the parameters it ran with and the notebook's own result files into one folder::

    <output_dir>/<artefact>/<preset>/<artefact>.ipynb
    <output_dir>/<artefact>/<preset>/parameters.yaml
    <output_dir>/<artefact>/<preset>/...       whatever the notebook writes under `output_dir`

papermill does not read ``.py`` notebooks, so the notebook is read with jupytext and handed to
papermill as an ``.ipynb``. The kernel runs in the notebook's own folder, as in the book build, so
a notebook sees the same relative paths under `ddgd reproduce` and under `jupyter-book build`.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ddgd.base.files import write_text

# The clone this package was installed from (editable install): notebooks live beside the package.
REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = "notebooks"
PARAMS_DIRNAME = "params"
PRESETS = ("cpu", "smoke", "paper")  # the presets every artefact provides; more may exist
KERNEL_NAME = "python3"

# The one place that maps an artefact name to its notebook (paths relative to the repository).
ARTEFACTS: dict[str, str] = {
    # the paper's figures and tables
    "figure1": "notebooks/figure1.py",
    "figure2": "notebooks/figure2.py",
    "figure3": "notebooks/figure3.py",
    "figure4": "notebooks/figure4.py",
    "table1": "notebooks/table1.py",
    "table2": "notebooks/table2.py",
    "table3": "notebooks/table3.py",
    # the paper's claim measured directly: diversity of the distilled sets, and accuracy against it
    "diversity": "notebooks/diversity.py",
    # walk-throughs of the method (book page: The method)
    "latent-encoding": "notebooks/latent_encoding.py",
    "memory-initialisation": "notebooks/memory_initialisation.py",
    "minimax-losses": "notebooks/minimax_losses.py",
    "adaptive-update": "notebooks/adaptive_update.py",
    "full-run": "notebooks/full_run.py",
    # the CPU stand-in for DiT-XL/2 + SD VAE (its model card and a rebuild of it), and the full
    # CPU benchmark run with it
    "embedded-model": "notebooks/embedded_model.py",
    "benchmark": "notebooks/benchmark.py",
    # the FLOP count of every paper-scale stage and artefact
    "costs": "notebooks/costs.py",
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotebookFailed(RuntimeError):
    """A notebook raised while executing; the message names the saved failed notebook."""


class Expression:
    """A parameter default that is code rather than a literal (e.g. ``Path("x") / "y"``)."""

    def __init__(self, source: str):
        self.source = source

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def notebook_path(artefact: str | Path) -> Path:
    """The notebook of a named artefact, or `artefact` itself when it is a notebook file."""
    name = str(artefact)
    if name in ARTEFACTS:
        path = REPO_ROOT / ARTEFACTS[name]
        if not path.is_file():
            raise FileNotFoundError(f"the notebook of artefact {name!r} is missing: expected {path} "
                                    f"(run from a clone of the repository, installed with pip install -e .)")
        return path
    path = Path(name)
    if path.suffix in (".py", ".ipynb"):
        if not path.is_file():
            raise FileNotFoundError(f"notebook {path} does not exist")
        return path
    raise ValueError(f"unknown artefact {name!r}: choose one of {', '.join(ARTEFACTS)} "
                     f"or give the path of a .py/.ipynb notebook")


def artefact_name(artefact: str | Path) -> str:
    """`figure1` for a named artefact; the file stem with '-' for '_' for a notebook path."""
    name = str(artefact)
    return name if name in ARTEFACTS else Path(name).stem.replace("_", "-")


def params_dir(artefact: str | Path) -> Path:
    """Folder of the artefact's presets: notebooks/params/<artefact>/ (beside a notebook path)."""
    name = artefact_name(artefact)
    if str(artefact) in ARTEFACTS:
        return REPO_ROOT / NOTEBOOK_DIR / PARAMS_DIRNAME / name
    return Path(artefact).parent / PARAMS_DIRNAME / name


def available_presets(artefact: str | Path) -> list[str]:
    folder = params_dir(artefact)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_params(artefact: str | Path, preset: str) -> dict[str, Any]:
    """The parameter set `preset` of an artefact, read from notebooks/params/<artefact>/<preset>.yaml."""
    folder = params_dir(artefact)
    path = folder / f"{preset}.yaml"
    if not path.is_file():
        found = available_presets(artefact)
        if not found:
            raise FileNotFoundError(f"artefact {artefact_name(artefact)!r} has no parameter sets: expected "
                                    f"{folder}/<preset>.yaml for the presets {', '.join(PRESETS)}")
        raise FileNotFoundError(f"artefact {artefact_name(artefact)!r} has no preset {preset!r}: "
                                f"available presets are {', '.join(found)}")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from err
    if values is None:  # an empty file: the notebook's own defaults
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of parameter names to values, not {type(values).__name__}")
    bad = [k for k in values if not isinstance(k, str) or not _IDENTIFIER.match(k)]
    if bad:
        raise ValueError(f"{path}: {bad} are not valid parameter names (Python identifiers)")
    return values


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["ipcs=[1, 10]", "lambda_r=0.004"]`` -> ``{"ipcs": [1, 10], "lambda_r": 0.004}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not _IDENTIFIER.match(key):
            raise ValueError(f"parameter override {item!r} is not of the form name=value "
                             f"(e.g. -p seeds=[0,1,2] or -p lambda_r=0.004)")
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"the value of override {item!r} is not valid YAML: quote it, e.g. {key}='\"text\"'") from err
    return out


def _read(path: Path):
    """The notebook as an nbformat node (jupytext reads both percent-format .py and .ipynb)."""
    import jupytext

    return jupytext.read(path)


def _parameters_cell(nb, path: Path):
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"notebook {path} has no cell tagged 'parameters': add one that starts with "
                         f"# %% tags=[\"parameters\"]")
    return cells[0]


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Names and defaults assigned in the notebook's `parameters` cell (non-literals as `Expression`)."""
    path = Path(path)
    cell = _parameters_cell(_read(path), path)
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as err:
        raise ValueError(f"the parameters cell of {path} is not valid Python: {err}") from err
    found: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name) and node.value is not None:
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    found[target.id] = Expression(ast.get_source_segment(cell.source, node.value) or "")
    return found


def _write_yaml(path: Path, values: dict) -> None:
    plain = json.loads(json.dumps(values, default=str))  # tuples -> lists, paths -> strings
    write_text(path, yaml.safe_dump(plain, sort_keys=True))


def run(artefact: str | Path, preset: str = "cpu", overrides: dict[str, Any] | None = None,
        output_dir: str | Path = "runs/reproduce", progress: bool = True) -> Path:
    """Execute an artefact's notebook with a preset and overrides; returns the executed .ipynb.

    Parameters unknown to the notebook are refused before anything runs. When the notebook
    declares an ``output_dir`` parameter it receives the run folder, so its result files land
    beside the executed notebook. Nothing half-written looks complete: papermill writes to a
    temporary name, renamed on success, or to ``<artefact>.failed.ipynb`` when a cell raised.
    """
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = notebook_path(artefact)
    name = artefact_name(artefact)
    params = {**load_params(artefact, preset), **(overrides or {})}
    declared = notebook_parameters(path)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"{name} has no parameter(s) {', '.join(unknown)}: its parameters are "
                         f"{', '.join(declared) or '(none)'}")
    run_dir = (Path(output_dir) / name / preset).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if "output_dir" in declared:
        params["output_dir"] = str(run_dir)
    _write_yaml(run_dir / "parameters.yaml", {"artefact": name, "preset": preset, "notebook": str(path),
                                              "parameters": params})
    final = run_dir / f"{name}.ipynb"
    failed = run_dir / f"{name}.failed.ipynb"
    partial = run_dir / f".{name}.partial.ipynb"
    with tempfile.TemporaryDirectory(prefix="ddgd-reproduce-") as tmp:
        source = Path(tmp) / f"{name}.ipynb"
        jupytext.write(_read(path), source, fmt="ipynb")
        try:
            papermill.execute_notebook(str(source), str(partial), parameters=params, kernel_name=KERNEL_NAME,
                                       progress_bar=progress, cwd=str(path.parent.resolve()))
        except PapermillExecutionError as err:
            if partial.exists():
                shutil.move(partial, failed)
            final.unlink(missing_ok=True)  # an older success would not match parameters.yaml
            raise NotebookFailed(f"{name} failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                                 f"(executed notebook saved as {failed})") from err
    partial.replace(final)
    failed.unlink(missing_ok=True)  # an earlier failure of the same run is no longer current
    return final
