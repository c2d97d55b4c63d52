"""The 2-D experiment behind Figure 1 (ddgd/pages/figure1.py): data, coverage, determinism, the full run."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from ddgd.method.diffusion import Schedule
from ddgd.pages.toy_diffusion import ToyDenoiser, sample_paths
from ddgd.pages.figure1 import (ToyParams, coverage, mixture_density, mode_centres, mode_weights, run_figure1, smooth_path, summarise, verdict)

SMOKE = dict(seeds=[0, 1], num_timesteps=30, hidden=16, n_train=64, pretrain_steps=15, pretrain_batch_size=16,
             finetune_steps=12, batch_size=8, n_real=3, n_gen=3, ipc=4, n_eval=50, field_t=5)


@pytest.fixture(scope="module")
def smoke_run():
    return run_figure1(SMOKE)


def test_mode_centres_lie_on_a_ring_around_the_origin():
    c = mode_centres(8, 2.0)
    assert c.shape == (8, 2)
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(c.mean(0), torch.zeros(2), atol=1e-6)  # centred: cosine measures the angle


def test_biased_weights_put_no_mass_beyond_the_given_modes():
    w = mode_weights(8, (3.0, 1.0))
    assert torch.allclose(w, torch.tensor([0.75, 0.25, 0, 0, 0, 0, 0, 0]))
    assert torch.allclose(mode_weights(4), torch.full((4,), 0.25))


def test_mixture_density_integrates_to_one():
    c, w = mode_centres(8, 2.0), mode_weights(8)
    axis = torch.linspace(-4, 4, 401)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    dens = mixture_density(torch.stack([gx.flatten(), gy.flatten()], 1), c, 0.15, w)
    assert float(dens.sum() * (axis[1] - axis[0]) ** 2) == pytest.approx(1.0, abs=1e-3)


def test_coverage_is_exact_on_a_hand_made_case():
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    points = torch.tensor([[1.1, 0.0], [0.0, 1.6], [-1.0, 0.2]])  # within 0.3 of modes 0 and 2 only
    real = torch.tensor([[1.0, 0.0], [0.0, -1.0]])  # nearest distilled points at 0.1 and sqrt(1.21 + 1)
    out = coverage(points, centres, real, hit_radius=0.3)
    assert out["modes_hit"] == 2
    assert out["nn_distance"] == pytest.approx((0.1 + math.sqrt(1.1**2 + 1.0)) / 2, rel=1e-6)
    assert coverage(points, centres, real, hit_radius=0.7)["modes_hit"] == 3  # 0.7 reaches (0, 1.6)


def test_sampler_is_deterministic_and_keeps_the_whole_path():
    torch.manual_seed(0)
    model, schedule = ToyDenoiser(hidden=8), Schedule.linear(30)
    noise = torch.randn(31, 5, 2, generator=torch.Generator().manual_seed(1))
    a, b = sample_paths(model, schedule, noise), sample_paths(model, schedule, noise)
    assert a.shape == (31, 5, 2)
    assert torch.equal(a, b)
    assert torch.equal(a[0], noise[0])  # the path starts at the noise
    with pytest.raises(ValueError, match="T \\+ 1"):
        sample_paths(model, schedule, noise[:10])


def test_smooth_path_keeps_both_ends():
    path = np.random.default_rng(0).normal(size=(20, 3, 2))
    out = smooth_path(path, 5)
    assert out.shape == path.shape
    assert np.array_equal(out[0], path[0]) and np.array_equal(out[-1], path[-1])
    assert np.abs(np.diff(out, axis=0)).mean() < np.abs(np.diff(path, axis=0)).mean()  # smoother


def test_run_figure1_returns_every_method_and_seed(smoke_run):
    res = smoke_run["results"]
    assert isinstance(res, pd.DataFrame)
    assert set(res["method"]) >= {"finetune", "minimax", "ddgd"}
    assert len(res) == 4 * 2 and set(res["seed"]) == {0, 1}
    assert res["modes_hit"].between(0, 8).all() and (res["nn_distance"] > 0).all()
    # only the memory methods report memory terms; r in [0, 2], g in [-1, 1]
    mem = res[res.method.isin(["minimax", "ddgd"])]
    assert mem["l_real"].between(0, 2).all() and mem["l_gen"].between(-1, 1).all()
    assert res[res.method == "finetune"]["l_real"].isna().all()
    assert smoke_run["paths"]["ddgd"].shape == (31, 4, 2)
    assert len(smoke_run["field"]["minimax"]) == 4


def test_run_figure1_is_deterministic(smoke_run):
    again = run_figure1(SMOKE)
    pd.testing.assert_frame_equal(smoke_run["results"], again["results"])
    assert np.array_equal(smoke_run["paths"]["ddgd"], again["paths"]["ddgd"])


def test_memory_terms_change_the_model(smoke_run):
    paths = smoke_run["paths"]
    assert np.array_equal(paths["finetune"][0], paths["ddgd"][0])  # same noise for every method
    assert not np.array_equal(paths["finetune"][-1], paths["ddgd"][-1])


def test_summary_and_verdict(smoke_run):
    summary = summarise(smoke_run["results"])
    assert list(summary["method"]) == ["pretrained", "finetune", "minimax", "ddgd"]
    assert {"modes_hit_mean", "nn_distance_std"} <= set(summary.columns)
    text = verdict(smoke_run["results"])
    # two seeds are too few for a verdict: every comparison is "not measurably better or worse"
    assert "DDGD covers the real distribution not measurably better or worse than Minimax" in text
    assert text.count("too few seeds for a verdict") == 5


def _results(dist_ddgd, noise):
    """Eight seeds; DDGD's distance is `dist_ddgd` plus a per-seed offset `noise` * (-1, +1, -1, ...)."""
    rows = []
    for seed in range(8):
        for method, dist in (("finetune", 0.6), ("minimax", 0.6), ("ddgd", dist_ddgd + noise * (-1) ** (seed + 1))):
            rows.append({"method": method, "seed": seed, "modes_hit": 3.0, "nn_distance": dist})
    return pd.DataFrame(rows)


