"""Sentences of the book's tables: one method against the others, cell by cell (book pages: Tables 1-3).

`compare` sets each cell's mean of one method against those of the others, and adds the paired
statistics of `ddgd.experiments.statistics`: the difference of the runs with the same seed, its
bootstrap interval, the verdict that interval gives and how many seeds would resolve a difference
of that size. `describe_comparison` and `difference_sentence` write them as the sentences the pages
print; `headline` and `cell_mean` give a cell's means. The means come from `ddgd.experiments.report.summary`.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import pandas as pd

from ddgd.config import resolve
from ddgd.experiments import statistics
from ddgd.experiments.report import NETWORK_ORDER, load_results, select_runs, summary
from ddgd.experiments.statistics import BETTER, CONFIDENCE, RESAMPLES, TOO_FEW, UNRESOLVED, WORSE

MANY_SEEDS = 1000  # beyond this, the sentence says "more than" rather than an exact number nobody would run
COMPARE_COLUMNS = ("method", "other", "mean", "std", "n", "other_mean", "other_std", "other_n", "n_pairs",
                   "n_unpaired", "mean_diff", "ci_low", "ci_high", "confidence", "verdict", "seeds_needed")


def slug(label: str) -> str:
    """A label as a file and glue-key name: lower case, runs of other characters than a-z and 0-9 as one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _cell_rows(df: pd.DataFrame, value: str, network: str | None, ipc: int | None, column: str) -> pd.DataFrame:
    """The rows of `value` in one cell; `network` None: the first present (NETWORK_ORDER), `ipc` None: the smallest."""
    rows = df[df[column] == value] if column in df.columns else df.iloc[0:0]
    if rows.empty:
        return rows
    rank = {n: i for i, n in enumerate(NETWORK_ORDER)}
    network = network or min(rows["network"].unique(), key=lambda n: (rank.get(n, len(rank)), n))
    rows = rows[rows["network"] == network]
    ipc = int(rows["ipc"].min()) if ipc is None and not rows.empty else ipc
    return rows[rows["ipc"] == ipc]


def cell_mean(df: pd.DataFrame, value: str, network: str | None = None, ipc: int | None = None,
              metric: str = "best", column: str = "method") -> float:
    """Mean `metric` of the rows whose `column` is `value` in one cell; NaN when there are none.

    `network` None takes the first network present (NETWORK_ORDER); `ipc` None the smallest IPC
    present (e.g. the one IPC of the `full` baseline).
    """
    rows = _cell_rows(df, value, network, ipc, column)
    return float(rows[metric].mean()) if not rows.empty else float("nan")


def headline(df: pd.DataFrame, values: Sequence[str], network: str | None = None, ipc: int | None = None,
             metric: str = "best", column: str = "method", decimals: int = 1) -> str:
    """One cell in words: "ddgd 52.0 %, minimax 48.0 % and random 61.0 %" (`cell_mean` of each value).

    Means only; what a difference between them is worth is `difference_sentence`'s.
    """
    parts = []
    for v in values:
        mean = cell_mean(df, v, network, ipc, metric, column)
        parts.append(f"{v} no runs yet" if pd.isna(mean) else f"{v} {mean:.{decimals}f} %")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else ""


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {_plural(word)}"


