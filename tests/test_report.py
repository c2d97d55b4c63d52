"""Result tables and published references (book pages Table 1, References)."""
import re

import pandas as pd
import pytest

from ddgd.config import resolve
from ddgd.experiments.results import append_result, result_row
from ddgd.experiments.pipeline import run_experiment
from ddgd.base.provenance import provenance, provenance_line
from ddgd.experiments.references import REFERENCES
from ddgd.experiments.comparisons import (cell_mean, compare, describe_comparison, difference_sentence, headline,
                                          paired_phrase, slug)
from ddgd.experiments.report import (format_cell, format_markdown, load_results, reference_table, references_markdown,
                                     run_hashes, select_runs, summary, table, with_references)


@pytest.fixture
def few_pairs_give_verdicts(monkeypatch):
    """The comparison cases have 2 to 4 seeds, small enough to work by hand: let them give verdicts
    (the package draws none from fewer than 6 pairs; tests/test_statistics.py tests that minimum)."""
    from ddgd.experiments import statistics

    monkeypatch.setattr(statistics, "MIN_PAIRS", 2)


def frame():
    rows = []
    for method, values in (("ddgd", (40.0, 42.0, 44.0)), ("random", (30.0, 31.0)), ("minimax", (50.0,))):
        for ipc in (10, 50, 1):
            for seed, v in enumerate(values):
                rows.append(dict(method=method, dataset="fashion-mnist", ipc=ipc, network="convnet-3", seed=seed,
                                 best=v + ipc, final=v))
    return pd.DataFrame(rows)


def test_summary_mean_std_n_exact():
    s = summary(frame())
    d = s[(s.method == "ddgd") & (s.ipc == 10)].iloc[0]
    assert (d["mean"], d["std"], d["n"]) == (52.0, 2.0, 3)  # sample std of 50, 52, 54
    r = s[(s.method == "random") & (s.ipc == 1)].iloc[0]
    assert r["mean"] == 31.5 and r["std"] == pytest.approx(0.5 ** 0.5) and r["n"] == 2
    assert pd.isna(s[s.method == "minimax"]["std"]).all()


def test_summary_names_missing_columns():
    with pytest.raises(ValueError, match="accuracy"):
        summary(frame(), metric="accuracy")


def test_format_cell():
    assert format_cell(37.04, 1.25, 3) == "37.0 ± 1.2"
    assert format_cell(37.0, 1.0, 2) == "37.0 ± 1.0 (n=2)"
    assert format_cell(37.0, float("nan"), 1) == "37.0 (n=1)"
    assert format_cell(37.0, 1.0, 5, decimals=2) == "37.00 ± 1.00"


def test_table_cells_order_and_markdown():
    t = table(frame())
    assert list(t.index) == ["random", "minimax", "ddgd"]  # baselines first, the method last
    assert [ipc for _, ipc in t.columns] == [1, 10, 50]  # numeric order
    assert t.loc["ddgd", ("convnet-3", 10)] == "52.0 ± 2.0"
    assert t.loc["random", ("convnet-3", 50)] == "80.5 ± 0.7 (n=2)"
    assert t.loc["minimax", ("convnet-3", 1)] == "51.0 (n=1)"
    assert table(frame(), metric="final").loc["ddgd", ("convnet-3", 1)] == "42.0 ± 2.0"
    md = format_markdown(t).splitlines()
    assert md[0] == "| method | convnet-3, IPC 1 | convnet-3, IPC 10 | convnet-3, IPC 50 |"
    assert len(md) == 2 + 3 and md[-1] == "| ddgd | 43.0 ± 2.0 | 52.0 ± 2.0 | 92.0 ± 2.0 |"


def test_table_never_averages_over_datasets():
    two = pd.concat([frame(), frame().assign(dataset="digits", best=lambda d: d["best"] + 10)], ignore_index=True)
    t = table(two)
    assert t.columns.names == ["dataset", "network", "ipc"]
    assert t.loc["ddgd", ("digits", "convnet-3", 10)] == "62.0 ± 2.0"
    assert t.loc["ddgd", ("fashion-mnist", "convnet-3", 10)] == "52.0 ± 2.0"
    assert table(frame()).columns.names == ["network", "ipc"]  # one dataset: no dataset level


