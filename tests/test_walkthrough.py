"""Exact tests of the walk-through measurements (ddgd.pages.walkthrough) on hand-computable tensors."""
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from ddgd.pages import adaptive_update as au
from ddgd.pages import figures as figs
from ddgd.pages import memory_initialisation as mi
from ddgd.pages import minimax_losses as ml
from ddgd.pages import walkthrough as ins
from ddgd.config import resolve
from ddgd.method.diffusion import Schedule
from ddgd.method.finetune import batch_indices
from ddgd.method.latents import LatentCache
from ddgd.method.losses import minimax_terms
from ddgd.method.memory import ClassMemories, MemoryBank, adaptive, adaptive_min


class _FakeVAE:
    """encode(x) has posterior mean x and std 0; the scaling factor is 2."""

    config = SimpleNamespace(scaling_factor=2.0)

    def encode(self, x):
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=x, std=torch.zeros_like(x)))


# ---- data and latents -------------------------------------------------------------------------

def test_first_per_class_keeps_dataset_order():
    labels = torch.tensor([1, 0, 1, 1, 0, 2])
    assert ins.first_indices_per_class(labels, 2).tolist() == [0, 1, 2, 4, 5]
    assert ins.first_indices_per_class(labels, None).tolist() == list(range(6))


def test_real_images_of_an_in_memory_set():
    from ddgd.experiments.pipeline import load_data

    cfg = resolve("digits-tiny", {"data.train_per_class": 3})
    x, y = ins.real_images(cfg, load_data(cfg))
    assert x.shape == (30, 1, 16, 16) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.bincount(y).tolist() == [3] * 10
    x2, y2 = ins.real_images(cfg, load_data(cfg), classes=[7, 2])
    assert sorted(y2.tolist()) == [2, 2, 2, 7, 7, 7] and torch.equal(x2, x[(y == 2) | (y == 7)])  # dataset order


def test_real_images_of_an_imagenet_subset(tmp_path):
    from ddgd.protocol.imagenet import SUBSETS
    from fakes import make_fake_imagenet

    root = make_fake_imagenet(tmp_path, SUBSETS["imagewoof"], n_train=3, n_val=1, size=20)
    cfg = ins.walkthrough_config("imagewoof", 2, imagenet_root=str(root), overrides={"data.resolution": 16})
    x, y = ins.real_images(cfg, None, classes=[4, 1])
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [1, 1, 4, 4]
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_fresh_latents_flip_some_images_and_scale():
    x = torch.arange(64 * 2 * 3, dtype=torch.float32).reshape(64, 1, 2, 3)
    z = ins.fresh_latents(_FakeVAE(), x, torch.Generator().manual_seed(0))
    same = (z == 2 * x).flatten(1).all(1)
    flipped = (z == 2 * x.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all()) and 0 < int(flipped.sum()) < 64


def test_channel_moments():
    z = torch.zeros(2, 2, 1, 2)
    z[:, 1] = torch.tensor([[1.0, 3.0]])  # channel 1 holds 1, 3, 1, 3
    df = ins.channel_moments(z)
    assert df["mean"].tolist() == [0.0, 2.0]
    assert df["std"].tolist() == pytest.approx([0.0, math.sqrt(4 / 3)])


def test_psnr_of_a_constant_error():
    x = torch.zeros(2, 1, 4, 4)
    assert ins.psnr(x, x + 0.2).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # mse 0.04: 10 log10(100)


# ---- memories ---------------------------------------------------------------------------------

def test_label_stream_follows_the_fine_tuning_batches():
    labels = torch.arange(20) % 4
    stream = ins.label_stream(labels, 8, 5, seed=3)
    assert len(stream) == 5
    assert torch.equal(stream[4], labels[batch_indices(20, 8, 4, 3)])


def test_fill_history_by_hand():
    stream = [torch.tensor([0, 0, 1]), torch.tensor([1, 2]), torch.tensor([0])]
    df = mi.fill_history(stream, n_real=2, n_gen=3).set_index(["step", "label"])
    assert df.loc[(1, 0), ["real", "gen"]].tolist() == [2, 2]
    assert df.loc[(3, 0), ["real", "gen"]].tolist() == [2, 3]
    assert df.loc[(1, 2), ["real", "gen", "in_batch"]].tolist() == [0, 0, False]
    assert df["counted"].tolist() == [False, False, False, False, True, False, True, False, False]


