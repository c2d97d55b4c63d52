"""Provenance of result rows and the tables of the book (book pages: Parity, Table 1).

`load_results` reads result CSVs (the rows of `ddgd.experiments.results.append_result`), `select_runs` keeps
the rows that one configuration produced, `summary` reduces the repeated runs of each cell to mean,
std (sample std, ddof 1) and n, and `table` lays them out as the paper does: one row per method,
one column per (network, IPC), cells "mean ± std". `ddgd.experiments.comparisons` says, cell by
cell, what the paired-by-seed differences between methods resolve (`ddgd.experiments.statistics`).
The published numbers (`ddgd.experiments.references`) are shaped the same way by
`reference_table` and `references_markdown`, always labelled with where they come from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ddgd.config import config_hash
from ddgd.experiments.references import KIP, MINIMAX, MINIMAX_QUOTED, NOTES, REFERENCES  # noqa: F401 (re-exported)
from ddgd.experiments.results import read_checked
from ddgd.experiments.runs import run_config

# The order in which methods appear in a table; unknown methods follow, alphabetically.
METHOD_ORDER = ("random", "dc", "dsa", "kip", "dit", "finetune", "minimax", "ddgd", "full")
# Networks in the order of Minimax's tables.
NETWORK_ORDER = ("convnet-3", "convnet-6", "resnetap-10-w32", "resnetap-10", "resnet-18")


def load_results(paths: str | Path | Iterable[str | Path], missing_ok: bool = False) -> pd.DataFrame:
    """All rows of the given result CSVs (a directory stands for its *.csv files) as one DataFrame.

    A path that does not exist is an error, unless `missing_ok` (a table page before any run).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.csv"))
        elif p.exists():
            files.append(p)
        elif not missing_ok:
            raise FileNotFoundError(f"no results file {p}: run `ddgd evaluate` first or check the path")
    # config_hash as text: a hash of digits only would otherwise become a number and lose leading zeros
    for f in files:
        read_checked(f)  # a truncated or extended row is an error naming its line, not a padded row
    frames = [pd.read_csv(f, dtype={"config_hash": str}) for f in files if f.stat().st_size > 0]
    if not frames:
        return pd.DataFrame(columns=["method", "dataset", "ipc", "network", "seed", "best", "final"])
    return pd.concat(frames, ignore_index=True)


def summary(df: pd.DataFrame, by: Sequence[str] = ("method", "dataset", "ipc", "network"),
            metric: str = "best") -> pd.DataFrame:
    """Mean, sample std (ddof 1; NaN for one run) and number of runs of `metric` per group."""
    missing = [c for c in (*by, metric) if c not in df.columns]
    if missing:
        raise ValueError(f"results lack the column(s) {', '.join(missing)}; present: {', '.join(df.columns)}")
    g = df.groupby(list(by), dropna=False)[metric]
    return g.agg(mean="mean", std="std", n="count").reset_index()


def format_cell(mean: float, std: float, n: int, decimals: int = 1) -> str:
    """"mean ± std"; the number of runs is added when under 3 (too few for a reliable spread)."""
    if pd.isna(mean):
        return ""
    text = f"{mean:.{decimals}f}" if n < 2 or pd.isna(std) else f"{mean:.{decimals}f} ± {std:.{decimals}f}"
    return text + (f" (n={n})" if n < 3 else "")


def _method_key(index: pd.Index) -> pd.Index:
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return pd.Index([(rank.get(str(m), len(rank)), str(m)) for m in index])


def _sort_columns(wide: pd.DataFrame) -> pd.DataFrame:
    """Columns by network in NETWORK_ORDER, then by IPC (numerically), then by name."""
    rank = {n: i for i, n in enumerate(NETWORK_ORDER)}
    names = list(wide.columns.names)

    def key(col):
        parts = col if isinstance(col, tuple) else (col,)
        return tuple((rank.get(v, len(rank)), str(v)) if n == "network" else
                     (0, f"{int(v):09d}") if n == "ipc" and not pd.isna(v) else (1, str(v))
                     for n, v in zip(names, parts))

    return wide[sorted(wide.columns, key=key)]


def _arrange(wide: pd.DataFrame, rows: str) -> pd.DataFrame:
    if rows == "method":
        wide = wide.sort_index(key=_method_key)
    return _sort_columns(wide)


