"""The runs of an experiment: which methods there are, and the config that one run is hashed with.

Light on purpose (no torch): the report reads result files by these hashes, and the pipeline that
makes the runs uses the same functions, so the two cannot disagree about what a row means.
"""
from __future__ import annotations

from dataclasses import replace

from ddgd.config import METHODS, FinetuneConfig, ModelConfig, RunConfig, SampleConfig

GENERATIVE = METHODS  # the methods that fine-tune (or not: `dit`) and sample a diffusion model
REAL = ("random", "full")  # the baselines on real images

# What a real-image baseline's row records for the model section, which it does not use: the
# defaults as they were before `dit_numerics` existed, so that its rows keep their hashes.
NO_MODEL = ModelConfig(dit_numerics="diffusers")


def with_seed(cfg: RunConfig, seed: int, method: str | None = None) -> RunConfig:
    """The config of one seed (fine-tuning and sampling seeds) and, optionally, one method."""
    ft = replace(cfg.finetune, seed=seed, **({"method": method} if method else {}))
    return replace(cfg, finetune=ft, sample=replace(cfg.sample, seed=seed))


def run_config(cfg: RunConfig, method: str, seed: int, ipc: int | None = None, network: str | None = None) -> RunConfig:
    """The config of one run, narrowed to its seed (and IPC and network): what its CSV row is hashed with.

    Narrowing keeps a row's hash independent of the other seeds, IPCs and networks of the preset, so
    adding a seed or a network to a finished experiment computes only the new runs. The real-image
    baselines (`random`, `full`) keep the defaults of the model, fine-tuning and sampling sections: a
    change of fine-tuning settings leaves their rows valid.
    """
    run_cfg = with_seed(cfg, seed, method if method in GENERATIVE else None)
    if method not in GENERATIVE:  # real images: no model, fine-tuning or sampling enters the row
        run_cfg = with_seed(replace(cfg, model=NO_MODEL, finetune=FinetuneConfig(), sample=SampleConfig()), seed)
    ev = replace(run_cfg.eval, seeds=(seed,))
    if method == "full":  # the whole training set: its own (short) epoch budget
        ev = replace(ev, epochs=cfg.eval.full_epochs)
    if ipc is not None:
        ev = replace(ev, ipcs=(ipc,))
    if network is not None:
        ev = replace(ev, networks=(network,))
    return replace(run_cfg, eval=ev)
