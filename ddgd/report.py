"""Provenance of result rows and the tables of the book (SPEC sections 5-6).

`load_results` reads result CSVs (the rows of `ddgd.evaluate.append_result`), `summary` reduces the
repeated runs of each cell to mean, std (sample std, ddof 1) and n, and `table` lays them out as
the paper does: one row per method, one column per (network, IPC), cells "mean ± std". The
published numbers of SPEC section 6 are in `REFERENCES`, each row labelled with where it comes
from; `reference_table` shapes them the same way so they can stand beside our own results.
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

# The order in which methods appear in a table; unknown methods follow, alphabetically.
METHOD_ORDER = ("random", "dc", "dsa", "kip", "dit", "finetune", "minimax", "ddgd", "full")
# Networks in the order of Minimax's tables.
NETWORK_ORDER = ("convnet-3", "convnet-6", "resnetap-10", "resnet-18")


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


def git_commit() -> str:
    """The repository's commit, with "-dirty" if tracked or new files differ from it; "unknown" outside git."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if status else "")


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


def load_results(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """All rows of the given result CSVs (a directory stands for its *.csv files) as one DataFrame."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.csv"))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no results file {p}: run `ddgd evaluate` first or check the path")
    frames = [pd.read_csv(f) for f in files if f.stat().st_size > 0]
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
          decimals: int = 1) -> pd.DataFrame:
    """The paper's table shape: `rows` down, `columns` across, cells "mean ± std" of `metric` (strings)."""
    s = summary(df, by=(rows, *columns), metric=metric)
    s["cell"] = [format_cell(m, sd, n, decimals) for m, sd, n in zip(s["mean"], s["std"], s["n"])]
    wide = s.pivot(index=rows, columns=list(columns), values="cell").fillna("")
    return _arrange(wide, rows)


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


# ----------------------------------------------------------------------------------------------
# Published numbers (SPEC section 6). Top-1 %, means of the published runs, hard labels.

MINIMAX = "Minimax (Gu et al., CVPR 2024), hard labels"
MINIMAX_QUOTED = "Minimax (Gu et al., CVPR 2024) as quoted by later papers, hard labels"
KIP = "KIP (Nguyen et al., ICLR 2021), comparison table"


def _references() -> list[dict]:
    rows: list[dict] = []

    def add(source, dataset, method, network, ipc, top1):
        rows.append(dict(source=source, dataset=dataset, method=method, network=network, ipc=ipc, top1=top1))

    # ImageWoof (Random / DiT / Minimax per IPC and network); Full is one value per network.
    woof = {10: ((24.3, 34.2, 37.0), (29.4, 34.7, 39.2), (27.7, 34.7, 37.6)),
            20: ((29.1, 36.1, 37.6), (32.7, 41.1, 45.8), (29.7, 40.5, 42.5)),
            50: ((41.3, 46.5, 53.9), (47.2, 49.3, 56.3), (47.9, 50.1, 57.1)),
            70: ((46.3, 50.1, 55.7), (50.8, 54.3, 58.3), (52.1, 51.5, 58.8)),
            100: ((52.2, 53.4, 61.1), (59.4, 58.3, 64.5), (61.5, 58.9, 65.7))}
    nets = ("convnet-6", "resnetap-10", "resnet-18")
    for ipc, cells in woof.items():
        for net, values in zip(nets, cells):
            for method, v in zip(("random", "dit", "minimax"), values):
                add(MINIMAX, "imagewoof", method, net, ipc, v)
    for net, v in zip(nets, (86.4, 87.5, 89.3)):
        add(MINIMAX, "imagewoof", "full", net, None, v)
    # ImageNette and ImageIDC, ResNetAP-10, IPC 10 / 20 / 50.
    quoted = {"imagenette": {"random": (54.2, 63.5, 76.1), "dit": (59.1, 64.8, 73.3), "minimax": (62.0, 66.8, 76.6),
                             "full": 93.3},
              "imageidc": {"random": (48.1, 52.5, 68.1), "dit": (54.1, 58.9, 64.3), "minimax": (53.1, 59.0, 69.6),
                           "full": 92.1}}
    for dataset, methods in quoted.items():
        for method, values in methods.items():
            if method == "full":
                add(MINIMAX_QUOTED, dataset, method, "resnetap-10", None, values)
                continue
            for ipc, v in zip((10, 20, 50), values):
                add(MINIMAX_QUOTED, dataset, method, "resnetap-10", ipc, v)
    # Fashion-MNIST, ConvNet-3 at 28 px, IPC 1 / 10 / 50.
    for method, values in (("dc", (70.5, 82.3, 83.6)), ("dsa", (70.6, 84.6, 88.7)), ("kip", (73.8, 86.8, 87.8))):
        for ipc, v in zip((1, 10, 50), values):
            add(KIP, "fashion-mnist", method, "convnet-3", ipc, v)
    return rows


# Tidy rows: source, dataset, method, network, ipc (None for the full training set), top1.
REFERENCES: pd.DataFrame = pd.DataFrame(_references()).astype({"ipc": "Int64"})


def reference_table(dataset: str, networks: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                    columns: Sequence[str] = ("network", "ipc"), decimals: int = 1) -> pd.DataFrame:
    """Published numbers for `dataset` in the shape of `table`, rows indexed by (source, method).

    A full-dataset number (no IPC) is shown in every IPC column of its network, since it does not
    depend on the IPC.
    """
    ref = REFERENCES[REFERENCES["dataset"] == dataset]
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