def test_fill_history_matches_class_memories():
    torch.manual_seed(0)
    stream = [torch.randint(0, 3, (5,)) for _ in range(6)]
    memories = ClassMemories(4, 2, "adaptive")
    for y in stream:
        memories.update(y, torch.randn(5, 3), torch.randn(5, 3))
    last = mi.fill_history(stream, 4, 2).query("step == 6").set_index("label")
    for c in memories.real:
        assert (len(memories.real[c]), len(memories.gen[c])) == tuple(last.loc[c, ["real", "gen"]])


def _checkpoint(tmp_path, memories):
    torch.save({"memories": memories.state_dict() if memories else None,
                "history": [{"step": 1, "loss": 2.0, "l_real": 0.0}, {"step": 2, "loss": 1.5, "l_real": 0.3}]},
               tmp_path / "checkpoint.pt")


def test_memory_tensors_and_loss_history_read_a_checkpoint(tmp_path):
    memories = ClassMemories(2, 2, "fifo")
    memories.update(torch.tensor([3, 1, 3]), torch.arange(6.0).reshape(3, 2), -torch.arange(6.0).reshape(3, 2))
    _checkpoint(tmp_path, memories)
    got = mi.memory_tensors(tmp_path)
    assert list(got) == [1, 3]
    assert got[3][0].tolist() == [[0.0, 1.0], [4.0, 5.0]] and got[1][1].tolist() == [[-2.0, -3.0]]
    assert ins.loss_history(tmp_path)["loss"].tolist() == [2.0, 1.5]


def test_memory_tensors_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the fine-tuning first"):
        mi.memory_tensors(tmp_path)
    _checkpoint(tmp_path, None)
    with pytest.raises(ValueError, match="minimax or ddgd"):
        mi.memory_tensors(tmp_path)


def test_diversity_stats_by_hand():
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])  # S = [[1,0,1],[0,1,0],[1,0,1]]
    stats = mi.diversity_stats(items)
    assert stats == pytest.approx({"mean_cos": 2 / 6, "max_cos": 1.0, "max_s": 2.0})
    assert math.isnan(mi.diversity_stats(items[:1])["mean_cos"])


def test_memory_summary():
    memories = {0: (torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0]]))}
    row = mi.memory_summary(memories).iloc[0]
    assert (row.n_real, row.n_gen) == (2, 1)
    assert row.real_mean_cos == pytest.approx(0.0) and row.cross_mean_cos == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(row.gen_mean_cos)


# ---- the minimax terms ------------------------------------------------------------------------

def _toy_batch():
    pred = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([1, 0, 1, 2])  # class 2 has no memory yet
    memories = {0: (torch.tensor([[0.0, 1.0, 1.0]]), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])),
                1: (torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.2, 0.0]]))}
    return pred, labels, memories


def test_term_pairs_match_minimax_terms():
    pred, labels, memories = _toy_batch()
    pairs = ml.term_pairs(pred, labels, memories).set_index("label")
    terms = minimax_terms(pred, labels, memories)
    assert list(pairs.index) == [0, 1]
    for c in (0, 1):
        assert (pairs.loc[c, "r_c"], pairs.loc[c, "g_c"]) == pytest.approx(tuple(map(float, terms.per_class[c])))
    # class 1: item 0 = e0 is orthogonal to memory item 1 = e1 (smallest similarity, r_c = 1)
    assert pairs.loc[1, ["real_item", "real_memory", "items"]].tolist() == [0, 1, 2]
    assert pairs.loc[0, ["gen_item", "gen_memory"]].tolist() == [1, 0] and pairs.loc[0, "g_c"] == pytest.approx(1.0)


def test_class_blocks_stack_rows_by_class():
    pred, labels, memories = _toy_batch()
    matrix, order, marks = ml.class_blocks(pred, labels, memories, "real")
    assert order.tolist() == [1, 0, 2, 3] and matrix.shape == (4, 2)
    assert matrix[0, 0] == pytest.approx(1 / math.sqrt(2)) and math.isnan(matrix[0, 1])
    assert matrix[1].tolist() == pytest.approx([1.0, 0.0]) and bool(torch.isnan(torch.tensor(matrix[3])).all())
    assert marks == {0: (0, 0), 1: (1, 1)}
    _, _, gen_marks = ml.class_blocks(pred, labels, memories, "gen")
    assert gen_marks[0] == (0, 0)


