"""The book: its notebooks run through papermill, its table of contents, and the built HTML.

* Every artefact notebook of `ddgd.experiments.reproduce.ARTEFACTS` that exists executes with its `smoke`
  preset, declares `output_dir`, and has the three presets; its `cpu` preset is what the book shows
  (the notebook's own defaults). Entries whose notebook is not written yet are skipped.
* `reproduce.run`, `load_params` and `parse_overrides` on a small fixture notebook
  (tests/fixtures/notebooks/hello.py), including the error paths.
* When `_build/html` exists (after `make book`), every page holds what it promises: images that
  resolve, glue references that were filled from executed notebooks, no error outputs, and math
  served by the vendored MathJax rather than a CDN. `.ci/run` sets DDGD_REQUIRE_BOOK=1 after the
  build so that these checks cannot be skipped there.
"""
from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from ddgd.experiments import reproduce
from ddgd.config import PROJECT_ROOT

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "notebooks" / "hello.py"
HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute"
MATHJAX = "_static/mathjax/tex-svg-full.js"


def _toc_files() -> list[str]:
    """Every `file:` entry of _toc.yml (root included), without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", []))
    return found


def _source(docname: str) -> Path:
    for suffix in (".md", ".py", ".ipynb"):
        if (ROOT / f"{docname}{suffix}").is_file():
            return ROOT / f"{docname}{suffix}"
    raise FileNotFoundError(f"_toc.yml lists {docname!r}, but no {docname}.md/.py/.ipynb exists")


def _existing_artefacts() -> list[str]:
    return [name for name, path in reproduce.ARTEFACTS.items() if (ROOT / path).is_file()]


# ---- notebooks through papermill --------------------------------------------------------------

@pytest.mark.parametrize("artefact", sorted(reproduce.ARTEFACTS))
def test_artefact_notebook_runs_with_smoke_preset(artefact, tmp_path):
    if not (ROOT / reproduce.ARTEFACTS[artefact]).is_file():
        pytest.skip(f"{reproduce.ARTEFACTS[artefact]} is not written yet")
    assert set(reproduce.PRESETS) <= set(reproduce.available_presets(artefact))
    assert "output_dir" in reproduce.notebook_parameters(reproduce.notebook_path(artefact)), \
        "artefact notebooks declare an output_dir parameter for their result files"
    out = reproduce.run(artefact, preset="smoke", output_dir=tmp_path, progress=False)
    assert out == tmp_path.resolve() / artefact / "smoke" / f"{artefact}.ipynb"
    nb = json.loads(out.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code)


@pytest.mark.parametrize("artefact", sorted(reproduce.ARTEFACTS))
def test_cpu_preset_is_what_the_book_shows(artefact):
    if not (ROOT / reproduce.ARTEFACTS[artefact]).is_file():
        pytest.skip(f"{reproduce.ARTEFACTS[artefact]} is not written yet")
    defaults = reproduce.notebook_parameters(reproduce.notebook_path(artefact))
    for key, value in reproduce.load_params(artefact, "cpu").items():
        if not isinstance(defaults[key], reproduce.Expression):
            assert defaults[key] == value, f"cpu.yaml sets {key}={value!r}, the notebook's default is {defaults[key]!r}"


@pytest.mark.parametrize("artefact", sorted(reproduce.ARTEFACTS))
def test_every_preset_names_only_parameters_of_its_notebook(artefact):
    declared = reproduce.notebook_parameters(reproduce.notebook_path(artefact))
    for preset in reproduce.available_presets(artefact):
        unknown = set(reproduce.load_params(artefact, preset)) - set(declared)
        assert not unknown, f"{artefact}/{preset}.yaml sets {sorted(unknown)}, which the notebook does not declare"
        if "preset" in declared and "preset" in reproduce.load_params(artefact, preset):
            from ddgd.config import PRESETS

            assert reproduce.load_params(artefact, preset)["preset"] in PRESETS


def test_toc_lists_existing_pages_and_every_artefact():
    files = _toc_files()
    for docname in files:
        _source(docname)  # raises with the name of a missing page
    for name in _existing_artefacts():
        doc = str(Path(reproduce.ARTEFACTS[name]).with_suffix(""))
        assert doc in files, f"{reproduce.ARTEFACTS[name]} exists but is not listed in _toc.yml"


def test_fixture_runs_with_overrides_and_writes_results(tmp_path):
    out = reproduce.run(FIXTURE, preset="smoke", overrides={"rule": "fifo", "capacity": 3},
                        output_dir=tmp_path, progress=False)
    run_dir = tmp_path.resolve() / "hello" / "smoke"
    assert out == run_dir / "hello.ipynb" and out.is_file()
    assert json.loads((run_dir / "result.json").read_text()) == {"kept_items": 3}
    record = yaml.safe_load((run_dir / "parameters.yaml").read_text())
    assert record["parameters"] == {"n_items": 5, "capacity": 3, "rule": "fifo", "output_dir": str(run_dir)}
    assert not list(run_dir.glob(".*partial*"))


def test_failing_notebook_is_kept_under_a_failed_name(tmp_path):
    with pytest.raises(reproduce.NotebookFailed, match="failing on purpose"):
        reproduce.run(FIXTURE, preset="smoke", overrides={"fail": True}, output_dir=tmp_path, progress=False)
    run_dir = tmp_path.resolve() / "hello" / "smoke"
    assert (run_dir / "hello.failed.ipynb").is_file()
    assert not (run_dir / "hello.ipynb").exists()


def test_unknown_parameter_is_refused_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"no parameter\(s\) lambda_x.*capacity"):
        reproduce.run(FIXTURE, preset="smoke", overrides={"lambda_x": 1}, output_dir=tmp_path, progress=False)
    assert not (tmp_path / "hello").exists()


def test_notebook_parameters_reads_defaults():
    params = reproduce.notebook_parameters(FIXTURE)
    assert params == {"n_items": 8, "capacity": 4, "rule": "adaptive", "output_dir": None, "fail": False}


def test_notebook_without_parameters_cell_is_refused(tmp_path):
    nb = tmp_path / "bare.py"
    nb.write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        reproduce.notebook_parameters(nb)


# ---- presets and overrides ----------------------------------------------------------------------

def test_load_params_reads_a_preset():
    assert reproduce.load_params(FIXTURE, "smoke") == {"n_items": 5, "capacity": 2}


def test_load_params_unknown_preset_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="no preset 'gpu'.*cpu, smoke"):
        reproduce.load_params(FIXTURE, "gpu")


def test_load_params_without_parameter_folder(tmp_path):
    nb = tmp_path / "lonely.py"
    nb.write_text("# %% tags=[\"parameters\"]\nx = 1\n")
    with pytest.raises(FileNotFoundError, match="no parameter sets.*params/lonely/<preset>.yaml"):
        reproduce.load_params(nb, "cpu")


@pytest.mark.parametrize("text, expected", [("", {}), ("- 1\n- 2\n", ValueError), ("a: [1\n", ValueError),
                                            ("1x: 2\n", ValueError), ("a: 1\n", {"a": 1})])
def test_load_params_file_contents(tmp_path, text, expected):
    nb = tmp_path / "one.py"
    nb.write_text("# %% tags=[\"parameters\"]\na = 0\n")
    (tmp_path / "params" / "one").mkdir(parents=True)
    (tmp_path / "params" / "one" / "cpu.yaml").write_text(text)
    if expected is ValueError:
        with pytest.raises(ValueError, match="one/cpu.yaml"):
            reproduce.load_params(nb, "cpu")
    else:
        assert reproduce.load_params(nb, "cpu") == expected


def test_unknown_artefact_names_the_choices():
    with pytest.raises(ValueError, match="unknown artefact 'table9'.*figure1.*full-run"):
        reproduce.notebook_path("table9")


def test_artefact_names_and_files_are_consistent():
    paths = list(reproduce.ARTEFACTS.values())
    assert len(set(paths)) == len(paths)
    for name, path in reproduce.ARTEFACTS.items():
        assert path == f"notebooks/{name.replace('-', '_')}.py"


def test_parse_overrides_reads_yaml_values():
    got = reproduce.parse_overrides(["lambda_r=0.004", "ipcs=[1, 10]", "method=ddgd", "use_vb=false",
                                     "root=null", "label=a=b", "n= 3"])
    assert got == {"lambda_r": 0.004, "ipcs": [1, 10], "method": "ddgd", "use_vb": False, "root": None,
                   "label": "a=b", "n": 3}
    assert reproduce.parse_overrides(None) == {}


@pytest.mark.parametrize("item", ["lambda_r", "=3", "a.b=1", "x=[1, 2"])
def test_parse_overrides_rejects_bad_items(item):
    with pytest.raises(ValueError, match=re.escape(item)):
        reproduce.parse_overrides([item])


# ---- the built book -----------------------------------------------------------------------------

class _Page(HTMLParser):
    """Collects img sources, script sources and the classes used on one HTML page."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.classes: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        self.classes.update((a.get("class") or "").split())