def paired_phrase(n_pairs: int, n_unpaired: int, mean_diff: float, ci_low: float, ci_high: float, verdict: str,
                  seeds_needed: float | None, confidence: float = CONFIDENCE, decimals: int = 1,
                  unit: str = " points", pair_word: str = "seed") -> str:
    """The paired statistics of one cell in words, e.g. "+0.4 points (95 % CI -0.3 to +1.1, 3 seeds): unresolved;
    about 12 seeds would resolve a difference of this size".

    The verdict is the interval's (`statistics.verdict`); the number of seeds is `statistics.seeds_needed`'s
    t rule, named when the difference is unresolved or has too few seeds for a verdict (fewer than
    `statistics.MIN_PAIRS`), and beside a resolved verdict when the t rule asks for more seeds than were run.
    `pair_word` names what pairs the runs when it is not the seed (a class of one gallery); give
    `seeds_needed` None there.
    """
    f = f"+.{decimals}f"
    dropped = f"{_count(n_unpaired, 'unpaired run')} left out" if n_unpaired else ""
    too_few = TOO_FEW if pair_word == "seed" else f"too few {_plural(pair_word)}"
    if n_pairs < 2:
        said = f"no {pair_word} has runs of both" if n_pairs == 0 else f"{mean_diff:{f}}{unit} from 1 {pair_word}"
        return said + (f" ({dropped})" if dropped else "") + f": {too_few}" + (" for an interval" if n_pairs else "")
    text = (f"{mean_diff:{f}}{unit} ({confidence * 100:g} % CI {ci_low:{f}} to {ci_high:{f}}, "
            f"{_count(n_pairs, pair_word)}" + (f"; {dropped}" if dropped else "") + "): "
            + (too_few if verdict == TOO_FEW else verdict))
    needed = None if seeds_needed is None or pd.isna(seeds_needed) else seeds_needed
    if verdict == TOO_FEW:  # an interval, but from fewer pairs than a verdict needs
        text += f" for a verdict (it takes {statistics.MIN_PAIRS})"
        if needed is not None and not math.isinf(needed):
            needed = max(needed, statistics.MIN_PAIRS)  # the t rule's count, but never fewer than a verdict takes
    if needed is None:
        return text
    if verdict in (UNRESOLVED, TOO_FEW):
        if math.isinf(needed):
            return text + "; a mean difference of zero gives no number of seeds that would resolve it"
        if needed > MANY_SEEDS:
            return text + f"; it would take more than {MANY_SEEDS:,} seeds to resolve a difference of this size"
        return text + (f"; about {int(needed)} seeds would resolve a difference of this size" if needed > n_pairs
                       else "")
    if needed > n_pairs:
        return text + f", though a t-interval at this spread would need about {int(needed)} seeds"
    return text