def test_gradient_table_pull_and_push():
    pred, labels, memories = _toy_batch()
    pred = pred + 0.1  # off the axes: no exact ties
    pred.requires_grad_(True)
    terms = minimax_terms(pred, labels, memories)
    grads = {"real": torch.autograd.grad(terms.l_real, pred, retain_graph=True)[0],
             "gen": torch.autograd.grad(terms.l_gen, pred)[0]}
    df = ml.gradient_table(pred, grads, labels, memories, nudge=0.01)
    assert len(df) == 4 and (df["items_with_grad"] == 1).all()  # one item per class and term moves
    for row in df.itertuples():
        sign = 1 if row.term == "real" else -1  # pull towards M_real, push away from M_gen
        assert row.alignment == pytest.approx(sign * math.sqrt(1 - row.similarity**2), abs=1e-5)
        assert (row.after - row.similarity) * sign > 0


def test_predict_batch_draws_like_a_training_step():
    cache = LatentCache(torch.randn(6, 2, 2, 2, 2).half(), torch.rand(6, 2, 2, 2, 2).half(), torch.arange(6) % 3)
    schedule = Schedule.linear(100)
    model = lambda z, timestep, class_labels: SimpleNamespace(sample=torch.zeros(len(z), 4, 2, 2))  # noqa: E731
    g = torch.Generator().manual_seed(1)
    b = ml.predict_batch(model, cache, torch.tensor([0, 4]), torch.arange(3), schedule, g)
    g = torch.Generator().manual_seed(1)
    z0 = cache.sample(torch.tensor([0, 4]), g)
    t = torch.randint(0, 100, (2,), generator=g)
    assert torch.equal(b.z0, z0) and torch.equal(b.t, t) and b.y.tolist() == [0, 1]
    abar = schedule.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    assert torch.allclose(b.zhat, b.z_t / abar.sqrt())  # eps_theta = 0


def test_mean_multiplicity_is_the_cumulative_weight():
    stream = [torch.tensor([0, 0]), torch.tensor([0, 1, 2])]
    assert ml.mean_multiplicity(stream) == pytest.approx(1.5)
    weights = minimax_terms(torch.randn(3, 2), stream[1], {}, accumulate="cumulative").weights
    assert sum(weights.values()) / len(weights) == 2.0


# ---- update rules over a stream ----------------------------------------------------------------

@pytest.mark.parametrize("rule", ["fifo", "adaptive", "adaptive-min"])
def test_track_rule_keeps_what_memory_bank_keeps(rule):
    torch.manual_seed(1)
    stream = torch.randn(17, 5)
    stats, alive = au.track_rule(stream, 6, rule, per_step=3)
    bank = MemoryBank(6, rule)
    for k in range(0, 17, 3):
        bank.add(stream[k:k + 3])
    assert alive.shape == (6, 17) and torch.equal(bank.tensor(), stream[alive[-1]])
    assert stats["size"].tolist() == [3, 6, 6, 6, 6, 6]
    if rule == "fifo":
        assert torch.nonzero(alive[-1]).squeeze(1).tolist() == list(range(11, 17))
        assert stats["max_age"].iloc[-1] == 2  # items 11, 12 arrived at step 4 of 6 (0-based 3, now 5)


def test_naive_adaptive_matches_the_incremental_rule():
    torch.manual_seed(2)
    items = torch.randn(20, 7)
    assert torch.equal(au.naive_adaptive(items, 12), adaptive(items, 12))
    assert torch.equal(au.naive_adaptive(items, 12, largest=False), adaptive_min(items, 12))
    dupes = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    assert au.naive_adaptive(dupes, 3).tolist() == adaptive(dupes, 3).tolist() == [1, 3, 4]


# ---- figures, files, clocks --------------------------------------------------------------------

def test_image_grid_and_decode_items():
    from ddgd.method.models import load_vae

    vae = load_vae("tiny")
    images = ins.decode_items(vae, torch.randn(3, 64), (4, 4, 4))
    assert images.shape == (3, 1, 16, 16) and images.dtype == torch.uint8
    fig = figs.image_grid([images, torch.zeros(2, 1, 16, 16)], labels=["a", "b"], title="t")
    assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "a"


