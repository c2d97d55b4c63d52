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
