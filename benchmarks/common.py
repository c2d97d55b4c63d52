"""What the benchmark scripts share: writing their rows and drawing a bar chart beside them."""
from __future__ import annotations

import csv
from pathlib import Path


def write_rows(path: str | Path, rows: list[dict]) -> Path:
    """One CSV of `rows` (the first row's keys are the columns), written whole or not at all."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written left beside the results
        raise
    tmp.replace(out)
    return out


def bar_figure(path: str | Path, labels, values, ylabel: str, title: str, goal: float | None = None,
               goal_label: str = "", log: bool = False) -> Path:
    """A bar per value, an optional dashed goal line; saved as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([str(x) for x in labels], list(values), color="#4c72b0")
    if goal is not None:
        ax.axhline(goal, color="k", ls="--", label=goal_label)
        ax.legend(fontsize=7)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)
