"""Sentences of the book's tables: one method against the others, cell by cell (book pages: Tables 1-3).

`compare` sets each cell's mean of one method against those of the others, with the spread between
seeds; `headline` and `describe_comparison` turn that into the sentences the pages print, saying
whether a difference exceeds the spread. The rows come from `ddgd.experiments.report.summary`.
"""
from __future__ import annotations

import re
from typing import Sequence

import pandas as pd

from ddgd.experiments.report import NETWORK_ORDER, summary

BETTER, WITHIN, WORSE, TOO_FEW = ("better by more than the spread", "within the spread",
                                  "worse by more than the spread", "too few runs for a spread")


COMPARE_COLUMNS = ("method", "other", "mean", "std", "n", "other_mean", "other_std", "other_n", "difference",
                   "spread", "verdict")


def slug(label: str) -> str:
    """A label as a file and glue-key name: lower case, runs of other characters than a-z and 0-9 as one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def cell_mean(df: pd.DataFrame, value: str, network: str | None = None, ipc: int | None = None,
              metric: str = "best", column: str = "method") -> float:
    """Mean `metric` of the rows whose `column` is `value` in one cell; NaN when there are none.

    `network` None takes the first network present (NETWORK_ORDER); `ipc` None the smallest IPC
    present (e.g. the one IPC of the `full` baseline).
    """
    rows = df[df[column] == value] if column in df.columns else df.iloc[0:0]
    if rows.empty:
        return float("nan")
    rank = {n: i for i, n in enumerate(NETWORK_ORDER)}
    network = network or min(rows["network"].unique(), key=lambda n: (rank.get(n, len(rank)), n))
    rows = rows[rows["network"] == network]
    ipc = int(rows["ipc"].min()) if ipc is None and not rows.empty else ipc
    rows = rows[rows["ipc"] == ipc]
    return float(rows[metric].mean()) if not rows.empty else float("nan")


def _verdict(method: str, difference: float, spread: float) -> str:
    if pd.isna(spread):
        return TOO_FEW
    if difference > spread:
        return f"{method} {BETTER}"
    return f"{method} {WORSE}" if difference < -spread else WITHIN


def headline(df: pd.DataFrame, values: Sequence[str], network: str | None = None, ipc: int | None = None,
             metric: str = "best", column: str = "method", decimals: int = 1) -> str:
    """One cell in words: "ddgd 52.0 %, minimax 48.0 % and random 61.0 %" (`cell_mean` of each value)."""
    parts = []
    for v in values:
        mean = cell_mean(df, v, network, ipc, metric, column)
        parts.append(f"{v} no runs yet" if pd.isna(mean) else f"{v} {mean:.{decimals}f} %")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else ""


def compare(df: pd.DataFrame, method: str = "ddgd", others: Sequence[str] = ("minimax", "dit", "random"),
            metric: str = "best", by: Sequence[str] = ("dataset", "ipc", "network"),
            column: str = "method") -> pd.DataFrame:
    """Per cell of `by` and per other method: both means, their difference and a verdict against the spread.

    The rule: `difference` = mean of `method` - mean of `other`; `spread` = the larger of the two
    sample standard deviations over seeds (ddof 1). The verdict is "<method> better by more than the
    spread" when difference > spread, "<method> worse by more than the spread" when difference <
    -spread, else "within the spread"; with fewer than 2 runs on either side there is no spread and
    the verdict is "too few runs for a spread". A gap beyond one std is a rough sign that it is more
    than seed noise, not a significance test: with 2-3 seeds a std is itself uncertain.
    Cells where either side has no runs are left out. `column` names what is compared (the
    `variant` column for an ablation). Columns: `by`, then COMPARE_COLUMNS.
    """
    s = summary(df, by=(column, *by), metric=metric)
    mine = s[s[column] == method].drop(columns=column)
    parts = []
    for other in others:
        theirs = s[s[column] == other].drop(columns=column).rename(columns=lambda c: f"other_{c}" if c in
                                                                   ("mean", "std", "n") else c)
        parts.append(mine.merge(theirs, on=list(by)).assign(method=method, other=other))
    if not parts or all(p.empty for p in parts):
        return pd.DataFrame(columns=[*by, *COMPARE_COLUMNS])
    out = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    out["difference"] = out["mean"] - out["other_mean"]
    out["spread"] = out[["std", "other_std"]].max(axis=1, skipna=False)
    out["verdict"] = [_verdict(method, d, sp) for d, sp in zip(out["difference"], out["spread"])]
    return out[[*by, *COMPARE_COLUMNS]]


def _cell_label(row: pd.Series, by: Sequence[str]) -> str:
    return ", ".join(f"IPC {int(row[c])}" if c == "ipc" else str(row[c]) for c in by)


def describe_comparison(cmp: pd.DataFrame, decimals: int = 1, unit: str = " %") -> str:
    """The verdicts of `compare` as Markdown: one bullet per other method with its counts, one sub-bullet per cell.

    Written from the numbers, so the sentences stay true when the results change, whichever way
    they go.
    """
    if cmp.empty:
        return "No cell holds results of both methods being compared yet, so there is nothing to compare."
    by = [c for c in cmp.columns if c not in COMPARE_COLUMNS]
    f = f".{decimals}f"
    lines = []
    for (method, other), group in cmp.groupby(["method", "other"], sort=False):
        counts = {v: int((group["verdict"].str.endswith(v)).sum()) for v in (BETTER, WITHIN, WORSE, TOO_FEW)}
        text = (f"- **{method} against {other}**: better by more than the spread in {counts[BETTER]} of "
                f"{len(group)} cell(s), within the spread in {counts[WITHIN]}, worse by more than the spread in "
                f"{counts[WORSE]}")
        lines.append(text + (f", too few runs to tell in {counts[TOO_FEW]}." if counts[TOO_FEW] else "."))
        for _, r in group.iterrows():
            spread = "no spread" if pd.isna(r["spread"]) else f"spread {r['spread']:{f}}"
            lines.append(f"  - {_cell_label(r, by)}: {r['mean']:{f}}{unit} against {r['other_mean']:{f}}{unit} "
                         f"(difference {r['difference']:+{f}}, {spread}; n = {r['n']} and {r['other_n']}): "
                         f"{r['verdict']}.")
    return "\n".join(lines)
