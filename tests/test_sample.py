"""The batched guided sampler: prefix and batch-size invariance, guidance channels, export."""
import json

import pytest
import torch

from ddgd.method.models import load_transformer, load_vae
from ddgd.method.sample import generate, guided_output, ipc_subset, write_image_folder


@pytest.fixture(scope="module")
def model():
    return load_transformer("tiny", seed=1).eval()


def test_ipc_prefix_and_batch_size_invariance(model):
    vae = load_vae("tiny")
    big, big_labels = generate(model, vae, list(range(3)), 4, seed=7, steps=4, batch_size=5, progress=False)
    small, small_labels = generate(model, vae, list(range(3)), 2, seed=7, steps=4, batch_size=64, progress=False)
    prefix, prefix_labels = ipc_subset(big, big_labels, 2)
    assert torch.equal(prefix_labels, small_labels)
    assert (prefix.int() - small.int()).abs().max() <= 1  # same noise; only float rounding of the batch differs
    other, _ = generate(model, vae, list(range(3)), 2, seed=8, steps=4, batch_size=64, progress=False)
    assert not torch.equal(other, small)


def test_guidance_applies_to_first_channels_only(model):
    z, t, y = torch.randn(2, 4, 4, 4), torch.tensor([500, 500]), torch.tensor([1, 2])
    with torch.no_grad():
        cond = model(z, timestep=t, class_labels=y).sample
        eps3, v3 = guided_output(model, z, t, y, 4.0, 3)
        eps_all, _ = guided_output(model, z, t, y, 4.0, None)
        eps1, _ = guided_output(model, z, t, y, 1.0, 3)
    assert torch.allclose(eps3[:, 3], cond[:, 3], atol=1e-6)  # the unguided channel is the conditional eps
    assert not torch.allclose(eps3[:, :3], cond[:, :3], atol=1e-4)
    assert torch.allclose(eps3[:, :3], eps_all[:, :3], atol=1e-6)
    assert torch.allclose(v3, cond[:, 4:], atol=1e-6)
    assert torch.allclose(eps1, cond[:, :4], atol=1e-6)


def test_null_class_is_the_last_label_whatever_the_count():
    model = load_transformer("tiny")
    assert model.transformer_blocks[0].norm1.emb.class_embedder.embedding_table.num_embeddings == 11
    eps, _ = guided_output(model, torch.randn(1, 4, 4, 4), torch.tensor([10]), torch.tensor([9]), 4.0, 3)
    assert torch.isfinite(eps).all()


def test_ipc_larger_than_pool_is_an_error():
    with pytest.raises(ValueError, match="pool"):
        ipc_subset(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 0, 1, 1]), 3)


def test_image_folder_export_is_complete_or_absent(tmp_path):
    images = torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 0, 1, 1])
    out = write_image_folder(images, labels, ["a", "b"], tmp_path / "pool", {"seed": 0})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"a": 2, "b": 2} and len(manifest["files"]) == 4
    assert not (tmp_path / "pool.partial").exists()
    with pytest.raises(FileExistsError):
        write_image_folder(images, labels, ["a", "b"], tmp_path / "pool", {})
