"""The book's numbers are those of the result files they came from (issue 4, item 6).

Every number a table or figure page shows is glued by its notebook (`myst_nb.glue`) from a result
CSV. These tests execute the notebooks of Tables 1-3 and Figure 4 through `ddgd.experiments.reproduce.run`
with the `smoke` preset, read the glued values back from the executed notebook and recompute them
from the CSV with `ddgd.experiments.report` (and `ddgd.experiments.variants`):

* table1 runs end to end (`compute`) and is checked against the CSV it wrote itself;
* table2, table3 and figure4 read a CSV written here (`compute` off, as the book does with their
  committed files): several seeds, so that the spread is shown, plus rows of other configurations
  that the page must leave out. This also keeps the module within a minute on a busy machine.

When the book is built (`_build/html`), the numbers on the Table 1 page are checked against the
committed result file, read at test time. One executed notebook per artefact is shared by its
tests (module-scoped fixtures).
"""
from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import zlib
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import jupytext
import pandas as pd
import pytest

from ddgd.base.provenance import provenance_line
from ddgd.experiments import comparisons, report
from ddgd.experiments import reproduce
from ddgd.experiments import variants as sweep
from ddgd.config import SAMPLE_STAGES, config_hash, project_path, resolve
from ddgd.experiments.results import result_row
from ddgd.experiments.runs import run_config

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
PROVENANCE = {"torch": "0.0", "diffusers": "0.0", "ddgd": "0.0", "commit": "abc123def4567", "hardware": "test"}
SEEDS = [0, 1, 2]  # several seeds, so that cells show a spread


# ---- reading what a notebook glued ---------------------------------------------------------------

def glued(notebook: Path) -> dict[str, dict[str, str]]:
    """Key -> mime bundle of every `glue` output of an executed notebook (papermill's record prefix removed)."""
    found: dict[str, dict[str, str]] = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if meta:
                assert meta["name"] not in found, f"{notebook.name} glues {meta['name']!r} twice"
                prefix = meta.get("mime_prefix", "")
                found[meta["name"]] = {k.removeprefix(prefix): v for k, v in out["data"].items()}
    return found


def value(bundle: dict[str, str]):
    """The glued Python value, read back from its text/plain repr ("nan" is a float)."""
    text = bundle["text/plain"]
    return float("nan") if text == "nan" else ast.literal_eval(text)


def same(got, expected) -> bool:
    if isinstance(expected, float):
        return (math.isnan(got) and math.isnan(expected)) or math.isclose(got, expected, abs_tol=1e-9)
    return got == expected


def check_values(glue: dict, expected: dict) -> None:
    wrong = {k: (value(glue[k]), v) for k, v in expected.items() if not same(value(glue[k]), v)}
    assert not wrong, f"glued (shown) against recomputed from the CSV: {wrong}"


def check_table(glue: dict, key: str, expected: pd.DataFrame) -> None:
    assert glue[key]["text/html"] == expected._repr_html_(), \
        f"{key} shows\n{glue[key]['text/plain']}\nbut the CSV gives\n{expected.to_string()}"


class _Tables(HTMLParser):
    """The cell texts of every <table> of an HTML text: tables -> rows -> cells."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


# ---- result CSVs written here ---------------------------------------------------------------------

def fake_rows(cfg, method: str, variant: str | None = None, seeds=None) -> list[dict]:
    """Rows as `run_experiment(cfg, (method,), ...)` writes them, with made-up accuracies."""
    rows = []
    for seed in seeds if seeds is not None else cfg.eval.seeds:
        for net in cfg.eval.networks:
            for ipc in cfg.eval.ipcs:
                h = config_hash(run_config(cfg, method, seed, ipc, net))
                best = 20 + zlib.crc32(f"{method} {variant} {seed} {ipc}".encode()) % 6000 / 100  # 20.00-79.99
                result = {"best": best, "final": best - seed - 1, "epochs": cfg.eval.epochs, "wall_s": 1.0}
                rows.append({**result_row(method, cfg.data.dataset, ipc, net, seed, result, h, PROVENANCE),
                             "variant": variant or ""})
    return rows


def fake_diversity_rows(cfg, method: str) -> list[dict]:
    """Rows as `ddgd diversity` writes them, keyed by each set's sample hash, with made-up measures: the
    whole set (class "all"), and one class whose coverage of 5 lies outside [0, 1] (a page shows none)."""
    from ddgd.experiments.diversity import DIVERSITY_COLUMNS

    rows = []
    for seed in cfg.eval.seeds:
        for ipc in cfg.eval.ipcs:
            h = config_hash(run_config(cfg, method, seed, ipc), *SAMPLE_STAGES)
            u = zlib.crc32(f"{h} {seed}".encode()) % 1000 / 1000
            row = {**{c: "" for c in DIVERSITY_COLUMNS}, "method": method, "dataset": cfg.data.dataset, "ipc": ipc,
                   "seed": seed, "feature_space": "judge (made up)", "config_hash": h, "diversity_hash": "d"}
            rows += [{**row, "class": "all", "coverage": u, "recall": 1 - u, "vendi": 1 + 9 * u},
                     {**row, "class": "0", "coverage": 5.0, "recall": 5.0, "vendi": 5.0}]
    return rows


def diversity_expected(div: pd.DataFrame, rows: str, order) -> pd.DataFrame:
    """The section's table, recomputed from the whole-set rows with the report module."""
    names = {"coverage": "coverage", "recall": "recall", "vendi": "Vendi score"}
    whole = div[div["class"].astype(str) == "all"]
    return pd.concat({names[m]: report.table(whole, metric=m, rows=rows, columns=("ipc",), decimals=3, row_order=order)
                      for m in names}, axis=1)