def test_load_results_from_files_and_directories(tmp_path):
    prov = {"torch": "t", "diffusers": "d", "ddgd": "0", "commit": "c", "hardware": "h"}
    for seed in range(3):
        res = {"best": 60.0 + seed, "final": 59.0, "epochs": 5, "wall_s": 1.0}
        append_result(tmp_path / "a.csv", result_row("ddgd", "digits", 2, "convnet-3", seed, res, "x", prov))
    df = load_results(tmp_path)
    assert len(df) == 3 and len(load_results([tmp_path / "a.csv", tmp_path / "a.csv"])) == 6
    assert table(df).loc["ddgd", ("convnet-3", 2)] == "61.0 ± 1.0"
    with pytest.raises(FileNotFoundError, match="ddgd evaluate"):
        load_results(tmp_path / "missing.csv")


def test_provenance_fields():
    p = provenance()
    assert set(p) >= {"python", "torch", "torchvision", "diffusers", "ddgd", "commit", "hardware"}
    assert p["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", p["commit"])
    assert p["hardware"]


def test_commit_is_the_one_the_process_started_with(monkeypatch):
    """A run that outlives a commit records the code it runs, not the repository's later state."""
    from ddgd.base import provenance as prov

    started = prov.git_commit()
    monkeypatch.setattr(prov, "_git", lambda *args: "0" * 40)  # the repository moves on
    assert prov.git_commit() == started and provenance()["commit"] == started
    assert prov._read_commit() == "0" * 40 + "-dirty"  # what a process started now would record


def test_references_hold_the_published_numbers():
    def top1(**kw):
        sel = REFERENCES
        for k, v in kw.items():
            sel = sel[sel[k] == v]
        assert len(sel) == 1, kw
        return sel["top1"].iloc[0]

    assert top1(dataset="imagewoof", method="minimax", network="resnetap-10", ipc=10) == 39.2
    assert top1(dataset="imagewoof", method="random", network="resnet-18", ipc=100) == 61.5
    assert top1(dataset="imageidc", method="dit", ipc=50) == 64.3
    assert top1(dataset="fashion-mnist", method="dsa", ipc=50) == 88.7
    assert len(REFERENCES[REFERENCES.dataset == "imagewoof"]) == 5 * 3 * 3 + 3
    assert REFERENCES["source"].str.len().min() > 10  # every number says where it comes from


def test_reference_table_shape_and_full_broadcast():
    t = reference_table("imagewoof", networks=["resnetap-10"])
    src = "Minimax (Gu et al., CVPR 2024), hard labels"
    assert t.loc[(src, "minimax"), ("resnetap-10", 20)] == "45.8"
    assert t.loc[(src, "full"), ("resnetap-10", 10)] == t.loc[(src, "full"), ("resnetap-10", 100)] == "87.5"
    assert [m for _, m in t.index] == ["random", "dit", "minimax", "full"]
    with pytest.raises(ValueError, match="fashion-mnist"):
        reference_table("cifar10")


def test_with_references_labels_our_rows():
    ours = table(frame())
    both = with_references(ours, reference_table("fashion-mnist"))
    assert both.loc[("this project", "ddgd"), ("convnet-3", 10)] == "52.0 ± 2.0"
    assert both.loc[("KIP (Nguyen et al., ICLR 2021), comparison table", "kip"), ("convnet-3", 10)] == "86.8"


# ---- say what the numbers say ---------------------------------------------------------------

def cells():
    """Hand-made runs, seeds 0, 1, 2 in order: one cell per verdict, plus a cell that only ddgd has."""
    values = {("ddgd", 10): (50, 52, 54), ("minimax", 10): (47, 48, 49), ("dit", 10): (51, 53),
              ("random", 10): (60, 61, 62), ("ddgd", 50): (70, 72, 74), ("minimax", 50): (69, 73, 71),
              ("dit", 50): (60,), ("ddgd", 1): (20, 21)}
    return pd.DataFrame([dict(method=m, dataset="fashion-mnist", ipc=ipc, network="convnet-3", seed=s, best=float(v))
                         for (m, ipc), vs in values.items() for s, v in enumerate(vs)])