def test_write_csv_adds_provenance(tmp_path):
    path = figs.write_csv(pd.DataFrame({"x": [1, 2]}), tmp_path / "sub" / "t.csv", resolve("digits-tiny"))
    df = pd.read_csv(path)
    assert df["x"].tolist() == [1, 2] and (df["preset"] == "digits-tiny").all()
    assert {"config_hash", "torch", "commit"} <= set(df.columns) and not list(tmp_path.glob("sub/*.tmp"))


def test_time_call_warms_up_and_takes_the_best():
    calls = []
    assert ins.time_call(lambda: calls.append(1), repeats=3) >= 0.0
    assert len(calls) == 4


def test_distilled_set_random_and_unknown_method(tmp_path):
    images = torch.arange(12, dtype=torch.uint8).reshape(12, 1, 1, 1)
    data = SimpleNamespace(train_x=images, train_y=torch.arange(12) % 3)
    x, y, run = ins.distilled_set(resolve("digits-tiny"), data, "random", tmp_path, ipc=2)
    assert run is None and torch.bincount(y).tolist() == [2, 2, 2] and torch.equal(x.flatten() % 3, y)
    with pytest.raises(ValueError, match="unknown method 'full'"):
        ins.distilled_set(resolve("digits-tiny"), data, "full", tmp_path, ipc=2)


def test_walkthrough_config_applies_root_and_overrides_last():
    cfg = ins.walkthrough_config("digits-tiny", 5, imagenet_root="/data/in", overrides={"finetune.n_real": 3})
    assert (cfg.data.train_per_class, cfg.data.root, cfg.finetune.n_real) == (5, "/data/in", 3)
    assert ins.walkthrough_config("digits-tiny", None).data.root is None


# ---- the pages' sentences and tables -----------------------------------------------------------

def test_describe_posterior_width_and_latent_scale():
    assert ins.describe_posterior_width(0.49).startswith("The posterior is narrow: two samples of the same image")
    assert ins.describe_posterior_width(0.5) == ("The posterior is wide: the sampling noise is as large as the "
                                                 "differences between images, as in an untrained VAE.")
    assert ins.describe_latent_scale(1.0) == "This is close to one, which is what the scaling factor is for."
    for far in (0.7, 1.4, 0.2):  # the bounds are outside
        assert ins.describe_latent_scale(far).startswith("This is not close to one: this VAE's scaling factor")


def test_describe_mean_decoding_and_cache_gap():
    assert ins.describe_mean_decoding(30.0, 29.5) == "better"
    assert ins.describe_mean_decoding(29.5, 29.5) == "no better"
    assert ins.describe_cache_gap(0.02, 0.01) == "within the difference between two fresh encodings"
    assert ins.describe_cache_gap(0.021, 0.01) == ("more than two fresh encodings differ: the cache does not match "
                                                   "the encoder")


def test_shape_table_and_latent_moments():
    x, z = torch.zeros(2, 1, 4, 4), torch.zeros(2, 2, 2, 2)
    assert ins.shape_table(x, z, 0.18215)["value"].tolist() == ["1 x 4 x 4", "2 x 2 x 2", "16 / 8 (2.0 : 1)",
                                                                "0.18215"]
    z0 = torch.zeros(2, 2, 1, 2)
    z0[:, 1] = torch.tensor([[1.0, 3.0]])
    mean = torch.zeros(2, 2, 1, 1)
    mean[1] = 2.0  # channel spread: [0, 2] -> std sqrt(2)
    std = torch.full((2, 2, 1, 1), 0.5)
    std[:, 1] = 0.25
    m = ins.latent_moments(z0, mean, std)
    assert list(m.columns) == ["channel", "z0 mean", "z0 std", "spread of posterior means", "mean posterior std"]
    assert m["z0 mean"].tolist() == [0.0, 2.0] and m["mean posterior std"].tolist() == [0.5, 0.25]
    assert m["spread of posterior means"].tolist() == pytest.approx([math.sqrt(2)] * 2)


def test_reconstruction_table_cache_comparison_and_gaps():
    recon = ins.reconstruction_table(torch.tensor([20.0, 30.0]), torch.tensor([25.0, 27.0]))
    assert recon["mean PSNR (dB)"].tolist() == [25.0, 26.0] and recon["worst PSNR (dB)"].tolist() == [20.0, 25.0]
    z = torch.zeros(2, 1, 1, 2)
    moments = ins.latent_moments(z, z, z)
    compare = ins.cache_comparison(moments, z + 0.1, z + torch.tensor([0.0, 0.6]))
    assert compare["mean (cache)"].tolist() == pytest.approx([0.1]) and compare["std (cache)"].tolist() == [0.0]
    assert ins.largest_gap(compare, "cache") == pytest.approx(0.1)
    assert ins.largest_gap(compare, "encoder again") == pytest.approx(math.sqrt(4 * 0.09 / 3))  # std of 0, .6, 0, .6


