"""The embedded benchmark's summaries (ddgd.pages.benchmark) on a hand-made result frame."""
import pandas as pd
import pytest

from ddgd.pages.benchmark import by_ipc, evaluation_cost, plot_by_ipc


@pytest.fixture
def runs():
    rows = []
    for network in ("resnetap-10-w32", "convnet-3"):
        for seed, acc in ((0, 50.0), (1, 54.0), (2, 52.0)):
            rows.append(dict(method="ddgd", network=network, ipc=1, seed=seed, best=acc, wall_s=60.0))
            rows.append(dict(method="ddgd", network=network, ipc=10, seed=seed, best=acc + 10, wall_s=120.0))
            rows.append(dict(method="full", network=network, ipc=6000, seed=seed, best=90.0, wall_s=300.0))
    return pd.DataFrame(rows)


def test_by_ipc_gives_mean_and_min_max_over_seeds(runs):
    s = by_ipc(runs).set_index(["network", "method", "ipc"])
    cell = s.loc[("convnet-3", "ddgd", 10)]
    assert (cell["mean"], cell["lo"], cell["hi"], cell["n"]) == (62.0, 60.0, 64.0, 3)


def test_evaluation_cost_sums_minutes_per_network_and_ipc(runs):
    cost = evaluation_cost(runs)
    assert list(cost.index) == ["convnet-3", "resnetap-10-w32"]  # the report's network order
    assert list(cost.columns) == ["full", "IPC 1", "IPC 10", "all"]
    # three seeds: 3 x 60 s = 3 min at IPC 1, 3 x 120 s = 6 min at IPC 10, 3 x 300 s = 15 min for full
    assert cost.loc["convnet-3"].tolist() == [15.0, 3.0, 6.0, 24.0]


def test_plot_has_one_panel_per_network_and_full_as_a_level_line(runs):
    fig = plot_by_ipc(runs)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["convnet-3", "resnetap-10-w32"]
    ddgd_line = [ln for ln in axes[0].get_lines() if ln.get_label() == "ddgd"][0]
    assert list(ddgd_line.get_xdata()) == [1, 10] and list(ddgd_line.get_ydata()) == [52.0, 62.0]
    level = [ln for ln in axes[0].get_lines() if ln.get_label().startswith("full")][0]
    assert list(level.get_ydata()) == [90.0, 90.0]


def test_legend_names_methods_that_ran_on_one_network_only(runs):
    extra = pd.DataFrame([dict(method="minimax", network="convnet-3", ipc=1, seed=0, best=51.0, wall_s=60.0)])
    fig = plot_by_ipc(pd.concat([runs, extra], ignore_index=True))
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["minimax", "ddgd", "full (all images)"]  # METHOD_ORDER


def test_empty_results_give_empty_summaries():
    empty = pd.DataFrame(columns=["method", "network", "ipc", "seed", "best", "wall_s"])
    assert by_ipc(empty).empty and evaluation_cost(empty).empty
    assert len(plot_by_ipc(empty).axes) == 1
