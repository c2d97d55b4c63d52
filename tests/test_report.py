"""Result tables and published references (SPEC section 6)."""
import re

import pandas as pd
import pytest

from ddgd.evaluate import append_result, result_row
from ddgd.report import (REFERENCES, format_cell, format_markdown, load_results, provenance, reference_table,
                         summary, table, with_references)


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