def test_loss_windows():
    history = pd.DataFrame({"l_diff": [4.0, 2.0, 1.0], "l_real": [0.0, 0.2, 0.4], "l_gen": [0.0, 0.5, 0.7]},
                           index=[1, 2, 3])
    assert ins.loss_windows(history, 2) == pytest.approx({"l-diff-first": 3.0, "l-diff-last": 1.5,
                                                          "l-real-last": 0.3, "l-gen-last": 0.6})
    none = ins.loss_windows(None, 2)
    assert sorted(none) == ["l-diff-first", "l-diff-last", "l-gen-last", "l-real-last"]
    assert all(math.isnan(v) for v in none.values())


def test_fill_milestones_and_describe_all_full():
    stream = [torch.tensor([0, 0, 1]), torch.tensor([1, 2]), torch.tensor([0])]
    history = mi.fill_history(stream, n_real=2, n_gen=2)
    real, gen, per_step = mi.memory_sizes(history)
    assert real.loc[3].tolist() == [2, 2, 1] and per_step.counted.tolist() == [0, 1, 1]
    assert mi.fill_milestones(history, 2, 2, 3) == {"all-seen": 2, "all-full": "not within these 3 steps "
                                                    "(raise stream_steps)", "skipped": 3, "first-terms": 0}
    assert mi.fill_milestones(mi.fill_history(stream, 1, 1), 1, 1, 3)["all-full"] == "after step 2"
    assert mi.fill_milestones(mi.fill_history(stream[:1], 2, 2), 2, 2, 1)["all-seen"] == 1
    assert mi.describe_all_full(None, 7) == "not within these 7 steps (raise stream_steps)"
    assert mi.describe_all_full(12, 7) == "after step 12"


def test_fill_milestones_never_sees_every_class():
    history = pd.DataFrame([dict(step=1, label=0, in_batch=True, counted=False, real=1, gen=1),
                            dict(step=1, label=1, in_batch=False, counted=False, real=0, gen=0)])
    assert mi.fill_milestones(history, 1, 1, 1)["all-seen"] == "never"


def test_sizes_agree_and_its_sentence():
    stream = [torch.tensor([0, 0, 1]), torch.tensor([1, 2])]
    right = {0: (torch.zeros(2, 3), torch.zeros(2, 3)), 1: (torch.zeros(2, 3), torch.zeros(2, 3)),
             2: (torch.zeros(1, 3), torch.zeros(1, 3))}
    assert mi.sizes_agree(right, stream, 2, 4, 4)
    assert not mi.sizes_agree({**right, 2: (torch.zeros(1, 3), torch.zeros(0, 3))}, stream, 2, 4, 4)
    assert mi.describe_agreement(True) == "The sizes in the checkpoint are exactly those the label stream predicts."
    assert mi.describe_agreement(False) == "The sizes in the checkpoint differ from those the label stream predicts."


def test_memory_rows_and_describe_similarity():
    from ddgd.method.models import load_vae

    memories = {3: (torch.randn(4, 64), torch.randn(2, 64)), 5: (torch.randn(1, 64), torch.randn(1, 64)),
                7: (torch.randn(1, 64), torch.randn(1, 64))}
    rows, labels = mi.memory_rows(load_vae("tiny"), memories, [f"c{i}" for i in range(8)], 2, 3, (4, 4, 4))
    assert labels == ["c3: real", "c3: generated", "c5: real", "c5: generated"]
    assert [len(r) for r in rows] == [3, 2, 1, 1] and rows[0].dtype == torch.uint8
    assert mi.describe_similarity(0.5, 0.4) == "more" and mi.describe_similarity(0.4, 0.4) == "less"