def test_verdict_pairs_by_seed_and_reads_lower_distance_as_better():
    # DDGD 0.2 closer on every seed: the interval lies below 0, which for a distance is "better"
    text = verdict(_results(0.4, 0.01))
    assert "DDGD covers the real distribution better than Minimax and better than plain fine-tuning" in text
    assert "- DDGD - Minimax, mean distance to the nearest distilled point: -0.200 (95 % CI" in text
    assert "8 seeds): better." in text
    assert "worse than Minimax" in verdict(_results(0.8, 0.01))
    # differences of -0.06 and +0.04 alternating: mean -0.01, an interval holding 0
    tie = verdict(_results(0.59, 0.05))
    assert "not measurably better or worse than Minimax" in tie and "unresolved" in tie
    # equal modes hit on every seed: a mean difference of 0
    assert "a mean difference of zero gives no number of seeds" in tie


def test_bad_parameters_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="unknown figure-1 parameter"):
        ToyParams.from_mapping({"lambda": 1.0})
    with pytest.raises(ValueError, match="unknown method"):
        ToyParams.from_mapping({"methods": ["dit"]})
    with pytest.raises(ValueError, match="25 or more"):
        ToyParams.from_mapping({"num_timesteps": 20})
    with pytest.raises(ValueError, match="field_t"):
        ToyParams.from_mapping({"field_t": 100})


def test_parameter_sets_match_the_notebook_and_the_defaults():
    from dataclasses import asdict

    from ddgd.experiments.reproduce import load_params, notebook_parameters, notebook_path

    declared = notebook_parameters(notebook_path("figure1"))
    cpu = load_params("figure1", "cpu")
    assert set(declared) - set(cpu) == {"output_dir"}  # the cpu preset restates every default
    assert all(declared[k] == v for k, v in cpu.items())
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(ToyParams()).items()}
    assert all(defaults[k] == cpu[k] for k in defaults)  # ToyParams() is the cpu preset
    for preset in ("smoke", "paper"):
        values = load_params("figure1", preset)
        assert set(values) <= set(declared)
        ToyParams.from_mapping({k: v for k, v in values.items() if k in defaults})  # valid values