def foreign_rows(cfg, method: str) -> list[dict]:
    """Rows the page must leave out: a seed the config does not run, and another config's hash."""
    other_seed = fake_rows(cfg, method, seeds=[max(cfg.eval.seeds) + 7])
    other_hash = [{**r, "config_hash": "0123456789ab"} for r in fake_rows(cfg, method)]
    return other_seed + other_hash


def keys(df: pd.DataFrame) -> set[tuple]:
    return set(zip(df["method"], df["dataset"], df["seed"].astype(int), df["ipc"].astype(int), df["config_hash"]))


# ---- running the notebooks -----------------------------------------------------------------------

RUNNER = ("import json, sys\nfrom ddgd.experiments.reproduce import run\na = json.loads(sys.argv[1])\n"
          "print(run(a['artefact'], 'smoke', a['overrides'], a['output_dir'], progress=False))")


def smoke_params(artefact: str) -> dict:
    """The parameters a smoke run uses: the notebook's defaults, then smoke.yaml."""
    defaults = reproduce.notebook_parameters(reproduce.notebook_path(artefact))
    return {**defaults, **reproduce.load_params(artefact, "smoke")}


def prepare_table1(folder: Path):
    """Table 1 computes its runs (`compute` is on in smoke.yaml) and writes <output_dir>/table1.csv itself."""
    params = smoke_params("table1")
    return {}, (resolve(params["preset"], params["overrides"]), params["methods"])


def prepare_table2(folder: Path):
    """Two datasets in one CSV, three seeds, and rows of other configurations."""
    smoke = smoke_params("table2")
    overrides = {**smoke["overrides"], "eval.seeds": SEEDS}
    datasets, methods = ["digits", "fashion-mnist"], ["random", "dit", "minimax", "ddgd"]
    configs = {d: resolve(smoke["preset"], {**overrides, "data.dataset": d}) for d in datasets}
    own = [r for cfg in configs.values() for m in methods for r in fake_rows(cfg, m)]
    other = [r for cfg in configs.values() for r in foreign_rows(cfg, "ddgd")]
    pd.DataFrame(own + other).to_csv(csv := folder / "table2-input.csv", index=False)
    pd.DataFrame([r for cfg in configs.values() for m in methods for r in fake_diversity_rows(cfg, m)]).to_csv(
        folder / "table2-input.diversity.csv", index=False)
    return (dict(datasets=datasets, methods=methods, overrides=overrides, results_csv=str(csv), compute=False),
            (configs, methods, pd.DataFrame(own), csv))


def prepare_table3(folder: Path):
    """One row per variant of the notebook's defaults, three seeds each."""
    params = smoke_params("table3")
    overrides = {**params["overrides"], "eval.seeds": SEEDS}
    configs = {label: (spec["method"], resolve(params["preset"], {**overrides, **{k: v for k, v in spec.items()
                                                                                   if k != "method"}}))
               for label, spec in params["variants"].items()}
    own = [r for label, (m, cfg) in configs.items() for r in fake_rows(cfg, m, variant=label)]
    other = foreign_rows(configs[params["focus"]][1], "ddgd")
    pd.DataFrame(own + other).to_csv(csv := folder / "table3-input.csv", index=False)
    # the diversity rows of the same sets, and one of a set the page must leave out
    div = [r for m, cfg in configs.values() for r in fake_diversity_rows(cfg, m)]
    pd.DataFrame(div + [{**div[0], "config_hash": "0123456789ab", "coverage": 9.0}]).to_csv(
        folder / "table3-input.diversity.csv", index=False)
    return (dict(overrides=overrides, results_csv=str(csv), compute=False),
            (configs, params["focus"], pd.DataFrame(own), csv))