def test_compare_means_and_paired_verdicts(few_pairs_give_verdicts):
    c = compare(cells(), others=("minimax", "dit", "random")).set_index(["ipc", "other"])
    assert list(c.columns[:2]) == ["dataset", "network"] and len(c) == 5  # IPC 1: no other method, left out
    # IPC 10 against minimax: differences 3, 4, 5 (mean 4, sd 1); with 3 pairs the 95 % bootstrap interval
    # is their range (tests/test_statistics.py), [3, 5]: better. 3 seeds suffice for the t rule too:
    # t_{.975,2} / sqrt(3) = 2.48 < 4, while t_{.975,1} / sqrt(2) = 8.98 is not
    mm = c.loc[(10, "minimax")]
    assert (mm["mean"], mm["other_mean"], mm["n"], mm["other_n"]) == (52.0, 48.0, 3, 3)
    assert (mm["n_pairs"], mm["n_unpaired"], mm["mean_diff"], mm["ci_low"], mm["ci_high"]) == (3, 0, 4.0, 3.0, 5.0)
    assert (mm["verdict"], mm["seeds_needed"], mm["confidence"]) == ("better", 3.0, 0.95)
    # against dit: seeds 0, 1 pair (differences -1, -1), ddgd's seed 2 is left out; both means are 52
    dit = c.loc[(10, "dit")]
    assert (dit["mean"], dit["other_mean"]) == (52.0, 52.0)
    assert (dit["n_pairs"], dit["n_unpaired"], dit["ci_low"], dit["ci_high"], dit["verdict"]) == (2, 1, -1.0, -1.0,
                                                                                                   "worse")
    assert (c.loc[(10, "random"), "mean_diff"], c.loc[(10, "random"), "verdict"]) == (-9.0, "worse")
    # IPC 50 against minimax: differences 1, -1, 3 (mean 1, sd 2), interval [-1, 3]: unresolved; 18 seeds
    # would resolve it (t_{.975,17} * 2 / sqrt(18) = 0.995 < 1, t_{.975,16} * 2 / sqrt(17) = 1.03)
    m50 = c.loc[(50, "minimax")]
    assert (m50["mean_diff"], m50["ci_low"], m50["ci_high"], m50["verdict"], m50["seeds_needed"]) == \
        (1.0, -1.0, 3.0, "unresolved", 18.0)
    d50 = c.loc[(50, "dit")]  # one pair: no interval
    assert (d50["n_pairs"], d50["n_unpaired"], d50["mean_diff"], d50["verdict"]) == (1, 2, 10.0, "too few seeds")
    assert pd.isna(d50["seeds_needed"])


def test_compare_other_metric_column_and_empty(few_pairs_give_verdicts):
    df = cells().assign(variant=lambda d: d["method"].map({"ddgd": "both", "minimax": "fifo"}), final=0.0)
    c = compare(df, method="both", others=("fifo",), column="variant", by=("ipc",))
    assert list(c["ipc"]) == [10, 50] and list(c["verdict"]) == ["better", "unresolved"]
    zero = compare(df, metric="final")
    assert (zero["mean_diff"] == 0).all() and set(zero["verdict"]) == {"unresolved", "too few seeds"}
    assert (zero.loc[zero["n_pairs"] >= 2, "seeds_needed"] == float("inf")).all()  # nothing resolves 0
    assert compare(df, others=("nobody",)).empty


def test_describe_comparison_counts_and_cells(few_pairs_give_verdicts):
    text = describe_comparison(compare(cells()))
    lines = text.splitlines()
    assert lines[0] == "- **ddgd against minimax**: better in 1 of 2 cell(s), worse in 0, unresolved in 1."
    assert ("  - fashion-mnist, IPC 10, convnet-3: 52.0 % against 48.0 % (n = 3 and 3); paired difference "
            "+4.0 points (95 % CI +3.0 to +5.0, 3 seeds): better.") in lines
    assert ("  - fashion-mnist, IPC 50, convnet-3: 72.0 % against 71.0 % (n = 3 and 3); paired difference "
            "+1.0 points (95 % CI -1.0 to +3.0, 3 seeds): unresolved; about 18 seeds would resolve a difference "
            "of this size.") in lines
    assert ("-1.0 points (95 % CI -1.0 to -1.0, 2 seeds; 1 unpaired run left out): worse." in text)
    assert "+10.0 points from 1 seed (2 unpaired runs left out): too few seeds for an interval." in text
    assert ("- **ddgd against dit**: better in 0 of 2 cell(s), worse in 1, unresolved in 0, too few seeds to tell "
            "in 1.") in lines
    assert "- **ddgd against random**: better in 0 of 1 cell(s), worse in 1, unresolved in 0." in lines
    assert "within the spread" not in text  # the verdicts are the intervals', not a rule of standard deviations
    assert "nothing to compare" in describe_comparison(compare(cells(), others=()))