def _built_pages() -> list[tuple[str, Path]]:
    if not HTML.is_dir():
        if os.environ.get("DDGD_REQUIRE_BOOK"):
            pytest.fail("DDGD_REQUIRE_BOOK is set but _build/html does not exist: run make book first")
        pytest.skip("the book is not built (make book)")
    return [(doc, HTML / f"{doc}.html") for doc in _toc_files()]


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_built_pages_exist_and_images_resolve():
    for doc, path in _built_pages():
        assert path.is_file(), f"{doc} is in _toc.yml but {path} was not built"
        for src in _parse(path).images:
            if src.startswith(("data:", "http://", "https://")):
                assert src.startswith("data:"), f"{doc} loads an image from the network: {src}"
                continue
            target = (path.parent / src.split("#")[0].split("?")[0]).resolve()
            assert target.is_file(), f"{doc}: broken image {src}"


def test_built_pages_have_no_unrendered_markup_or_errors():
    for doc, path in _built_pages():
        text = path.read_text(encoding="utf-8")
        page = _parse(path)
        assert "{glue" not in text and "{eq}" not in text, f"{doc} holds an unrendered role"
        assert not {"problematic", "system-message"} & page.classes, f"{doc} holds a rendering error"
        assert not any("traceback" in c or c == "output_error" for c in page.classes), f"{doc} shows an error output"


