"""`.ipynb` copies of the notebooks, for Colab, written into the build (never committed).

The notebooks are jupytext `.py` files, and only those are committed: the book executes them and
Binder opens them through jupytext. Colab opens only `.ipynb` files from GitHub, so every book build
writes a copy of each notebook into the built site, `_build/html/_colab/<name>.ipynb`
(`book/_ext/colab_button.py`), with one set-up cell in front that, on Colab, clones the repository,
installs the package (keeping Colab's own torch) and fetches Fashion-MNIST through torchvision;
elsewhere it does nothing. The book's Colab buttons open those copies on the branch the built site
is published to (`gh-pages`); `make ipynb` writes the same copies into `_build/ipynb/`, for
uploading one to Colab by hand.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ddgd.base.files import write_text
from ddgd.experiments.reproduce import ARTEFACTS, REPO_ROOT

# Colab runs Python 3.13 (since August 2026) and its own CUDA build of torch and torchvision. The
# package's metadata accepts Python 3.11-3.13 and torch 2.6-2.14 (pyproject.toml), so one plain
# `pip install -e` (no --upgrade, no constraints file) leaves an in-range preinstalled torch and
# torchvision as they are, and installs only what is missing: diffusers 0.42 and the notebooks' tools.
# Neither --no-deps nor --ignore-requires-python is needed any more: they were while the metadata said
# Python 3.11 and torch==2.14.1, and --no-deps left the package's other requirements unchecked.
# constraints.txt stays out of this cell: its exact torch pin would replace Colab's CUDA torch with a
# multi-gigabyte download. Only a Colab torch outside the range is replaced, by an in-range one.
COLAB_SETUP = """\
# Colab only: fetch this repository, install the package and Fashion-MNIST (Binder and a local clone
# already have them; there this cell does nothing). Colab's own torch is kept when it is in the
# package's range (torch 2.6 to 2.14): pip installs only what is missing.
import os, sys
if "google.colab" in sys.modules and not os.path.isdir("/content/ddgd"):
    !git clone -q --depth 1 {url} /content/ddgd
    !pip install -q -e /content/ddgd jupytext myst-nb papermill seaborn
    !python -c "from ddgd.protocol.data import load_fashion_mnist as f; f('train', download=True); f('test', download=True)"
if "google.colab" in sys.modules:
    sys.path.insert(0, "/content/ddgd")
    os.chdir("/content/ddgd/notebooks")"""


def repository_url(config: Path = REPO_ROOT / "_config.yml") -> str:
    """The project's public address, from the book's configuration (its one place)."""
    return yaml.safe_load(config.read_text())["repository"]["url"]


def ipynb_copy(py_path: str | Path):
    """The notebook of a jupytext `.py` file with the Colab setup cell in front (no outputs)."""
    import jupytext
    from nbformat.v4 import new_code_cell

    nb = jupytext.read(py_path)
    setup = new_code_cell(COLAB_SETUP.format(url=repository_url()), metadata={"tags": ["remove-cell"]})
    nb.cells.insert(0, setup)
    for i, cell in enumerate(nb.cells):  # fixed ids: rewriting an unchanged notebook changes nothing
        cell["id"] = f"cell-{i}"
    return nb


COPIES = REPO_ROOT / "_build" / "ipynb"  # `make ipynb`; the book build writes its own into the site


def copy_text(py_path: str | Path) -> str:
    """The exact text of the `.ipynb` copy of a `.py` notebook."""
    import jupytext

    return jupytext.writes(ipynb_copy(py_path), fmt="ipynb")


def write_ipynb_copies(folder: str | Path = COPIES, names: list[str] | None = None) -> list[Path]:
    """Write `<folder>/<name>.ipynb` for every artefact's `.py` (or the named ones); returns the paths."""
    written = []
    for name in names or list(ARTEFACTS):
        py = REPO_ROOT / ARTEFACTS[name]
        out = Path(folder) / Path(py).with_suffix(".ipynb").name
        write_text(out, copy_text(py))
        written.append(out)
    return written


if __name__ == "__main__":  # `make ipynb`
    for path in write_ipynb_copies():
        print(path.relative_to(REPO_ROOT))
