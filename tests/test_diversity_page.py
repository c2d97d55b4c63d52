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


def test_diversity_of_reads_one_feature_space_and_the_newest_row_of_a_set(tmp_path):
    from ddgd.config import SAMPLE_STAGES, config_hash, resolve
    from ddgd.experiments.diversity import DIVERSITY_COLUMNS, DiversitySpec
    from ddgd.experiments.runs import run_config

    cfg = resolve("digits-tiny")  # one seed (0), IPC 2
    h = config_hash(run_config(cfg, "ddgd", 0, 2), *SAMPLE_STAGES)
    base = {**{c: "" for c in DIVERSITY_COLUMNS}, "method": "ddgd", "dataset": "digits", "ipc": 2, "seed": 0,
            "class": "all", "config_hash": h}
    rows = [{**base, "feature_space": "judge trained on the digits", "coverage": 0.1, "timestamp": "2026-01-01"},
            {**base, "feature_space": "judge trained on the digits", "coverage": 0.2, "timestamp": "2026-02-01"},
            {**base, "feature_space": "inception-v3 pool 2048-d", "coverage": 0.9, "timestamp": "2026-03-01"},
            {**base, "method": "full", "coverage": 1.0, "feature_space": "judge", "timestamp": "2026-03-01"}]
    pd.DataFrame(rows).to_csv(tmp_path / "r.diversity.csv", index=False)
    judge = da.diversity_of(cfg, ["ddgd", "full"], tmp_path / "r.csv", tmp_path, compute=False)
    assert judge["coverage"].tolist() == [0.2]  # the judge's newest row; `full` is no set of its own
    inception = da.diversity_of(cfg, ["ddgd"], tmp_path / "r.csv", tmp_path, spec=DiversitySpec(features="inception"))
    assert inception["coverage"].tolist() == [0.9]


def test_the_section_says_why_nothing_is_measured(tmp_path):
    from ddgd.experiments.variants import variant_configs
    from ddgd.pages.diversity_section import diversity_section

    variants = variant_configs("digits-tiny", {}, {"a": {"method": "ddgd"}, "b": {"method": "dit"}})
    none = diversity_section(variants, "a", ["b"], tmp_path / "r.csv", tmp_path, features=None)
    assert none["coverage"].data == "Not measured: no feature space was chosen (`features`)."
    no_rows = diversity_section(variants, "a", ["b"], tmp_path / "r.csv", tmp_path)
    assert no_rows["vendi"].data == "Not measured: r.diversity.csv holds no rows of these sets (rerun with `compute`)."
    no_pools = diversity_section(variants, "a", ["b"], tmp_path / "r.csv", tmp_path, compute=True)
    assert no_pools["table"].data.startswith("Not measured: no sample pool in ") and "a/ddgd/seed0/samples" in \
        no_pools["table"].data
    assert not (tmp_path / "r.diversity.csv").exists()  # nothing written, nothing sampled