def test_built_pages_name_no_path_of_the_build_machine():
    for doc, path in _built_pages():
        text = path.read_text(encoding="utf-8")
        for marker in (str(PROJECT_ROOT), "site-packages"):
            assert marker not in text, f"{doc} prints a path of the machine that built it ({marker})"


def test_built_launch_buttons_open_the_notebooks_on_binder_and_colab():
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    # Colab opens the copies the build writes into the site, on the branch the site is published to
    colab_base = f"https://colab.research.google.com/github/{repo['url'].split('github.com/')[-1]}/blob/gh-pages/"
    for doc, path in _built_pages():
        if not doc.startswith("notebooks/"):
            continue
        text = path.read_text("utf-8")
        links = re.findall(r'href="(https://mybinder\.org[^"]*)"', text)
        assert links, f"{doc} has no Binder button"
        assert all(link.endswith(f"{doc}.py") for link in links), f"{doc}: a launch button opens {links}"
        colab = re.findall(r'href="(https://colab\.research\.google\.com[^"]*)"', text)
        copy = f"_colab/{Path(doc).name}.ipynb"
        assert colab == [colab_base + copy], f"{doc}: Colab buttons {colab}, expected one opening {copy}"
        assert (HTML / copy).is_file(), f"{doc}: its Colab button opens {copy}, which the build did not write"