def test_paired_phrase_names_what_the_t_rule_asks_for():
    # resolved by the bootstrap with 3 seeds, but the t rule wants 4 (differences 1, 2, 3): said beside it
    assert paired_phrase(3, 0, 2.0, 1.0, 3.0, "better", 4) == (
        "+2.0 points (95 % CI +1.0 to +3.0, 3 seeds): better, though a t-interval at this spread would need about "
        "4 seeds")
    assert paired_phrase(3, 0, 0.0, -1.0, 1.0, "unresolved", float("inf"), decimals=2) == (
        "+0.00 points (95 % CI -1.00 to +1.00, 3 seeds): unresolved; a mean difference of zero gives no number of "
        "seeds that would resolve it")
    assert paired_phrase(3, 0, 0.1, -1.0, 1.0, "unresolved", 5000.0).endswith(
        "it would take more than 1,000 seeds to resolve a difference of this size")
    assert paired_phrase(0, 3, float("nan"), float("nan"), float("nan"), "too few seeds", None) == \
        "no seed has runs of both (3 unpaired runs left out): too few seeds"
    assert paired_phrase(4, 0, 0.5, -0.1, 1.0, "unresolved", 4.0, confidence=0.9) == \
        "+0.5 points (90 % CI -0.1 to +1.0, 4 seeds): unresolved"  # the t rule resolves it with the 4 seeds run


def test_difference_sentence_of_one_cell(few_pairs_give_verdicts):
    assert difference_sentence(cells(), "ddgd", "minimax", ipc=50) == (
        "ddgd - minimax = +1.0 points (95 % CI -1.0 to +3.0, 3 seeds): unresolved; about 18 seeds would resolve a "
        "difference of this size")
    assert difference_sentence(cells(), "ddgd", "minimax", "convnet-3", 10).endswith("3 seeds): better")
    assert difference_sentence(cells(), "ddgd", "random") == "ddgd - random: random has no runs yet"  # IPC 1
    assert difference_sentence(cells(), "full", "ddgd") == "full - ddgd: full has no runs yet"


def test_cell_mean_picks_first_network_and_smallest_ipc():
    df = pd.concat([cells(), cells().assign(network="resnetap-10", best=0.0)])
    assert cell_mean(df, "ddgd") == 20.5  # convnet-3 before resnetap-10, IPC 1 the smallest
    assert cell_mean(df, "ddgd", "convnet-3", 10) == 52.0 and cell_mean(df, "ddgd", "resnetap-10", 10) == 0.0
    assert pd.isna(cell_mean(df, "full")) and pd.isna(cell_mean(df, "ddgd", "convnet-3", 20))


def test_provenance_line_lists_distinct_values():
    df = pd.DataFrame({"commit": ["a" * 40 + "-dirty", "a" * 40 + "-dirty", "b" * 40], "hardware": ["cpu"] * 3,
                       "torch": ["2.1", "2.1", "2.1"]})
    assert provenance_line(df) == f"commit {'a' * 12}-dirty, {'b' * 12}; hardware: cpu; torch 2.1"
    assert provenance_line(df[["torch"]]) == "commit unknown; hardware: unknown; torch 2.1"
    assert provenance_line(df.iloc[0:0]) == "no result rows yet"
    timed = df.assign(wall_s=[90.0, 150.0, 0.0])
    assert provenance_line(timed).endswith("; torch 2.1; evaluation wall time 4 min in all")


def test_references_markdown_labels_every_block():
    md = references_markdown(["fashion-mnist", "imagenette"])
    assert md.startswith("**fashion-mnist**: Other distillation methods")
    assert "| KIP (Nguyen et al., ICLR 2021), comparison table / kip | 73.8 | 86.8 | 87.8 |" in md
    assert "**imagenette**: ImageNette at paper scale" in md and "as quoted by later papers, hard labels / full" in md
    assert "No published numbers" in references_markdown([])
    assert reference_table("fashion-tops", strict=False).empty
    with pytest.raises(ValueError, match="fashion-tops"):
        references_markdown(["fashion-tops"])


def test_table_row_order_and_empty():
    t = table(cells(), row_order=["ddgd", "random", "absent"])
    assert list(t.index) == ["ddgd", "random"]
    assert table(cells().iloc[0:0]).empty
    assert load_results("no/such/file.csv", missing_ok=True).empty


def test_load_results_keeps_config_hash_text(tmp_path):
    res = {"best": 1.0, "final": 1.0, "epochs": 1, "wall_s": 0.0}
    append_result(tmp_path / "r.csv", result_row("ddgd", "digits", 2, "convnet-3", 0, res, "012345678901", {}))
    assert load_results(tmp_path / "r.csv")["config_hash"].iloc[0] == "012345678901"


