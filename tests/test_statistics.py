"""Paired statistics of the comparison sentences (book pages: Tables 1-3, The embedded benchmark)."""
import math

import numpy as np
import pandas as pd
import pytest

from ddgd.experiments import statistics
from ddgd.experiments.statistics import (TABLE_COLUMNS, Pairs, bootstrap_interval, pair_by_seed, paired_statistics,
                                         paired_table, seeds_needed, verdict)

MIN_PAIRS = statistics.MIN_PAIRS  # the package's value, before the fixture below lowers it


@pytest.fixture(autouse=True)
def few_pairs_give_verdicts(monkeypatch):
    """The cases below are small enough to work by hand (2 to 4 pairs): let them give verdicts.
    The package's own minimum is tested on its own (test_no_verdict_below_six_pairs)."""
    monkeypatch.setattr(statistics, "MIN_PAIRS", 2)


# ---- pairing --------------------------------------------------------------------------------------

def test_pairing_keeps_shared_seeds_and_counts_the_rest():
    # seeds 1 and 2 are on both sides: 6 - 4 = 2, 7 - 4 = 3; seed 0 (method) and 3 (baseline) are dropped
    p = pair_by_seed([2, 0, 1], [7.0, 5.0, 6.0], [1, 3, 2], [4.0, 4.0, 4.0])
    assert p.seeds.tolist() == [1, 2] and p.differences.tolist() == [2.0, 3.0] and p.unpaired == 2
    none = pair_by_seed([0], [1.0], [1], [1.0])  # no seed in common: both runs unpaired
    assert none.differences.size == 0 and none.unpaired == 2


def test_pairing_refuses_a_repeated_seed_and_mismatched_lengths():
    with pytest.raises(ValueError, match=r"baseline side holds seed\(s\) \[1\] more than once.*one row per seed"):
        pair_by_seed([0, 1], [1.0, 2.0], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="method side has 2 seeds for 1 values"):
        pair_by_seed([0, 1], [1.0], [0], [1.0])


# ---- the bootstrap interval -----------------------------------------------------------------------

def test_identical_differences_give_a_zero_width_interval_at_that_value():
    # every resample of (0.1, 0.1, 0.1, 0.1) has mean 0.1: the interval is [0.1, 0.1], rounding included
    assert bootstrap_interval([0.1] * 4) == (0.1, 0.1)
    assert bootstrap_interval([-2.5]) == (-2.5, -2.5)  # one value: every resample is it
    assert all(math.isnan(v) for v in bootstrap_interval([]))


def test_three_pairs_interval_is_the_range_and_the_mean_exact():
    # With 3 pairs all 3 draws hit the smallest difference with probability 1/27 = 3.7 % > 2.5 %: of
    # 10,000 resampled means about 370 (sd 19) equal 1.0, so the 2.5 % quantile (between the 250th and
    # 251st smallest) is 1.0; likewise 4.0 at the top. The mean is (1 + 2 + 4) / 3.
    p = paired_statistics(Pairs(np.array([0, 1, 2]), np.array([1.0, 2.0, 4.0]), 0))
    assert (p.ci_low, p.ci_high) == (1.0, 4.0) and p.mean_diff == 7.0 / 3 and p.n_pairs == 3
    # with 10 differences the interval is strictly inside their range: all-equal resamples are rare
    d = np.arange(10.0)
    low, high = bootstrap_interval(d)
    assert d.min() < low < d.mean() < high < d.max()