def prepare_figure4(folder: Path):
    """Every point of the smoke sweeps, three seeds each."""
    params = smoke_params("figure4")
    overrides = {**params["overrides"], "eval.seeds": SEEDS}
    cfg = resolve(params["preset"], overrides)
    points = sweep.sweep_points(cfg, params["sweeps"])
    own = [r for label, point in points for r in fake_rows(point, "ddgd", variant=label)]
    pd.DataFrame(own + foreign_rows(cfg, "ddgd")).to_csv(csv := folder / "figure4-input.csv", index=False)
    return (dict(overrides=overrides, results_csv=str(csv), compute=False),
            (cfg, params["sweeps"], points, pd.DataFrame(own)))


PREPARE = {"table1": prepare_table1, "table2": prepare_table2, "table3": prepare_table3, "figure4": prepare_figure4}


@pytest.fixture(scope="module")
def launched(tmp_path_factory, request):
    """The notebooks of the selected tests all start at once, each in its own process.

    On a busy shared machine most of a smoke run is the kernel waiting for its share of the CPU
    while it imports torch, so four runs side by side take about as long as two in a row.
    """
    started = {}
    try:
        for name, prepare in PREPARE.items():
            if not any(name in item.name for item in request.session.items):
                continue
            folder = tmp_path_factory.mktemp(name)
            overrides, context = prepare(folder)
            args = json.dumps({"artefact": name, "overrides": overrides, "output_dir": str(folder)})
            with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:  # no pipe to fill
                proc = subprocess.Popen([sys.executable, "-c", RUNNER, args], stdout=out, stderr=err)
            started[name] = (proc, folder, context)
        yield started
    finally:
        for proc, _, _ in started.values():
            if proc.poll() is None:  # its test failed or was interrupted before the run ended
                proc.kill()
                proc.wait()


def executed(launched, name: str):
    """(glued values, notebook path, context of its prepare function) once the notebook has run."""
    proc, folder, context = launched[name]
    proc.wait(timeout=600)
    err = (folder / "stderr.txt").read_text()
    assert proc.returncode == 0, f"{name} failed with the smoke preset:\n{err[-3000:]}"
    notebook = Path((folder / "stdout.txt").read_text().strip().splitlines()[-1])
    return glued(notebook), notebook, context


# ---- Table 1: the notebook computes its runs and writes the CSV itself ----------------------------

@pytest.fixture(scope="module")
def table1(launched):
    glue, notebook, (cfg, methods) = executed(launched, "table1")
    return glue, cfg, methods, report.load_results(notebook.parent / "table1.csv")


def test_table1_every_row_it_wrote_is_shown(table1):
    glue, cfg, methods, found = table1
    runs = report.select_runs(found, cfg, methods)
    assert len(found) == len(methods) * len(cfg.eval.seeds) * len(cfg.eval.ipcs) * len(cfg.eval.networks)
    assert keys(runs) == keys(found), "rows of this configuration are missing from the page"
    check_values(glue, {"t1-runs": len(found), "t1-seeds": len(cfg.eval.seeds), "t1-network": cfg.eval.networks[0],
                        "t1-ipc": cfg.eval.ipcs[0], "t1-provenance": provenance_line(runs)})


def test_table1_headline_numbers_and_tables_match_its_csv(table1):
    glue, cfg, methods, found = table1
    runs = report.select_runs(found, cfg, methods)
    net0, ipc0 = cfg.eval.networks[0], cfg.eval.ipcs[0]
    best = {f"t1-{m}-best": comparisons.cell_mean(runs, m, net0, None if m == "full" else ipc0) for m in methods}
    assert not any(math.isnan(v) for v in best.values()), f"a method has no runs in its CSV: {best}"
    check_values(glue, best)
    check_table(glue, "t1-table", report.table(runs))
    check_table(glue, "t1-final-table", report.table(runs, metric="final"))
    others = [m for m in ("minimax", "finetune", "dit", "random") if m in methods]
    verdict = comparisons.describe_comparison(comparisons.compare(runs, "ddgd", others))
    assert glue["t1-verdict"]["text/markdown"] == verdict