def test_select_runs_keeps_the_rows_of_one_config_and_rerun_computes_nothing(tmp_path):
    cfg = resolve("digits-tiny", {"data.train_per_class": 12, "eval.epochs": 1, "eval.evaluations": 1})
    other = resolve("digits-tiny", {"data.train_per_class": 12, "eval.epochs": 1, "eval.seeds": [1]})
    csv = tmp_path / "r.csv"
    methods = ("dit", "random", "full")
    run_experiment(cfg, methods, tmp_path / "runs", csv, progress=False)
    before = csv.read_bytes()
    run_experiment(cfg, methods, tmp_path / "runs", csv, progress=False)  # complete: writes nothing
    assert csv.read_bytes() == before
    df = load_results(csv)
    assert len(df) == 3 and len(select_runs(df, cfg, methods)) == 3
    assert list(select_runs(df, cfg, ("random",))["method"]) == ["random"]
    assert select_runs(df, other, methods).empty  # another config's hashes
    assert set(select_runs(df, cfg, methods, variant="v")["variant"]) == {"v"}
    hashes = {m: h for m, _, h in run_hashes(resolve("digits-tiny"), ("random", "full"))}
    assert hashes["full"] != hashes["random"]  # full trains for eval.full_epochs (1, not 2): its own hash
    with pytest.raises(ValueError, match="config_hash"):
        select_runs(df.drop(columns="config_hash"), cfg, methods)


def test_headline_and_slug():
    assert headline(cells(), ["ddgd", "minimax", "full"], "convnet-3", 10) == \
        "ddgd 52.0 %, minimax 48.0 % and full no runs yet"
    assert headline(cells(), ["dit"], ipc=50) == "dit 60.0 %" and headline(cells(), []) == ""
    assert slug("both, self-adaptive, cumulative") == "both-self-adaptive-cumulative"
    assert slug("L_real only") == "l-real-only"


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: text.rindex(",")], "holds .* values for .* columns"),  # a truncated last row
    (lambda text: text.rstrip("\n") + ",extra\n", "holds .* values for .* columns"),  # an extra value
    (lambda text: text.replace(",2,", ",two,", 1), "is not a number"),
])
def test_a_malformed_results_row_is_refused_with_its_line_before_any_work(tmp_path, damage, message):
    from ddgd.experiments.pipeline import run_experiment
    from ddgd.config import resolve
    from ddgd.experiments.results import ResultsError, append_result

    csv = tmp_path / "r.csv"
    for seed in (0, 1):
        append_result(csv, {"method": "dit", "dataset": "digits", "ipc": 2, "network": "convnet-3", "seed": seed,
                            "best": 50.0, "final": 40.0, "epochs": 2, "config_hash": "abc", "wall_s": 1.0})
    csv.write_text(damage(csv.read_text()))
    with pytest.raises(ResultsError, match=f"line 3 of .*{message}|line [23] of .*{message}"):
        load_results(csv)
    with pytest.raises(ResultsError, match="nothing was run"):
        run_experiment(resolve("digits-tiny"), ("dit",), tmp_path / "runs", csv, progress=False)
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_a_cell_with_fewer_pairs_than_a_verdict_needs_says_so():
    assert paired_phrase(3, 0, 0.4, -0.3, 1.1, "too few seeds", 12) == (
        "+0.4 points (95 % CI -0.3 to +1.1, 3 seeds): too few seeds for a verdict (it takes 6); about 12 seeds "
        "would resolve a difference of this size")
    # the t rule may ask for fewer seeds than a verdict takes: the sentence names the larger count
    assert paired_phrase(2, 0, 1.1, 0.8, 1.4, "too few seeds", 3).endswith(
        "too few seeds for a verdict (it takes 6); about 6 seeds would resolve a difference of this size")
    # without the fixture, three seeds that all favour DDGD give an interval above 0 but no verdict
    df = pd.DataFrame([dict(method=m, dataset="d", ipc=10, network="n", seed=s, best=v, final=v, config_hash="h")
                       for m, vals in (("ddgd", (51.0, 52.0, 53.0)), ("minimax", (50.0, 50.0, 50.0)))
                       for s, v in enumerate(vals)])
    row = compare(df, "ddgd", ["minimax"]).iloc[0]
    assert (row["ci_low"], row["ci_high"], row["verdict"]) == (1.0, 3.0, "too few seeds")
