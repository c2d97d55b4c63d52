"""Paired statistics of one method against another, cell by cell (book pages: Tables 1-3, The embedded benchmark).

A cell is one dataset x IPC x network of the result rows. Within a cell, the seed of a run fixes the
evaluation network's initialisation, batch order and augmentation, the same for every method
(notebooks/table1.py: "a seed covers fine-tuning, sampling and evaluation"), so the run of one method
is compared with the other method's run of the same seed, which takes that shared part of the
seed-to-seed variation out of the difference. The rules, one function each:

* `pair_by_seed`: the paired differences d_s = x_method(s) - x_baseline(s), one per seed with a run
  on both sides; a seed with a run on one side only is dropped, and counted.
* `bootstrap_interval`: the percentile bootstrap over seeds. `resamples` times, n differences are
  drawn with replacement from the n observed ones (a numpy Generator seeded with `seed`, so the
  interval is the same on every machine and every build); the interval is the (1 - c)/2 and
  (1 + c)/2 quantiles (numpy's linear interpolation) of the resampled means, c the confidence.
* `verdict`: "better" when the interval lies above 0, "worse" when it lies below 0, "unresolved"
  when it holds 0 (an end at exactly 0 counts as holding it); with fewer than `MIN_PAIRS` (6) pairs
  the interval is shown but gives no verdict: "too few seeds" (see below).
* `seeds_needed`: how many seeds a t-interval needs to resolve the observed mean difference at the
  observed paired standard deviation sd (ddof 1): the smallest n >= 2 with
  t_{(1+c)/2, n-1} * sd / sqrt(n) < |mean|. None when there is no sd (fewer than 2 pairs),
  infinity when the mean difference is 0 (no number of seeds resolves it; `paired_statistics` counts
  a mean within floating-point rounding of the values as 0), 2 when sd is 0 and the mean is not.

What few seeds can say: with 2 or 3 seeds, all n draws fall on the smallest difference more often
than 2.5 % of the time (1/4 and 1/27), so with 10,000 resamples the 95 % percentile interval is the
range of the differences, and "better" means only that the method won on every seed, which happens by chance
once in 4 (2 seeds) or once in 8 (3 seeds) when the two methods are equal. The percentile bootstrap
is too narrow at small n, so no verdict is drawn from fewer than 6 pairs (`MIN_PAIRS`: the first n at
which equal methods share a sign on every seed less than 5 % of the time); `seeds_needed`, from the
t distribution, says how many seeds a difference of the observed size would need.

`paired_table` applies all of this to a results frame, one row per cell x baseline x metric.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats  # installed with scikit-learn, a dependency of the package

BETTER, WORSE, UNRESOLVED, TOO_FEW = "better", "worse", "unresolved", "too few seeds"
VERDICTS = (BETTER, WORSE, UNRESOLVED, TOO_FEW)
RESAMPLES, CONFIDENCE = 10_000, 0.95
TABLE_COLUMNS = ("metric", "method", "baseline", "n_pairs", "n_unpaired", "mean_diff", "ci_low", "ci_high",
                 "verdict", "seeds_needed")


@dataclass(frozen=True)
class Pairs:
    """The seeds run on both sides (sorted), their differences (method - baseline), and the runs left unpaired.

    `scale` is the largest magnitude of the paired values: a mean difference within rounding of it is 0.
    """

    seeds: np.ndarray
    differences: np.ndarray
    unpaired: int
    scale: float = 0.0


def _one_per_seed(seeds, values, side: str) -> dict:
    seeds, values = np.asarray(seeds).ravel(), np.asarray(values, dtype=float).ravel()
    if len(seeds) != len(values):
        raise ValueError(f"the {side} side has {len(seeds)} seeds for {len(values)} values: "
                         f"give one seed per value")
    unique, counts = np.unique(seeds, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"the {side} side holds seed(s) {unique[counts > 1].tolist()} more than once, so the "
                         f"pairs are ambiguous: keep one row per seed (report.select_runs keeps the rows of "
                         f"one configuration; drop repeated rows)")
    return dict(zip(seeds.tolist(), values.tolist()))


def pair_by_seed(seeds, values, baseline_seeds, baseline_values) -> Pairs:
    """The paired differences values - baseline_values of the seeds both sides ran; the rest dropped and counted.

    E.g. seeds (0, 1, 2) with values (5, 6, 7) against seeds (1, 2, 3) with (4, 4, 4): seeds 1 and 2,
    differences (2, 3), and 2 unpaired runs (seed 0 of the method, seed 3 of the baseline).
    """
    mine, theirs = _one_per_seed(seeds, values, "method"), _one_per_seed(baseline_seeds, baseline_values, "baseline")
    shared = sorted(set(mine) & set(theirs))
    scale = max((abs(v) for s in shared for v in (mine[s], theirs[s])), default=0.0)
    return Pairs(np.array(shared), np.array([mine[s] - theirs[s] for s in shared], dtype=float),
                 len(mine) + len(theirs) - 2 * len(shared), scale)


def _check_level(confidence: float, resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is {confidence}: give a level between 0 and 1 (0.95 for a 95 % interval)")
    if int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples is {resamples}: give a whole number of bootstrap resamples, e.g. {RESAMPLES}")


def bootstrap_interval(differences, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `differences` (see the module docstring); NaNs when empty."""
    _check_level(confidence, resamples)
    d = np.asarray(differences, dtype=float).ravel()
    if d.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(int(resamples), d.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    # a mean of resampled values lies within their range; clipping only undoes rounding (n equal values / n)
    return float(np.clip(low, d.min(), d.max())), float(np.clip(high, d.min(), d.max()))


# The fewest pairs for a verdict. Below 6, the percentile interval excludes 0 whenever all n differences
# share a sign, which two equal methods do with probability 2 * 2**-n: 12.5 % at 4 pairs, 6.25 % at 5,
# 3.1 % at 6, the first n under the 5 % that a 95 % interval promises (the sign test's bound).
MIN_PAIRS = 6


def verdict(ci_low: float, ci_high: float, n_pairs: int) -> str:
    """ "better" above 0, "worse" below 0, "unresolved" holding 0; "too few seeds" under `MIN_PAIRS` pairs."""
    if n_pairs < MIN_PAIRS or math.isnan(ci_low) or math.isnan(ci_high):
        return TOO_FEW
    return BETTER if ci_low > 0 else WORSE if ci_high < 0 else UNRESOLVED


def seeds_needed(mean: float, sd: float, confidence: float = CONFIDENCE) -> int | float | None:
    """Smallest n >= 2 with t_{(1+c)/2, n-1} * sd / sqrt(n) < |mean|; None without an sd, inf for a mean of 0."""
    _check_level(confidence, 1)
    if mean is None or sd is None or math.isnan(mean) or math.isnan(sd):
        return None
    if mean == 0:
        return math.inf
    if sd == 0:
        return 2  # every pair the same difference: the interval has no width from the smallest n with an sd
    q, m = (1 + confidence) / 2, abs(mean)
    # t_{q, n-1} > z_q, so no n <= (z_q sd / |mean|)^2 qualifies: start the search there
    n = max(2, math.floor((stats.norm.ppf(q) * sd / m) ** 2))
    while stats.t.ppf(q, float(n - 1)) * sd / math.sqrt(n) >= m:  # float: n may exceed a 64-bit integer
        n += 1
    return n


@dataclass(frozen=True)
class Paired:
    """All the paired statistics of one cell x baseline."""

    n_pairs: int
    n_unpaired: int
    mean_diff: float
    ci_low: float
    ci_high: float
    verdict: str
    seeds_needed: int | float | None


def paired_statistics(pairs: Pairs, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                      seed: int = 0) -> Paired:
    """Mean difference, bootstrap interval, verdict and seeds needed of `pairs` (rules in the module docstring)."""
    d = pairs.differences
    mean = float(d.mean()) if d.size else math.nan
    # 71.33 - 71.03, 70.13 - 70.47, 72.07 - 72.03 average to -4.7e-15, not 0: each difference carries the
    # rounding of values near 72 (eps * 72 = 1.6e-14). A mean within a few such roundings is a mean of 0.
    if d.size and abs(mean) <= 4 * np.finfo(float).eps * max(pairs.scale, float(np.abs(d).max())):
        mean = 0.0
    sd = float(d.std(ddof=1)) if d.size >= 2 else math.nan
    low, high = bootstrap_interval(d, confidence, resamples, seed)
    return Paired(int(d.size), pairs.unpaired, mean, low, high, verdict(low, high, int(d.size)),
                  seeds_needed(mean, sd, confidence))


def paired_table(results: pd.DataFrame, method: str = "ddgd", baselines: Sequence[str] = ("minimax", "dit", "random"),
                 metrics: Sequence[str] = ("best",), by: Sequence[str] = ("dataset", "ipc", "network"),
                 column: str = "method", confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                 seed: int = 0) -> pd.DataFrame:
    """One row per cell of `by` x metric x baseline: `method` - baseline, paired by seed, with the statistics above.

    Columns: `by`, then TABLE_COLUMNS. Cells where either side has no rows are left out; a cell where
    both have rows but no seed in common has n_pairs 0 and the verdict "too few seeds". `column`
    names what is compared (`variant` for an ablation). `seeds_needed` is a float column here: NaN
    where there is no estimate, inf where none resolves. Every cell is bootstrapped with a fresh
    Generator seeded with `seed`, so a cell's interval does not depend on which other cells are there.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [c for c in (*by, column, "seed", *metrics) if c not in results.columns]
    if missing:
        raise ValueError(f"results lack the column(s) {', '.join(missing)}; present: {', '.join(results.columns)}; "
                         f"read them with ddgd.experiments.report.load_results")
    _check_level(confidence, resamples)
    rows = []
    mine = results[results[column] == method]
    for other in baselines:
        theirs = results[results[column] == other]
        for key, a in mine.groupby(list(by), dropna=False, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            b = theirs
            for c, v in zip(by, key):
                b = b[b[c].isna()] if pd.isna(v) else b[b[c] == v]
            if b.empty:
                continue
            for metric in metrics:
                try:
                    p = paired_statistics(pair_by_seed(a["seed"], a[metric], b["seed"], b[metric]),
                                          confidence, resamples, seed)
                except ValueError as err:
                    raise ValueError(f"{method} against {other} in {dict(zip(by, key))}: {err}") from None
                needed = math.nan if p.seeds_needed is None else float(p.seeds_needed)
                rows.append([*key, metric, method, other, p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low,
                             p.ci_high, p.verdict, needed])
    return pd.DataFrame(rows, columns=[*by, *TABLE_COLUMNS])