# ---- Table 2: two datasets in one CSV -------------------------------------------------------------

def test_table2_numbers_match_the_csv(launched):
    glue, _, (configs, methods, own, csv) = executed(launched, "table2")
    found = report.load_results(csv)
    kept = pd.concat([report.select_runs(found, cfg, methods) for cfg in configs.values()], ignore_index=True)
    assert keys(kept) == keys(own), "the rows kept are not those of the two configurations"
    first = next(iter(configs.values()))
    net0, ipc0 = first.eval.networks[0], first.eval.ipcs[0]
    best = {f"t2-{comparisons.slug(d)}-{m}-best": comparisons.cell_mean(kept[kept["dataset"] == d], m, net0, ipc0)
            for d in configs for m in methods}
    assert len({round(v, 4) for v in best.values()}) > 1, "made-up accuracies should differ between cells"
    check_values(glue, {**best, "t2-runs": len(own), "t2-seeds": len(SEEDS), "t2-ipc": ipc0})
    check_table(glue, "t2-table", report.table(kept, columns=("dataset", "network", "ipc")))
    check_table(glue, "t2-final-table", report.table(kept, metric="final", columns=("dataset", "network", "ipc")))
    assert "±" in glue["t2-table"]["text/plain"], "with three seeds every cell shows its spread"
    # the diversity section: per dataset and method, DDGD first; DDGD's mean coverage on each subset is shown
    div = pd.read_csv(csv.with_name("table2-input.diversity.csv"))
    check_table(glue, "t2-div-table", diversity_expected(div, "method", ["ddgd", "minimax", "dit", "random"]))
    whole = div[(div["class"] == "all") & (div["method"] == "ddgd")]
    for dataset, part in whole.groupby("dataset"):
        assert f"{part['coverage'].mean():.3f} against" in glue["t2-div-coverage"]["text/markdown"], dataset


# ---- Table 3: one row per variant -----------------------------------------------------------------

def test_table3_numbers_match_the_csv(launched):
    glue, _, (configs, focus, own, csv) = executed(launched, "table3")
    found = report.load_results(csv)
    runs = pd.concat([report.select_runs(found, cfg, [m], variant=label) for label, (m, cfg) in configs.items()],
                     ignore_index=True)
    assert keys(runs) == keys(own)
    assert (runs["variant"].to_numpy() == own["variant"].to_numpy()).all(), "a row is shown under another variant"
    net0, ipc0 = configs[focus][1].eval.networks[0], configs[focus][1].eval.ipcs[0]
    best = {f"t3-{comparisons.slug(label)}-best": comparisons.cell_mean(runs, label, net0, ipc0, column="variant")
            for label in configs}
    check_values(glue, {**best, "t3-runs": len(own), "t3-seeds": len(SEEDS)})
    check_table(glue, "t3-table", report.table(runs, rows="variant", row_order=list(configs)))
    check_table(glue, "t3-final-table", report.table(runs, metric="final", rows="variant", row_order=list(configs)))
    # the diversity section: mean ± std over seeds per variant, of the whole sets of the page's configs only
    div = pd.read_csv(csv.with_name("table3-input.diversity.csv"))
    div = div[div["config_hash"] != "0123456789ab"].copy()
    div["variant"] = [next(label for label, (m, cfg) in configs.items() if (m, r.config_hash) in {
        (m, config_hash(run_config(cfg, m, s, i), *SAMPLE_STAGES)) for s in cfg.eval.seeds for i in cfg.eval.ipcs})
        for r in div.itertuples()]
    check_table(glue, "t3-div-table", diversity_expected(div, "variant", list(configs)))
    whole = div[div["class"] == "all"]
    mean = whole[whole["variant"] == focus]["coverage"].mean()
    assert f"{mean:.3f} against" in glue["t3-div-coverage"]["text/markdown"], "the focus's mean coverage is not shown"
    assert value(glue["t3-div-space"]) == "judge (made up)"


# ---- Figure 4: the sweep's summary table ----------------------------------------------------------

