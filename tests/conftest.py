"""Shared fixtures: small stand-ins built by the tests themselves (nothing downloads)."""
import pytest
import torch

from ddgd.method.models import load_transformer, load_vae, untied_copy


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # on a busy 2-core machine, 2 threads mostly wait on each other


@pytest.fixture(scope="session")
def tiny_hub(tmp_path_factory):
    """A hub-like folder holding a tiny DiT (transformer/) and VAE (vae/), written with save_pretrained."""
    root = tmp_path_factory.mktemp("tiny-hub")
    untied_copy(load_transformer("tiny", seed=0)).save_pretrained(root / "transformer")
    load_vae("tiny", seed=0).save_pretrained(root / "vae")
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_latent_cache(tmp_path_factory):
    """Latent caches of the tests go to a temporary folder, never the repository's runs/cache."""
    import os

    old = os.environ.get("DDGD_CACHE")
    os.environ["DDGD_CACHE"] = str(tmp_path_factory.mktemp("latent-cache"))
    yield
    if old is None:
        os.environ.pop("DDGD_CACHE", None)
    else:
        os.environ["DDGD_CACHE"] = old