def test_the_interval_is_reproducible_under_its_seed():
    d = np.random.default_rng(1).normal(size=12)
    assert bootstrap_interval(d, seed=3) == bootstrap_interval(d, seed=3)
    assert bootstrap_interval(d, seed=3) != bootstrap_interval(d, seed=4)
    narrow, wide = bootstrap_interval(d, confidence=0.5), bootstrap_interval(d, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@pytest.mark.parametrize("kwargs, message", [({"confidence": 95}, "between 0 and 1"),
                                             ({"resamples": 0}, "whole number of bootstrap resamples")])
def test_bad_levels_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval([1.0, 2.0], **kwargs)


# ---- the verdict and the seeds a difference needs -------------------------------------------------

def test_verdict_thresholds():
    assert verdict(0.1, 2.0, 3) == "better" and verdict(-2.0, -0.1, 3) == "worse"
    assert verdict(0.0, 2.0, 3) == "unresolved" == verdict(-2.0, 0.0, 3)  # an end at 0 holds 0
    assert verdict(-1.0, 1.0, 2) == "unresolved"
    assert verdict(1.0, 2.0, 1) == "too few seeds" == verdict(float("nan"), float("nan"), 0)


def test_no_verdict_below_six_pairs(monkeypatch):
    monkeypatch.setattr(statistics, "MIN_PAIRS", MIN_PAIRS)
    # equal methods share a sign on all n seeds with probability 2 * 2**-n: 6.25 % at 5, 3.1 % at 6
    assert MIN_PAIRS == 6
    same_sign = [1.0, 2.0, 1.5, 0.5, 1.0, 2.5]
    five = paired_statistics(pair_by_seed(range(5), same_sign[:5], range(5), [0.0] * 5))
    six = paired_statistics(pair_by_seed(range(6), same_sign, range(6), [0.0] * 6))
    assert five.ci_low > 0 and five.verdict == "too few seeds"  # the interval is shown, no verdict drawn
    assert six.ci_low > 0 and six.verdict == "better"


def test_seeds_needed_by_hand():
    # mean 2, sd 1 (the differences 1, 2, 3): t_{.975,2} / sqrt(3) = 4.303 / 1.732 = 2.48 >= 2, but
    # t_{.975,3} / sqrt(4) = 3.182 / 2 = 1.59 < 2: 4 seeds
    assert seeds_needed(2.0, 1.0) == 4 == seeds_needed(-2.0, 1.0)
    # mean 1, sd 2: t_{.975,16} * 2 / sqrt(17) = 2.120 * 0.485 = 1.028 >= 1, t_{.975,17} * 2 / sqrt(18)
    # = 2.110 * 0.471 = 0.995 < 1: 18 seeds
    assert seeds_needed(1.0, 2.0) == 18
    # a wider interval asks for more seeds: at 99 %, t_{.995,4} / sqrt(5) = 4.604 / 2.236 = 2.06 >= 2,
    # t_{.995,5} / sqrt(6) = 4.032 / 2.449 = 1.65 < 2: 6 seeds
    assert seeds_needed(2.0, 1.0, confidence=0.99) == 6
    assert seeds_needed(0.0, 1.0) == math.inf and seeds_needed(0.0, 0.0) == math.inf  # nothing resolves 0
    assert seeds_needed(3.0, 0.0) == 2  # no spread: the smallest n with an sd
    assert seeds_needed(3.0, float("nan")) is None  # one pair: no sd to go on


def test_a_mean_that_is_zero_but_for_rounding_is_zero():
    # 0.30 - 0.34 + 0.04 = 0, but the differences of values near 72 average to -4.7e-15 in floating point
    p = paired_statistics(pair_by_seed([0, 1, 2], [71.33, 70.13, 72.07], [0, 1, 2], [71.03, 70.47, 72.03]))
    assert p.mean_diff == 0.0 and p.seeds_needed == math.inf and p.verdict == "unresolved"
    # a tiny but real difference still gets its count: n ~ (1.96 * 1 / 1e-6)^2 = 3.84e12, plus a few
    assert 3.8e12 < seeds_needed(1e-6, 1.0) < 3.9e12


def test_paired_statistics_of_three_pairs():
    # differences 1, 2, 3: mean 2, sd 1, interval [1, 3] (the range, as above), above 0; 4 seeds (above)
    p = paired_statistics(pair_by_seed([0, 1, 2], [11.0, 12.0, 13.0], [0, 1, 2], [10.0, 10.0, 10.0]))
    assert (p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low, p.ci_high) == (3, 0, 2.0, 1.0, 3.0)
    assert (p.verdict, p.seeds_needed) == ("better", 4)
    one = paired_statistics(pair_by_seed([0, 1], [11.0, 12.0], [0], [10.0]))
    assert (one.n_pairs, one.n_unpaired, one.mean_diff, one.verdict, one.seeds_needed) == \
        (1, 1, 1.0, "too few seeds", None)


# ---- the table of a results frame -----------------------------------------------------------------

def results():
    """Hand-made rows: two cells; in IPC 1, minimax has seed 3 where ddgd has seed 2."""
    values = {("ddgd", 10): {0: 51, 1: 52, 2: 53}, ("minimax", 10): {0: 50, 1: 50, 2: 50},
              ("dit", 10): {0: 52, 1: 51, 2: 54}, ("ddgd", 1): {0: 20, 1: 22, 2: 21},
              ("minimax", 1): {0: 20, 1: 20, 3: 25}}
    return pd.DataFrame([dict(method=m, dataset="fashion-mnist", ipc=ipc, network="convnet-3", seed=s,
                              best=float(v), final=float(v) - 1, config_hash="h")
                         for (m, ipc), vs in values.items() for s, v in vs.items()])


def test_paired_table_on_a_hand_made_frame():
    t = paired_table(results(), baselines=("minimax", "dit", "random"), metrics=("best", "final"))
    assert list(t.columns) == ["dataset", "ipc", "network", *TABLE_COLUMNS]
    assert len(t) == 2 * 2 + 1 * 2  # minimax in both cells, dit in IPC 10 only, random nowhere; two metrics
    t = t.set_index(["baseline", "ipc", "metric"])
    # IPC 10 against minimax: differences 1, 2, 3 -> mean 2, interval [1, 3], better, 4 seeds (by hand above)
    mm = t.loc[("minimax", 10, "best")]
    assert (mm["n_pairs"], mm["n_unpaired"], mm["mean_diff"], mm["ci_low"], mm["ci_high"]) == (3, 0, 2.0, 1.0, 3.0)
    assert (mm["verdict"], mm["seeds_needed"]) == ("better", 4.0)
    assert t.loc[("minimax", 10, "final"), "mean_diff"] == 2.0  # final = best - 1 on both sides
    # IPC 1: seeds 0, 1 pair (differences 0, 2); ddgd's seed 2 and minimax's seed 3 are dropped. With 2
    # pairs a quarter of the resamples are (0, 0) and a quarter (2, 2): the interval is the range [0, 2]
    low = t.loc[("minimax", 1, "best")]
    assert (low["n_pairs"], low["n_unpaired"], low["mean_diff"], low["ci_low"], low["ci_high"]) == (2, 2, 1.0, 0.0,
                                                                                                    2.0)
    assert low["verdict"] == "unresolved"  # the interval [0, 2] holds 0
    # against dit: differences -1, 1, -1 -> mean -1/3, interval [-1, 1]
    d = t.loc[("dit", 10, "best")]
    assert d["mean_diff"] == pytest.approx(-1 / 3) and (d["ci_low"], d["ci_high"], d["verdict"]) == \
        (-1.0, 1.0, "unresolved")


def test_paired_table_does_not_depend_on_the_other_cells():
    both = paired_table(results(), baselines=("minimax",))
    alone = paired_table(results()[results()["ipc"] == 1], baselines=("minimax",))
    pd.testing.assert_frame_equal(both[both["ipc"] == 1].reset_index(drop=True), alone)
    assert paired_table(results(), method="nobody").empty


def test_paired_table_names_missing_columns_and_repeated_rows():
    with pytest.raises(ValueError, match="lack the column.*seed"):
        paired_table(results().drop(columns="seed"))
    twice = pd.concat([results(), results()], ignore_index=True)
    with pytest.raises(ValueError, match=r"ddgd against minimax in .*'ipc': 1.*more than once"):
        paired_table(twice, baselines=("minimax",))


def test_setting_moves_pair_each_method_across_settings():
    from ddgd.experiments.comparisons import setting_moves

    def rows(values):  # method -> best per seed 0, 1
        return pd.DataFrame([dict(method=m, dataset="d", ipc=10, network="convnet-3", seed=s, best=v)
                             for m, vs in values.items() for s, v in enumerate(vs)])
    now = rows({"ddgd": [73.0, 74.0], "dit": [70.0, 71.0]})
    paper = rows({"ddgd": [71.0, 71.5], "dit": [70.0, 71.0]})
    first = rows({"ddgd": [72.0, 72.0], "dit": [69.0, 69.0]})
    protocol, weight = setting_moves(now, {"paper": paper, "first": first})
    p = protocol.set_index("run")
    # protocol: paper - first, per seed: ddgd (71 - 72, 71.5 - 72) = (-1, -0.5), mean -0.75; dit (1, 2), mean 1.5
    assert p.loc["ddgd", "mean_diff"] == pytest.approx(-0.75) and p.loc["dit", "mean_diff"] == pytest.approx(1.5)
    assert set(p["method"]) == {"paper"} and set(p["other"]) == {"first"}
    # weight: now - paper for the methods with memory terms only: ddgd (2, 2.5), mean 2.25; dit left out
    assert weight["run"].tolist() == ["ddgd"] and weight["mean_diff"].iloc[0] == pytest.approx(2.25)
    assert setting_moves(now, {})[0].empty  # no earlier settings: nothing moved