def test_figure4_summary_matches_the_csv(launched):
    glue, _, (cfg, sweeps, points, own) = executed(launched, "figure4")
    check_values(glue, {"fig4-runs": len(own), "fig4-points": len(points), "fig4-seeds": len(SEEDS)})
    header, *rows = html_tables(glue["fig4-table"]["text/html"])[0]
    shown = [dict(zip(header[1:], r[1:])) for r in rows]  # the first column is the frame's index
    assert len(shown) == sum(len(set(v)) for v in sweeps.values()), "one row per value of each swept parameter"
    marks = sweep.defaults(cfg)
    for row in shown:  # recomputed here from the rows of the points on this parameter's line
        param, at = row["param"], float(row["value"])
        on_line = [label for label, p in points if math.isclose(sweep.param_value(p, param), at)
                   and all(math.isclose(sweep.param_value(p, q), marks[q]) for q in sweeps if q != param)]
        best = own[own["variant"].isin(on_line)]["best"]
        assert (float(row["mean"]), float(row["min"]), float(row["max"]), int(row["n"])) == pytest.approx(
            (round(best.mean(), 2), round(best.min(), 2), round(best.max(), 2), len(SEEDS))), row


# ---- the built book: the Table 1 page against the committed result file ---------------------------

def glue_text_roles(text: str, ref: str = "") -> list[tuple[str, str]]:
    """(key, format spec) of every {glue:text} role in `text` that pastes from `ref` ("" = its own page), in order."""
    lines = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("%"))  # MyST comments
    prefix = re.escape(f"{ref}::") if ref else ""
    return [(k, f or "s") for k, f in re.findall(rf"\{{glue:text\}}`{prefix}([^`:]+)(?::([^`]*))?`", lines)]


def markdown_of(artefact: str) -> str:
    """The markdown cells of an artefact's notebook: the text of its page."""
    cells = jupytext.read(reproduce.notebook_path(artefact)).cells
    return "\n".join(c.source for c in cells if c.cell_type == "markdown")


def table1_expected(csv: Path) -> tuple[dict, pd.DataFrame]:
    """What every glue:text key of table1.py should show, and the rows it shows, recomputed from `csv`."""
    params = reproduce.notebook_parameters(reproduce.notebook_path("table1"))
    cfg, methods = resolve(params["preset"], params["overrides"]), params["methods"]
    runs = report.select_runs(report.load_results(csv), cfg, methods)
    net0, ipc0 = cfg.eval.networks[0], cfg.eval.ipcs[0]
    expected = {f"t1-{m}-best": comparisons.cell_mean(runs, m, net0, None if m == "full" else ipc0) for m in methods}
    expected.update({"t1-runs": len(runs), "t1-seeds": runs["seed"].nunique() if len(runs) else 0, "t1-ipc": ipc0,
                     "t1-network": net0, "t1-dataset": cfg.data.dataset, "t1-preset": params["preset"],
                     "t1-csv": str(params["results_csv"]), "t1-provenance": provenance_line(runs)})
    return expected, runs


def check_pasted(page: Path, roles: list[tuple[str, str]], expected: dict, csv: Path) -> None:
    """The page's pasted values, in order, are `expected` formatted as its roles ask."""
    shown = [unescape(s) for s in re.findall(r'<span class="pasted-text">(.*?)</span>', page.read_text("utf-8"))]
    assert len(shown) == len(roles), f"{page.name} shows {len(shown)} glued values for {len(roles)} roles"
    for (key, fmt), text in zip(roles, shown):
        assert key in expected, f"table1.py glues {key!r}: add how to recompute it to this test"
        want = format(str(expected[key]) if fmt.endswith("s") else expected[key], fmt)  # as myst-nb formats
        assert text == want, f"{page.name}, {key}: the page shows {text}, {csv.name} gives {expected[key]}"


def check_table1_page(page: Path, csv: Path) -> None:
    """Every {glue:text} value and both tables of the built page are what the report computes from `csv`."""
    expected, runs = table1_expected(csv)
    check_pasted(page, glue_text_roles(markdown_of("table1")), expected, csv)
    tables = html_tables(page.read_text(encoding="utf-8"))
    for metric in ("best", "final"):
        cells = html_tables(report.table(runs, metric=metric)._repr_html_())[0]
        assert cells in tables, f"the {metric} table of {page.name} is not the one {csv.name} gives:\n{cells}"


def check_intro_page(page: Path, source: Path, csv: Path) -> None:
    """The headline numbers of the intro, pasted from table1.py, are what the report computes from `csv`."""
    roles = glue_text_roles(source.read_text(encoding="utf-8"), "/notebooks/table1.py")
    assert roles, f"{source.name} pastes no numbers from table1.py"
    check_pasted(page, roles, table1_expected(csv)[0], csv)