def table(df: pd.DataFrame, metric: str = "best", rows: str = "method", columns: Sequence[str] = ("network", "ipc"),
          decimals: int = 1, row_order: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's table shape: `rows` down, `columns` across, cells "mean ± std" of `metric` (strings).

    Rows follow `row_order` when given (labels without results are left out), else METHOD_ORDER
    for methods and alphabetical order otherwise. No results give an empty table. Rows of several
    datasets are never averaged together: the dataset becomes the first column level.
    """
    if "dataset" in df.columns and df["dataset"].nunique() > 1 and "dataset" not in (rows, *columns):
        columns = ("dataset", *columns)
    s = summary(df, by=(rows, *columns), metric=metric)
    if s.empty:
        return pd.DataFrame(index=pd.Index([], name=rows))
    s["cell"] = [format_cell(m, sd, n, decimals) for m, sd, n in zip(s["mean"], s["std"], s["n"])]
    wide = s.pivot(index=rows, columns=list(columns), values="cell").fillna("")
    wide = _arrange(wide, rows)
    return wide if row_order is None else wide.loc[[r for r in row_order if r in wide.index]]


def format_markdown(tab: pd.DataFrame) -> str:
    """A pipe table; MultiIndex columns become "network, IPC 10" style headers."""

    def name(col) -> str:
        parts = col if isinstance(col, tuple) else (col,)
        names = tab.columns.names if isinstance(col, tuple) else [tab.columns.name]
        return ", ".join(f"IPC {v}" if n == "ipc" else str(v) for n, v in zip(names, parts))

    index_name = " / ".join(str(n) for n in tab.index.names if n) or ""
    head = [index_name] + [name(c) for c in tab.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + [":-:"] * len(tab.columns)) + "|"]
    for idx, row in tab.iterrows():
        label = " / ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
        lines.append("| " + " | ".join([label] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


def reference_table(dataset: str, networks: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                    columns: Sequence[str] = ("network", "ipc"), decimals: int = 1,
                    strict: bool = True) -> pd.DataFrame:
    """Published numbers for `dataset` in the shape of `table`, rows indexed by (source, method).

    A full-dataset number (no IPC) is shown in every IPC column of its network, since it does not
    depend on the IPC. A dataset without published numbers is an error, or, unless `strict`, an
    empty table.
    """
    ref = REFERENCES[REFERENCES["dataset"] == dataset]
    if ref.empty and not strict:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["source", "method"]))
    if ref.empty:
        known = ", ".join(sorted(REFERENCES["dataset"].unique()))
        raise ValueError(f"no published numbers for {dataset!r}: known datasets are {known}")
    if networks is not None:
        ref = ref[ref["network"].isin(list(networks))]
    if methods is not None:
        ref = ref[ref["method"].isin(list(methods))]
    ipcs = sorted(int(i) for i in ref["ipc"].dropna().unique())
    full = ref[ref["ipc"].isna()]
    ref = pd.concat([ref[ref["ipc"].notna()]] + [full.assign(ipc=i) for i in ipcs], ignore_index=True)
    ref = ref.astype({"ipc": int})
    ref["cell"] = [f"{v:.{decimals}f}" for v in ref["top1"]]
    wide = ref.pivot_table(index=["source", "method"], columns=list(columns), values="cell", aggfunc="first")
    wide = wide.fillna("")
    order = sorted(wide.index, key=lambda sm: (sm[0], _method_key(pd.Index([sm[1]]))[0]))
    return _sort_columns(wide.loc[order])


def with_references(ours: pd.DataFrame, references: pd.DataFrame, label: str = "this project") -> pd.DataFrame:
    """Stack our `table` under the published `reference_table`, ours labelled `label` in the source level."""
    mine = ours.copy()
    mine.index = pd.MultiIndex.from_tuples([(label, m) for m in mine.index], names=["source", "method"])
    both = pd.concat([references, mine])
    return _sort_columns(both).fillna("")


# ----------------------------------------------------------------------------------------------
# Which rows belong to a configuration.

def run_hashes(cfg, methods: Sequence[str]) -> set[tuple[str, int, str]]:
    """(method, seed, config_hash) of every row that `run_experiment(cfg, methods, ...)` writes.

    The hash of a row is that of `ddgd.experiments.runs.run_config`, the config narrowed to the row's run;
    `full` has one IPC, the images per class of the training set, read from the rows themselves.
    """

    keys = set()
    for seed in cfg.eval.seeds:
        for m in methods:
            for net in cfg.eval.networks:
                for ipc in cfg.eval.ipcs:
                    keys.add((str(m), int(seed), config_hash(run_config(cfg, m, seed, ipc, net))))
    return keys


def select_runs(df: pd.DataFrame, cfg, methods: Sequence[str], variant: str | None = None) -> pd.DataFrame:
    """The rows of `df` that `run_experiment(cfg, methods, ...)` wrote; rows of other configs are left out.

    A row belongs when its method, seed and config hash are those of a run of `cfg` (`run_hashes`),
    so a CSV shared by several presets, variants or datasets yields each one's own rows. `variant`,
    when given, is written into the `variant` column of the rows kept (the ablation's row labels).
    """
    if df.empty:
        return df.assign(variant=pd.Series(dtype=str)) if variant is not None else df
    missing = [c for c in ("method", "seed", "config_hash") if c not in df.columns]
    if missing:
        raise ValueError(f"results lack the column(s) {', '.join(missing)}: not rows of ddgd.experiments.results.append_result")

    seeds = {int(s) for s in cfg.eval.seeds}
    methods = {str(m) for m in methods}

    def belongs(m, s, ipc, net, h) -> bool:  # the row's own run, hashed as run_experiment hashes it
        if str(m) not in methods or int(s) not in seeds:
            return False
        return config_hash(run_config(cfg, str(m), int(s), int(ipc), str(net))) == str(h)

    keep = [belongs(*row) for row in zip(df["method"], df["seed"], df["ipc"], df["network"], df["config_hash"])]
    out = df[keep].reset_index(drop=True)
    return out.assign(variant=variant) if variant is not None else out


def references_markdown(datasets: Sequence[str], decimals: int = 1) -> str:
    """The published numbers of each dataset as a labelled Markdown table (its note, then sources / methods)."""
    blocks = []
    for dataset in datasets:
        note = NOTES.get(dataset, "published numbers")
        blocks.append(f"**{dataset}**: {note}\n\n" + format_markdown(reference_table(dataset, decimals=decimals)))
    return "\n\n".join(blocks) if blocks else "No published numbers are shown for this configuration."