def compare(df: pd.DataFrame, method: str = "ddgd", others: Sequence[str] = ("minimax", "dit", "random"),
            metric: str = "best", by: Sequence[str] = ("dataset", "ipc", "network"),
            column: str = "method", confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
            seed: int = 0) -> pd.DataFrame:
    """Per cell of `by` and per other method: both means, and `method` - other paired by seed, with its verdict.

    `mean`, `std`, `n` (and `other_*`) summarise all runs of each side (sample std, ddof 1). The
    paired columns are `statistics.paired_table`'s: `n_pairs` seeds run by both (`n_unpaired` runs
    without a partner are left out), `mean_diff` the mean of their differences, `ci_low`/`ci_high`
    its percentile bootstrap interval at `confidence` (`resamples` resamples, a Generator seeded
    with `seed`), `verdict` "better" / "worse" when the interval lies above / below 0, "unresolved"
    when it holds 0, "too few seeds" under 6 pairs (`statistics.MIN_PAIRS`), and `seeds_needed` the t rule's estimate of the
    seeds that would resolve a difference of this size (NaN: no estimate; inf: a difference of 0).
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
    paired = statistics.paired_table(df, method, others, (metric,), by, column, confidence, resamples, seed)
    paired = paired.drop(columns="metric").rename(columns={"baseline": "other"}).assign(confidence=confidence)
    out = out.merge(paired, on=[*by, "method", "other"], how="left", validate="one_to_one")
    return out[[*by, *COMPARE_COLUMNS]]


def difference_sentence(df: pd.DataFrame, method: str, other: str, network: str | None = None,
                        ipc: int | None = None, metric: str = "best", column: str = "method", decimals: int = 1,
                        confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> str:
    """One cell's paired comparison in words: "ddgd - minimax = +0.4 points (95 % CI -0.3 to +1.1, 3 seeds): ...".

    The cell is `cell_mean`'s (`network` None: the first of `method`'s networks; `ipc` None: its
    smallest IPC); the statistics are `compare`'s. Rows of several datasets are not told apart:
    give the rows of one dataset.
    """
    a = _cell_rows(df, method, network, ipc, column)
    if a.empty:
        return f"{method} - {other}: {method} has no runs yet"
    b = _cell_rows(df, other, a["network"].iloc[0], int(a["ipc"].iloc[0]), column)
    if b.empty:
        return f"{method} - {other}: {other} has no runs yet"
    p = statistics.paired_statistics(statistics.pair_by_seed(a["seed"], a[metric], b["seed"], b[metric]),
                                     confidence, resamples, seed)
    return f"{method} - {other} = " + paired_phrase(p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low, p.ci_high,
                                                    p.verdict, p.seeds_needed, confidence, decimals)


def _cell_label(row: pd.Series, by: Sequence[str]) -> str:
    return ", ".join(f"IPC {int(row[c])}" if c == "ipc" else str(row[c]) for c in by)


def describe_comparison(cmp: pd.DataFrame, decimals: int = 1, unit: str = " %", diff_unit: str = " points") -> str:
    """The verdicts of `compare` as Markdown: one bullet per other method with its counts, one sub-bullet per cell.

    Each cell reads "<means> (n = ... and ...); paired difference <`paired_phrase`>". Written from the
    numbers, so the sentences stay true when the results change, whichever way they go.
    """
    if cmp.empty:
        return "No cell holds results of both methods being compared yet, so there is nothing to compare."
    by = [c for c in cmp.columns if c not in COMPARE_COLUMNS]
    f = f".{decimals}f"
    lines = []
    for (method, other), group in cmp.groupby(["method", "other"], sort=False):
        counts = {v: int((group["verdict"] == v).sum()) for v in (BETTER, WORSE, UNRESOLVED, TOO_FEW)}
        text = (f"- **{method} against {other}**: better in {counts[BETTER]} of {len(group)} cell(s), worse in "
                f"{counts[WORSE]}, unresolved in {counts[UNRESOLVED]}")
        lines.append(text + (f", too few seeds to tell in {counts[TOO_FEW]}." if counts[TOO_FEW] else "."))
        for _, r in group.iterrows():
            phrase = paired_phrase(int(r["n_pairs"]), int(r["n_unpaired"]), r["mean_diff"], r["ci_low"],
                                   r["ci_high"], r["verdict"], r["seeds_needed"], r["confidence"], decimals,
                                   diff_unit)
            lines.append(f"  - {_cell_label(r, by)}: {r['mean']:{f}}{unit} against {r['other_mean']:{f}}{unit} "
                         f"(n = {r['n']} and {r['other_n']}); paired difference {phrase}.")
    return "\n".join(lines)


def compare_settings(runs: dict[str, pd.DataFrame], pairs: Sequence[tuple[str, str]],
                     methods: Sequence[str] | None = None, metric: str = "best") -> pd.DataFrame:
    """What a change of settings moves: for each (after, before) pair of labelled result sets, `compare` per cell.

    `runs` maps a setting's label to its rows (`report.select_runs` of one configuration). The cell is
    the method, network and IPC of a run (column `run`); what is compared is the setting (`method` and
    `other` hold the labels). `methods` keeps those runs only (None: all).
    """
    frames = [df.assign(setting=label).rename(columns={"method": "run"}) for label, df in runs.items()]
    both = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "setting"])
    if methods is not None:
        both = both[both["run"].isin(list(methods))]
    parts = [compare(both, after, [before], metric, ("run", "network", "ipc"), "setting") for after, before in pairs]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", "network", "ipc",
                                                                                 *COMPARE_COLUMNS])


def settings_runs(csv, preset: str, overrides: dict, beside: dict[str, dict], methods: Sequence[str]) -> dict:
    """The rows of `csv` of each labelled earlier setting (`beside`: label -> overrides on top of `overrides`).

    Read only: a setting without rows gives an empty frame. `csv` None gives no settings.
    """
    if csv is None:
        return {}
    found = load_results(csv, missing_ok=True)
    return {label: select_runs(found, resolve(preset, {**overrides, **extra}), methods) for label, extra in beside.items()}


def setting_moves(now: pd.DataFrame, earlier: dict[str, pd.DataFrame],
                  memory_methods: Sequence[str] = ("minimax", "ddgd")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the protocol and the weight moved (book page Table 1): `compare_settings` of two pairs of settings.

    `earlier` holds, in order, the rows at the paper's weight and those at the paper's weight under
    the first protocol: the protocol's move is the first against the second (every method), the
    weight's is `now` (the presets' settings) against the first (the methods with memory terms only).
    """
    labels = list(earlier)
    settings = {"presets' settings": now, **earlier}
    protocol = compare_settings(settings, list(zip(labels[:1], labels[1:2])))
    weight = compare_settings(settings, [("presets' settings", labels[0])] if labels else [], memory_methods)
    return protocol, weight
