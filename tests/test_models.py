"""The real diffusers models, loaded through the same code path as DiT-XL/2, on tiny stand-ins."""
import pytest
import torch

from ddgd.method.models import EMA, apply_difffit, load_transformer, load_vae, num_classes, drop_labels


def test_load_from_save_pretrained_folder_roundtrip(tiny_hub):
    a = load_transformer("tiny", seed=0)
    b = load_transformer(str(tiny_hub))  # the hub-like root: reads transformer/ like a hub id
    c = load_transformer(str(tiny_hub / "transformer"))
    z, t, y = torch.randn(2, 4, 4, 4), torch.tensor([3, 700]), torch.tensor([1, 10])
    with torch.no_grad():
        ref = a(z, timestep=t, class_labels=y).sample
        assert torch.allclose(ref, b(z, timestep=t, class_labels=y).sample, atol=1e-6)
        assert torch.allclose(ref, c(z, timestep=t, class_labels=y).sample, atol=1e-6)
    assert num_classes(b) == 10
    vae = load_vae(str(tiny_hub / "vae"))
    assert vae.config.latent_channels == 4


def test_embedders_are_tied_and_dropout_is_off():
    model = load_transformer("tiny")
    shared = model.transformer_blocks[0].norm1.emb
    assert all(b.norm1.emb is shared for b in model.transformer_blocks)
    assert shared.class_embedder.dropout_prob == 0.0
    model.train()
    with torch.no_grad():
        z, t, y = torch.randn(2, 4, 4, 4), torch.tensor([3, 3]), torch.tensor([1, 1])
        assert torch.equal(model(z, timestep=t, class_labels=y).sample, model(z, timestep=t, class_labels=y).sample)


def test_bad_model_spec_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a local folder"):
        load_transformer("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_transformer(str(tmp_path / "empty"))


def test_difffit_selection_and_gradients_reach_only_trainable():
    model = load_transformer("tiny")
    names = apply_difffit(model)
    assert any("class_embedder" in n for n in names)
    assert all(n.endswith("bias") or "ddgd_gamma" in n or "class_embedder" in n for n in names)
    # gammas only in the first half of the blocks (tiny has 2 blocks -> block 0)
    gammas = [n for n in names if "ddgd_gamma" in n]
    assert gammas and all(n.startswith("transformer_blocks.0.") for n in gammas)
    assert len(gammas) == 6  # q, k, v, attention output, attention residual, MLP residual
    out = model(torch.randn(3, 4, 4, 4), timestep=torch.tensor([1, 2, 3]), class_labels=torch.tensor([0, 1, 2])).sample
    out.pow(2).mean().backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, n
        else:
            assert p.grad is None, n
    # gammas start at 1: the selection does not change the pretrained function
    fresh = load_transformer("tiny")
    z, t, y = torch.randn(2, 4, 4, 4), torch.tensor([5, 6]), torch.tensor([3, 4])
    with torch.no_grad():
        assert torch.allclose(fresh(z, timestep=t, class_labels=y).sample, model(z, timestep=t, class_labels=y).sample)


def test_ema_update_and_copy():
    model = load_transformer("tiny")
    apply_difffit(model)
    ema = EMA(model, decay=0.5)
    name, p = next((n, p) for n, p in model.named_parameters() if p.requires_grad)
    before = p.detach().clone()
    with torch.no_grad():
        p.add_(2.0)
    ema.update(model)
    assert torch.allclose(ema.shadow[name], before + 1.0)
    ema.copy_to(model)
    assert torch.allclose(p, before + 1.0)


def test_drop_labels_rate():
    g = torch.Generator().manual_seed(0)
    y = drop_labels(torch.zeros(10000, dtype=torch.long), 10, 0.1, g)
    assert set(y.unique().tolist()) == {0, 10}
    assert abs(float((y == 10).float().mean()) - 0.1) < 0.02


def test_bitfit_trains_the_biases_only():
    from ddgd.method.models import select_trainable

    model = load_transformer("tiny")
    names = select_trainable(model, difffit=True, bitfit=True)  # BitFit takes precedence
    assert names and all(n.endswith("bias") for n in names)
    assert all(p.requires_grad == n.endswith("bias") for n, p in model.named_parameters())
