"""The page "Is DDGD more diverse, and does it matter?" (ddgd.pages.diversity_accuracy) on hand-made rows."""
import pandas as pd
import pytest

from ddgd.pages import diversity_accuracy as da


def frames():
    # 2 methods x 3 seeds; accuracy rises with coverage exactly in rank (rho = 1), vendi falls with it (rho = -1)
    acc = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "ipc": 10, "seed": [0, 1, 2] * 2, "network": "n",
                        "best": [60.0, 61.0, 62.0, 70.0, 71.0, 72.0]})
    div = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "ipc": 10, "seed": [0, 1, 2] * 2,
                        "coverage": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "recall": 0.5, "vendi": [6, 5, 4, 3, 2, 1.0],
                        "precision": 0.9, "density": [1, 2, 3, 1, 2, 3.0]})
    return acc, div


def test_joined_and_the_set_table():
    acc, div = frames()
    frame = da.joined(acc, div)
    assert len(frame) == 6 and frame.loc[frame.method == "b", "best"].tolist() == [70.0, 71.0, 72.0]
    table = da.set_table(frame, ["b", "a"])
    assert table.index.get_level_values("method").tolist() == ["b", "a"]  # the order asked for
    assert table.loc[("a", 10), "accuracy (%)"] == 61.0 and table.loc[("a", 10), "accuracy std"] == 1.0
    assert table.loc[("b", 10), "coverage"] == 0.5 and table.loc[("a", 10), "seeds"] == 3


def test_rank_correlations_and_their_sentence():
    frame = da.joined(*frames())
    corr = da.rank_correlations(frame, {"both": ["a", "b"]}).set_index("measure")
    assert corr.loc["coverage", "rho"] == pytest.approx(1.0) and corr.loc["Vendi score", "rho"] == pytest.approx(-1.0)
    assert corr.loc["coverage", "points"] == 6
    text = da.describe_correlations(corr.reset_index())
    assert "Higher coverage goes with higher accuracy" in text
    assert "Higher Vendi score goes with lower accuracy" in text


def test_no_correlation_is_said_plainly():
    corr = pd.DataFrame([dict(group="g", measure="coverage", rho=0.1, p=0.7, points=8)])
    assert da.describe_correlations(corr) == ("Over g (8 sets): coverage (rho +0.10, p 0.7). None of them is "
                                              "correlated with accuracy at the 0.05 level.")


def test_several_measures_are_joined_with_and():
    corr = pd.DataFrame([dict(group="g", measure=m, rho=0.9, p=0.001, points=8)
                         for m in ("recall", "Vendi score", "density")])
    assert "Higher recall, Vendi score and density go with higher accuracy (p < 0.05)." in da.describe_correlations(corr)