def built_page(path: Path, csv: Path) -> Path:
    """The built page, or a skip when the book is not built or older than `csv` (fail under DDGD_REQUIRE_BOOK)."""
    required = os.environ.get("DDGD_REQUIRE_BOOK")
    if not path.is_file():
        if required:
            pytest.fail(f"DDGD_REQUIRE_BOOK is set but {path.name} was not built: run make book first")
        pytest.skip("the book is not built (make book)")
    if csv.stat().st_mtime > path.stat().st_mtime and not required:
        pytest.skip(f"{csv.name} changed after the book was built: rebuild it (make book) to compare")
    return path


def committed_csv() -> Path:
    return project_path(reproduce.notebook_parameters(reproduce.notebook_path("table1"))["results_csv"])


def test_built_table1_page_shows_the_committed_results():
    check_table1_page(built_page(HTML / "notebooks" / "table1.html", committed_csv()), committed_csv())


def test_built_intro_shows_the_headline_numbers_of_table1():
    page = built_page(HTML / "book" / "intro.html", committed_csv())
    check_intro_page(page, ROOT / "book" / "intro.md", committed_csv())


# ---- the committed result files hold every run of the book's CPU settings ------------------------

def cpu_params(artefact: str) -> dict:
    return {**reproduce.notebook_parameters(reproduce.notebook_path(artefact)), **reproduce.load_params(artefact, "cpu")}


def expected_rows(cfg, methods) -> int:
    """Rows `run_experiment(cfg, methods)` writes: every seed x network x IPC (`full`: one IPC)."""
    per_seed = sum(len(cfg.eval.networks) * (1 if m == "full" else len(cfg.eval.ipcs)) for m in methods)
    return per_seed * len(cfg.eval.seeds)


@pytest.mark.parametrize("artefact", ["table1", "table2", "table3", "figure4", "benchmark"])
def test_committed_cpu_results_are_complete(artefact):
    """The book reads these files; a missing run would leave a cell empty (or make the build compute it)."""
    p = cpu_params(artefact)
    csv = project_path(p["results_csv"])
    found = report.load_results(csv)
    assert found.duplicated(["method", "dataset", "ipc", "network", "seed", "config_hash"]).sum() == 0, \
        f"{csv.name} holds a run twice"
    if artefact == "figure4":
        cfg = resolve(p["preset"], p["overrides"])
        assert sweep.pending(cfg, p["sweeps"], csv) == [], f"{csv.name} lacks runs of the sweep"
        return
    if artefact == "table3":
        jobs = [(spec["method"], resolve(p["preset"], {**p["overrides"], **{k: v for k, v in spec.items()
                                                                              if k != "method"}}))
                for spec in p["variants"].values()]
    elif artefact == "table2":
        jobs = [(m, resolve(p["preset"], {**p["overrides"], "data.dataset": d})) for d in p["datasets"]
                for m in p["methods"]]
    else:
        jobs = [(m, resolve(p["preset"], p["overrides"])) for m in p["methods"]]
    for method, cfg in jobs:
        kept = report.select_runs(found, cfg, [method])
        assert len(kept) == expected_rows(cfg, [method]), \
            f"{csv.name} holds {len(kept)} runs of {method} on {cfg.data.dataset}, not {expected_rows(cfg, [method])}"
        if artefact in ("table2", "table3") and method != "full":  # their diversity sections read these too
            from ddgd.pages.diversity_accuracy import diversity_of

            sets = diversity_of(cfg, [method], csv, root=ROOT / "runs", compute=False)
            assert len(sets) == len(cfg.eval.seeds) * len(cfg.eval.ipcs), \
                f"{csv.stem}.diversity.csv lacks sets of {method} on {cfg.data.dataset}"


def test_committed_full_preset_rows_are_runs_of_the_preset():
    """The full CPU preset's file (the benchmark page) holds only runs of its current settings, each once.

    The preset runs in pieces (resumable); rows of older settings would be left out of the page
    silently, so they must not linger in the committed file.
    """
    p = cpu_params("benchmark")
    csv = project_path(p["results_csv"])
    found = report.load_results(csv)
    assert len(found), f"{csv.name} holds no rows"
    assert found.duplicated(["method", "dataset", "ipc", "network", "seed", "config_hash"]).sum() == 0
    cfg = resolve(p["preset"], p["overrides"])
    kept = report.select_runs(found, cfg, p["methods"])
    assert len(kept) == len(found), f"{csv.name} holds {len(found) - len(kept)} rows of other settings"
    assert len(kept) <= expected_rows(cfg, p["methods"])
