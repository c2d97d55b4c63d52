"""Hyperparameter sweeps of Figure 4 (ddgd.experiments.variants): configs, labels, the tidy frame, resumable runs, the plot."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import ddgd.experiments.pipeline  # noqa: E402
from ddgd.experiments import variants as sweep  # noqa: E402
from ddgd.pages import figure4  # noqa: E402
from ddgd.config import ConfigError, config_hash, resolve  # noqa: E402
from ddgd.experiments.results import append_result, result_row  # noqa: E402

DEFAULT = "default: finetune.lambda_r=0.002, finetune.lambda_g=0.008, finetune.n_real=4, finetune.n_gen=4"


@pytest.fixture
def cfg():
    return resolve("digits-tiny")


def test_default_label_lists_every_sweepable_value(cfg):
    assert sweep.default_label(cfg) == DEFAULT
    assert sweep.defaults(cfg) == {"finetune.lambda_r": 0.002, "finetune.lambda_g": 0.008,
                                   "finetune.n_real": 4, "finetune.n_gen": 4}


def test_sweep_configs_values_configs_and_labels(cfg):
    out = sweep.sweep_configs(cfg, "finetune.lambda_r", [0.001, 0.002, 4e-3])
    assert [v for v, _, _ in out] == [0.001, 0.002, 0.004]
    assert [label for _, _, label in out] == ["finetune.lambda_r=0.001", DEFAULT, "finetune.lambda_r=0.004"]
    assert [c.finetune.lambda_r for _, c, _ in out] == [0.001, 0.002, 0.004]
    assert out[1][1] == cfg
    # only the swept field changes
    assert out[0][1].finetune.lambda_g == cfg.finetune.lambda_g and out[0][1].eval == cfg.eval


def test_sweep_configs_coerce_to_the_field_type(cfg):
    out = sweep.sweep_configs(cfg, "finetune.n_real", [2, 8.0])
    assert [v for v, _, _ in out] == [2, 8] and all(isinstance(v, int) for v, _, _ in out)
    assert config_hash(out[1][1]) == config_hash(resolve(cfg, {"finetune.n_real": 8}))
    lam = sweep.sweep_configs(cfg, "finetune.lambda_g", [1])[0][1]
    assert config_hash(lam) == config_hash(resolve(cfg, {"finetune.lambda_g": 1.0}))  # 1 and 1.0 alike


@pytest.mark.parametrize("param, values, message", [
    ("finetune.lr", [0.1], "cannot sweep 'finetune.lr'"),
    ("finetune.n_real", [2.5], "whole numbers"),
    ("finetune.lambda_r", [0.0, 0.1], "positive"),
    ("finetune.lambda_r", [0.1, 0.1], "repeat"),
    ("finetune.n_gen", [], "no values"),
])
def test_sweep_configs_refuse_bad_values(cfg, param, values, message):
    with pytest.raises(ConfigError, match=message):
        sweep.sweep_configs(cfg, param, values)


def test_sweep_points_share_the_default_once(cfg):
    points = sweep.sweep_points(cfg, {"finetune.lambda_r": [0.002, 0.004], "finetune.n_gen": [2, 4, 8]})
    assert [label for label, _ in points] == [DEFAULT, "finetune.lambda_r=0.004", "finetune.n_gen=2",
                                             "finetune.n_gen=8"]
    assert sweep.point_folder(points[0][0], points[0][1]).startswith("default-")
    assert sweep.point_folder(points[1][0], points[1][1]).startswith("lambda_r=0.004-")


def test_parse_label():
    assert sweep.parse_label("finetune.lambda_g=0.016") == [("finetune.lambda_g", 0.016, False)]
    assert sweep.parse_label(DEFAULT)[2] == ("finetune.n_real", 4.0, True) and len(sweep.parse_label(DEFAULT)) == 4
    for other in ("", "real only", "finetune.lr=0.1", "finetune.lambda_r=abc", float("nan")):
        assert sweep.parse_label(other) == []


def _row(variant, seed, best, ipc=10):
    return dict(method="ddgd", dataset="digits", ipc=ipc, network="convnet-3", seed=seed, best=best, variant=variant)


def test_sweep_frame_is_exact():
    df = pd.DataFrame([_row("finetune.lambda_r=0.004", 0, 30.0), _row(DEFAULT, 0, 20.0), _row(DEFAULT, 1, 22.0),
                       _row("real only", 0, 99.0)])
    frame = sweep.sweep_frame(df)
    expected = pd.DataFrame(
        [("finetune.lambda_r", 0.002, 10, "convnet-3", 0, 20.0, True),
         ("finetune.lambda_r", 0.002, 10, "convnet-3", 1, 22.0, True),
         ("finetune.lambda_r", 0.004, 10, "convnet-3", 0, 30.0, False),
         ("finetune.lambda_g", 0.008, 10, "convnet-3", 0, 20.0, True),
         ("finetune.lambda_g", 0.008, 10, "convnet-3", 1, 22.0, True),
         ("finetune.n_real", 4.0, 10, "convnet-3", 0, 20.0, True),
         ("finetune.n_real", 4.0, 10, "convnet-3", 1, 22.0, True),
         ("finetune.n_gen", 4.0, 10, "convnet-3", 0, 20.0, True),
         ("finetune.n_gen", 4.0, 10, "convnet-3", 1, 22.0, True)], columns=list(sweep.FRAME_COLUMNS))
    pd.testing.assert_frame_equal(frame, expected)
    assert sweep.sweep_frame(pd.DataFrame({"best": [1.0]})).empty  # no variant column: nothing to parse


def test_sweep_summary_mean_min_max():
    df = pd.DataFrame([_row("finetune.n_gen=2", s, b) for s, b in enumerate((10.0, 14.0, 15.0))])
    s = sweep.sweep_summary(sweep.sweep_frame(df))
    assert s.to_dict("records") == [dict(param="finetune.n_gen", value=2.0, ipc=10, network="convnet-3",
                                         mean=13.0, min=10.0, max=15.0, n=3)]


def _fake_run_experiment(calls):
    """Stands in for run_experiment: records the call and writes one row per key the point owes."""

    def fake(point, methods, root, csv, progress=True, variant=""):
        calls.append((variant, root.name))
        for m, seed, h in ddgd.experiments.report.run_hashes(point, methods):
            for ipc in point.eval.ipcs:
                res = {"best": 10.0 + 1000 * point.finetune.lambda_r, "final": 9.0, "epochs": 1, "wall_s": 0.0}
                row = result_row(m, point.data.dataset, ipc, point.eval.networks[0], seed, res, h, provenance={})
                append_result(csv, {**row, "variant": variant})
        return csv

    return fake


def test_run_sweep_runs_what_is_missing_and_nothing_twice(cfg, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ddgd.experiments.pipeline, "run_experiment", _fake_run_experiment(calls))
    cfg = resolve(cfg, {"eval.seeds": [0, 1]})
    sweeps = {"finetune.lambda_r": [0.002, 0.004], "finetune.lambda_g": [0.008, 0.016]}
    csv = tmp_path / "sweep.csv"
    assert len(sweep.pending(cfg, sweeps, csv)) == 3
    sweep.run_sweep(cfg, sweeps, tmp_path / "runs", csv, progress=False)
    assert [v for v, _ in calls] == [DEFAULT, "finetune.lambda_r=0.004", "finetune.lambda_g=0.016"]
    assert len({folder for _, folder in calls}) == 3  # every point in its own folder
    assert sweep.pending(cfg, sweeps, csv) == []
    before = csv.read_bytes()
    sweep.run_sweep(cfg, sweeps, tmp_path / "runs", csv, progress=False)
    assert len(calls) == 3 and csv.read_bytes() == before  # complete: nothing recomputed
    # a new value runs alone
    sweep.run_sweep(cfg, {**sweeps, "finetune.lambda_r": [0.002, 0.004, 0.008]}, tmp_path / "runs", csv, False)
    assert [v for v, _ in calls[3:]] == ["finetune.lambda_r=0.008"]


def test_sweep_runs_keep_the_sweeps_rows_by_hash(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(ddgd.experiments.pipeline, "run_experiment", _fake_run_experiment([]))
    sweeps = {"finetune.lambda_r": [0.002, 0.004]}
    csv = tmp_path / "sweep.csv"
    sweep.run_sweep(cfg, sweeps, tmp_path / "runs", csv, progress=False)
    append_result(csv, {**result_row("ddgd", "digits", 2, "convnet-3", 0, {"best": 1, "final": 1, "epochs": 1,
                                                                           "wall_s": 0}, "0123abcd", {}),
                        "variant": "finetune.lambda_r=0.004"})  # same label, another config: left out
    runs = sweep.sweep_runs(pd.read_csv(csv, dtype={"config_hash": str}), cfg, sweeps)
    assert sorted(runs["variant"]) == sorted([DEFAULT, "finetune.lambda_r=0.004"])
    frame = sweep.sweep_frame(runs)
    lam = frame[frame["param"] == "finetune.lambda_r"]
    assert lam[["value", "best"]].values.tolist() == [[0.002, 12.0], [0.004, 14.0]]
    assert sweep.sweep_runs(pd.DataFrame(columns=["method", "seed", "config_hash"]), cfg, sweeps).empty


def _frame():
    rows = [_row("finetune.lambda_r=0.0005", s, b) for s, b in ((0, 10.0), (1, 12.0))]
    rows += [_row(DEFAULT, s, b) for s, b in ((0, 30.0), (1, 31.0))]
    return sweep.sweep_frame(pd.DataFrame(rows))


def test_plot_sweeps_panels_bands_and_marks(cfg):
    marks = sweep.defaults(cfg)
    fig = figure4.plot_sweeps(_frame(), marks)
    axes = fig.axes
    assert len(axes) == 4 and all(ax.get_xscale() == "log" for ax in axes)
    lam = axes[0]
    assert len(lam.collections) == 1  # one min-max band
    dashed = [line for line in lam.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [0.002, 0.002]
    mean_line = [line for line in lam.lines if line.get_linestyle() == "-"][0]
    assert list(mean_line.get_ydata()) == [11.0, 30.5]
    plt.close(fig)
    empty = figure4.plot_sweeps(_frame().iloc[0:0], marks, params=["finetune.n_gen"])
    assert [t.get_text() for t in empty.axes[0].texts] == ["no runs yet"]
    plt.close(empty)
    with pytest.raises(ConfigError, match="cannot sweep"):
        figure4.plot_sweeps(_frame(), marks, params=["finetune.lr"])


def test_describe_sweeps_follows_the_numbers(cfg):
    text = figure4.describe_sweeps(_frame(), sweep.defaults(cfg))
    first = text.splitlines()[0]
    assert "best mean, 30.5 %, is at 0.002" in first and "(0.002) gives 30.5 %" in first
    # the two values' seed ranges are 2.0 and 1.0 points: their median, 1.5, is the spread compared with
    assert "span 19.5 points, more than the median spread between seeds at one value (1.5 points)" in first
    assert first.endswith("the best mean is at the setting of the main experiments itself.")
    # 0.008 beats the default by 3.0 and 2.5 points on seeds 0 and 1: mean +2.75, and two pairs are too
    # few for a verdict; the t rule asks for 3 seeds, raised to the 6 a verdict takes
    better = pd.concat([_frame(), sweep.sweep_frame(pd.DataFrame([_row("finetune.lambda_r=0.008", s, b)
                                                                  for s, b in ((0, 33.0), (1, 33.5))]))])
    first = figure4.describe_sweeps(better, sweep.defaults(cfg)).splitlines()[0]
    assert "is at 0.008 of 3 value(s)" in first
    assert first.endswith("paired by seed (the best of several values, so the difference is biased upwards): "
                          "+2.8 points (95 % CI +2.5 to +3.0, 2 seeds): too few seeds for a verdict (it takes 6); "
                          "about 6 seeds would resolve a difference of this size.")
    one_run = sweep.sweep_frame(pd.DataFrame([_row("finetune.n_gen=2", 0, 5.0)]))
    one = figure4.describe_sweeps(one_run, sweep.defaults(cfg))
    assert "no seed spread" in one and "(4) has no runs" in one
    assert figure4.describe_sweeps(one_run.iloc[0:0], {}).startswith("No sweep runs yet")


def test_describe_choice_pairs_the_best_value_with_the_preset_value():
    frame = _frame()  # lambda_r: 0.0005 gives 10 and 12, the default 0.002 gives 30 and 31
    text = figure4.describe_choice(frame, "finetune.lambda_r", 0.002, "quick")
    assert "is at 0.002, at the edge of the range swept" in text and "(30.5 %)" in text
    assert text.endswith("the best mean is at the preset value itself.")
    # a preset value of 0.0005: the best (0.002) is 20 and 19 points above it on seeds 0 and 1
    text = figure4.describe_choice(frame, "finetune.lambda_r", 0.0005, "quick")
    assert "the best value against the preset value, paired by seed" in text
    assert "+19.5 points (95 % CI +19.0 to +20.0, 2 seeds): too few seeds for a verdict (it takes 6)" in text
    assert figure4.describe_choice(frame, "finetune.lambda_r", 0.1, "quick").endswith(
        "the preset value has no runs to pair the best value with.")