def test_describe_gradient_share_and_reach():
    assert ml.describe_gradient_share(0.099) == ("The memory terms are a small steer on top of the denoising "
                                                 "objective, not a replacement for it")
    assert ml.describe_gradient_share(0.1) == ("At these weights the memory terms pull about as hard as the "
                                               "denoising objective, or harder")
    assert ml.describe_gradient_reach(pd.DataFrame({"items_with_grad": [1, 1]})) == "exactly one item"
    assert ml.describe_gradient_reach(pd.DataFrame({"items_with_grad": [1, 2]})) == "more than one item (ties)"


def test_weighted_terms_and_gradient_shares():
    eps = torch.tensor([3.0, 4.0], requires_grad=True)
    losses = {"L_diffusion": (eps**2).sum() / 2, "L_real": eps.sum(), "L_gen": torch.tensor(0.5)}  # grads eps, 1, none
    total = ml.weighted_terms(eps, losses, {"L_diffusion": 1.0, "L_real": 0.1, "L_gen": 2.0})
    assert total["term"].tolist() == ["L_diffusion", "L_real", "L_gen"]
    assert total["value"].tolist() == pytest.approx([12.5, 7.0, 0.5])
    assert total["weighted value"].tolist() == pytest.approx([12.5, 0.7, 1.0])
    assert total["gradient norm"].tolist() == pytest.approx([5.0, math.sqrt(2), 0.0])
    shares = ml.gradient_shares(total)
    assert shares == pytest.approx({"share-real": 0.1 * math.sqrt(2) / 5, "share-gen": 0.0,
                                    "largest": 0.1 * math.sqrt(2) / 5})


def test_pair_means_and_gradient_facts():
    assert ml.pair_means(pd.DataFrame({"r_c": [0.2, 0.4], "g_c": [1.0, 0.5]})) == pytest.approx(
        {"l-real": 0.3, "l-gen": 0.75})
    assert ml.pair_means(pd.DataFrame({"r_c": [], "g_c": []})) == {"l-real": 0.0, "l-gen": 0.0}
    effects = pd.DataFrame({"term": ["real", "gen", "real", "gen"], "similarity": [0.5, 0.9, 0.1, 0.2],
                            "after": [0.6, 0.8, 0.1, 0.3], "alignment": [0.8, -0.4, 1.0, -0.9],
                            "pure": [0.75, -0.4, 1.0, -0.9]})
    assert ml.gradient_facts(effects) == pytest.approx({"pull": 1, "push": 1, "n-terms": 2, "align-err": 0.05})
    assert ml.gradient_facts(effects.iloc[0:0])["align-err"] == 0.0


def test_gradient_effects_add_the_pure_alignment():
    pred, labels, memories = _toy_batch()
    pred = (pred + 0.1).requires_grad_(True)
    terms = minimax_terms(pred, labels, memories)
    df = ml.gradient_effects(pred, terms, labels, memories, nudge=0.01)
    assert df.columns[-1] == "pure" and (df["pure"] * df["alignment"] > 0).all()
    assert df["pure"].tolist() == pytest.approx(df["alignment"].tolist(), abs=1e-5)


def test_warm_up_fills_the_memories_like_fine_tuning():
    cache = LatentCache(torch.randn(6, 2, 2, 2, 2).half(), torch.rand(6, 2, 2, 2, 2).half(), torch.arange(6) % 3)
    schedule = Schedule.linear(100)
    model = lambda z, timestep, class_labels: SimpleNamespace(sample=torch.zeros(len(z), 4, 2, 2))  # noqa: E731
    ft = resolve("digits-tiny", {"finetune.batch_size": 2, "finetune.n_real": 2, "finetune.n_gen": 3}).finetune
    memories, batch = ml.warm_up(model, cache, torch.arange(3), schedule, ft, "fifo", 4, 7, torch.Generator())
    seen = torch.cat([cache.labels[batch_indices(6, 2, k, 7)] for k in range(4)])
    for c in range(3):
        n = int((seen == c).sum())
        got = memories.tensors(c)
        assert (got is None and n == 0) or (len(got[0]), len(got[1])) == (min(2, n), min(3, n))
    assert torch.equal(batch.y, cache.labels[batch_indices(6, 2, 4, 7)])
    present = ml.present_memories(memories, torch.tensor([2, 0, 2]))
    assert list(present) == [c for c in (0, 2) if memories.tensors(c) is not None]