def test_built_glue_references_were_filled_from_executed_notebooks():
    pattern = re.compile(r"\{glue(?::\w+)?\}`([^`]+?)::([^`:]+)")
    for doc, path in _built_pages():
        # MyST comment lines (starting with %) are not rendered, so their examples do not count
        text = "\n".join(line for line in _source(doc).read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("%"))
        for ref, key in pattern.findall(text):
            target = ref.lstrip("/") if ref.startswith("/") else str(Path(doc).parent / ref)
            executed = EXECUTED / Path(target).with_suffix(".ipynb")
            assert executed.is_file(), f"{doc} glues {key!r} from {ref}, which was not executed"
            names = {o.get("metadata", {}).get("scrapbook", {}).get("name")
                     for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])}
            names.discard(None)
            if not names:  # the saved copy keeps no glue records: the -W build already failed on a missing key
                continue
            assert key in names, f"{doc} glues {key!r}, which {ref} does not glue"


def test_built_math_uses_the_vendored_mathjax():
    pages = _built_pages()
    assert (HTML / MATHJAX).is_file()
    with_math = 0
    for doc, path in pages:
        page = _parse(path)
        mathjax = [s for s in page.scripts if "mathjax" in s.lower()]
        # every page, since glued text may carry math that Sphinx cannot see (book/_ext/math_everywhere.py)
        assert mathjax, f"{doc} loads no MathJax"
        with_math += "math" in page.classes
        for src in mathjax:
            assert not src.startswith(("http://", "https://", "//")), f"{doc} loads MathJax from {src}"
            assert (path.parent / src.split("?")[0]).resolve() == (HTML / MATHJAX).resolve()
    assert with_math, "no page of the book shows math: the method page should"


def test_environment_yml_pins_match_the_constraints():
    """Binder's environment.yml pins torch and torchvision to the versions of constraints.txt (those of
    the committed results), and those lie within the ranges of pyproject.toml."""
    import tomllib

    from packaging.requirements import Requirement

    deps = {r.name: r for r in map(Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])}
    locked = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
                  for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#"))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    for name in ("torch", "torchvision"):
        assert f"{name}=={locked[name]}" in pip, f"{name}: constraints.txt has {locked[name]}, environment.yml has {pip}"
        assert deps[name].specifier.contains(locked[name]), f"{name} {locked[name]} is outside pyproject's {deps[name]}"
    assert "python=3.11" in env["dependencies"]


# ---- the .ipynb copies that the launch buttons open ---------------------------------------------

def test_ipynb_copies_hold_the_cells_of_their_py(tmp_path):
    import jupytext

    from ddgd.pages import colab as launch

    out = launch.write_ipynb_copies(tmp_path / "ipynb", ["table1"])
    assert out == [tmp_path / "ipynb" / "table1.ipynb"]
    cells = json.loads(out[0].read_text())["cells"]
    py = jupytext.read(ROOT / reproduce.ARTEFACTS["table1"]).cells
    assert [c["cell_type"] for c in cells[1:]] == [c.cell_type for c in py]
    assert ["".join(c["source"]) for c in cells[1:]] == [c.source for c in py]
    assert not list((ROOT / "notebooks").rglob("*.ipynb")), "notebooks are committed as .py only"


def test_colab_setup_cell_is_hidden_and_names_the_repository():
    from ddgd.pages import colab as launch

    nb = launch.ipynb_copy(ROOT / reproduce.ARTEFACTS["table1"])
    setup = nb.cells[0]
    assert setup.metadata["tags"] == ["remove-cell"] and "google.colab" in setup.source
    assert launch.repository_url() in setup.source
    assert not any("google.colab" in c.source for c in nb.cells[1:])