def test_multiplicity_table_and_accumulate_ratios():
    pred, labels, memories = _toy_batch()
    once = minimax_terms(pred, labels, memories)
    cumulative = minimax_terms(pred, labels, memories, accumulate="cumulative")
    table = ml.multiplicity_table(once, cumulative, memories, ["zero", "one", "two"])
    assert table.to_dict("list") == {"class": ["zero", "one", "two"], "has memories": [True, True, False],
                                     "once": [1, 1, 1], "cumulative": [3, 2, 1]}
    ratios = ml.accumulate_ratios(once, cumulative)
    assert ratios["ratio-real"] == pytest.approx(float(cumulative.l_real) / float(once.l_real))
    zero = SimpleNamespace(l_real=torch.tensor(0.0), l_gen=torch.tensor(0.0))
    assert all(math.isnan(v) for v in ml.accumulate_ratios(zero, zero).values())


# ---- what the update rules keep (page "Adaptive update") ---------------------------------------

def _tracks():
    torch.manual_seed(3)
    stream = torch.randn(10, 4)
    rules = ["fifo", "adaptive", "adaptive-min"]
    tracks = {rule: au.track_rule(stream, 4, rule) for rule in rules}
    return tracks, pd.concat([tracks[r][0] for r in rules], ignore_index=True)


def test_kept_items_survivors_and_full_means():
    tracks, stats = _tracks()
    kept = au.kept_items(tracks)
    assert list(kept) == ["fifo", "adaptive", "adaptive-min"] and kept["fifo"].tolist() == [6, 7, 8, 9]
    full = au.full_means(stats, 4)
    fifo = stats[(stats.rule == "fifo") & (stats["size"] == 4)]
    assert list(full.index) == list(kept) and full.loc["fifo", "mean_cos"] == pytest.approx(fifo.mean_cos.mean())
    table = au.survivor_table(stats, kept, 4)
    assert list(table.index) == list(kept) and table.loc["fifo", "oldest kept item"] == 6
    assert table.loc["fifo", "kept of the first 4"] == 0 and table.loc["fifo", "mean age (steps)"] == 1.5
    assert table.loc["adaptive", "mean cosine while full"] == pytest.approx(full.loc["adaptive", "mean_cos"])


def test_evenly_spaced():
    assert au.evenly_spaced(torch.tensor([3, 5, 8, 9, 12]), 3).tolist() == [3, 8, 12]
    assert au.evenly_spaced(torch.tensor([3, 5]), 4).tolist() == [3, 5]


def test_describe_ranking_and_verdict():
    cos = pd.Series({"fifo": 0.5123, "adaptive": 0.43, "adaptive-min": 0.6})
    assert au.describe_ranking(cos) == "adaptive (0.430), then fifo (0.512), then adaptive-min (0.600)"
    assert au.describe_verdict(cos) == "As the rule intends, the self-adaptive memory is the least redundant of the three."
    worse = cos.rename({"fifo": "adaptive", "adaptive": "fifo"})
    assert au.describe_verdict(worse) == "Here the self-adaptive memory is not the least redundant of the three."


def test_describe_shape_speed_and_same():
    assert au.paper_shape() == (64, 4096)
    assert au.describe_shape(64, 4096, (64, 4096)) == "the paper's shape"
    assert au.describe_shape(32, 4096, (64, 4096)) == "smaller than the paper's 64 items of 4096 numbers"
    assert au.describe_speed(1.01) == ""
    assert au.describe_speed(1.0) == "At this small shape the loop's overhead outweighs the matrix products it saves."
    assert au.describe_same(pd.Series([True, True])) == "always"
    assert au.describe_same(pd.Series([True, False])) == "not always"


def test_timing_table_checks_both_implementations():
    table = au.timing_table([1, 3], capacity=5, dim=8, repeats=1, generator=torch.Generator().manual_seed(0))
    assert table["new items"].tolist() == [1, 3] and table["same items kept"].all()
    assert list(table.columns) == ["new items", "naive (ms)", "incremental (ms)", "speed-up", "same items kept"]
    assert (table["speed-up"] == table["naive (ms)"] / table["incremental (ms)"]).all()


def test_a_batch_without_memories_is_refused_with_the_fix():
    from ddgd.method.memory import ClassMemories
    from ddgd.pages.minimax_losses import present_memories

    memories = ClassMemories(2, 2, "adaptive")  # nothing stored yet: no warm-up batch
    with pytest.raises(ValueError, match="raise warmup_steps"):
        present_memories(memories, torch.tensor([0, 1]))
