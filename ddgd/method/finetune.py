"""Fine-tuning with the memory terms: the paper's Algorithm 1 (book page: The method).

    for each step:
        z0 ~ cached posterior of a batch of real images (random flip view)
        t ~ U{0..T-1}, eps ~ N(0, I), z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps
        eps_theta, v = DiT(z_t, t, c)          (labels dropped to the null class w.p. 0.1)
        zhat = (z_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t)
        L = L_diff (+ L_vb) + lambda_r L_real(zhat, M_real) + lambda_g L_gen(zhat, M_gen)
        theta <- AdamW(theta, grad L);  EMA update
        M_real[c] <- update(M_real[c] + z0_c);  M_gen[c] <- update(M_gen[c] + zhat_c)

`method` selects the baseline: ``finetune`` (L_diff only), ``minimax`` (FIFO memories) or ``ddgd``
(self-adaptive memories); the memory rule is the only difference between the last two.

A run directory holds config.json, checkpoint.pt (everything needed to resume exactly: trainable
weights, EMA, optimiser, both memories of every class, RNG state, step) and, when finished,
ema.pt, done.json and memory_log.csv (the memories' diversity every `finetune.memory_log_every`
steps, ddgd.method.memory_stats). Checkpoints are written to a temporary name and renamed.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base import distributed
from ddgd.base.accel import apply_model_switches, autocast, maybe_compile
from ddgd.base.files import atomic_write, write_text
from ddgd.config import RunConfig, to_dict
from ddgd.method.class_table import set_class_table
from ddgd.method.checkpoints import (RunDirError, checkpoint_id, is_done, load_checkpoint, prepare_run_dir,
                                     read_checkpoint, save_checkpoint)
from ddgd.method.diffusion import Schedule, predicted_x0, q_sample
from ddgd.method.latents import LatentCache
from ddgd.method.losses import diffusion_loss, total_loss, vb_term
from ddgd.method.memory import ClassMemories
from ddgd.method.memory_stats import log_csv, memory_log
from ddgd.method.memory_terms import memory_terms
from ddgd.method.models import EMA, copy_parameters, drop_labels, load_transformer, select_trainable


def default_device() -> torch.device:
    """The first CUDA GPU when there is one, else the CPU: the same code runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class State:
    """Everything that changes during fine-tuning (what a checkpoint stores)."""

    step: int
    optimizer: torch.optim.Optimizer
    ema: EMA
    memories: ClassMemories | None
    generator: torch.Generator  # noise, timesteps, label dropout, posterior samples
    history: list
    memory_log: list = field(default_factory=list)  # rows of ddgd.method.memory_stats.memory_log


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """The step's mini-batch: epoch-wise shuffling seeded by (seed, epoch), so resuming needs no loader state."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"{n} real images are fewer than one batch of {batch_size}: lower finetune.batch_size")
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    return perm[k * batch_size:(k + 1) * batch_size]


def total_steps(n: int, cfg: RunConfig) -> int:
    ft = cfg.finetune
    if n < ft.batch_size:  # no full batch: the run would end after 0 steps and look finished
        raise ValueError(f"{n} real images are fewer than one batch of {ft.batch_size}: lower finetune.batch_size "
                         f"to at most {n}")
    return min(ft.max_steps, ft.epochs * (n // ft.batch_size))


def training_step(model, state: State, cache: LatentCache, dit_labels: torch.Tensor, schedule: Schedule,
                  cfg: RunConfig) -> dict:
    """One step of Algorithm 1; returns the step's loss terms as floats."""
    ft, g = cfg.finetune, state.generator
    device = next(model.parameters()).device
    idx = batch_indices(len(cache), ft.batch_size, state.step, ft.seed)
    y = cache.labels[idx]  # local labels 0..K-1: the memories are per class
    # Random draws come from the CPU generator (identical on any device), then move to the model's device.
    z0 = cache.sample(idx, g)  # [B, c, h, w]
    t = torch.randint(0, len(schedule), (len(idx),), generator=g)
    eps = torch.randn(z0.shape, generator=g)
    y_model = drop_labels(dit_labels[y], model.config.num_embeds_ada_norm, ft.class_dropout, g)
    z0, t, eps, y_model = z0.to(device), t.to(device), eps.to(device), y_model.to(device)
    z_t = q_sample(z0, t, eps, schedule)
    # Under torchrun every rank draws the whole batch (one generator, the same state everywhere) and runs
    # the DiT on its own share; `splice` reassembles the batch, so the loss and the memories' update below
    # are those of one process, on every rank (the memories stay identical), and each rank's gradient
    # flows through its own share only: summed over the ranks, it is the one-process gradient.
    share = len(idx) // distributed.world()
    mine = slice(distributed.rank() * share, (distributed.rank() + 1) * share)
    with autocast(cfg.model.precision, device):  # the DiT alone: losses and memories stay float32
        out = distributed.splice(model(z_t[mine], timestep=t[mine], class_labels=y_model[mine]).sample.float())
    channels = z0.shape[1]  # the DiT predicts eps and v stacked on the channel axis
    eps_pred, v = out[:, :channels], out[:, channels:]
    l_diff = diffusion_loss(eps_pred, eps)
    l_vb = vb_term(eps_pred, v, z0, z_t, t, schedule) if ft.use_vb and v.shape[1] else None
    zhat = predicted_x0(z_t, eps_pred, schedule.alphas_cumprod, t)
    terms = None
    if state.memories is not None:  # labels stay on the host: choosing class blocks needs no device sync
        # the terms against the memories as they are, then the memories' update with (z0, zhat), in one pass
        terms = memory_terms(state.memories, zhat, y, z0, ft.accumulate)
    loss = total_loss(l_diff, l_vb, terms, ft.lambda_r, ft.lambda_g)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if distributed.world() > 1:  # every trainable parameter takes part, with a zero gradient if unused
        params = [p for g in state.optimizer.param_groups for p in g["params"]]
        for p in params:
            p.grad = torch.zeros_like(p) if p.grad is None else p.grad
        distributed.all_reduce_sum_([p.grad for p in params])
    state.optimizer.step()
    state.ema.update(model)
    state.step += 1
    zero = torch.zeros((), device=device)
    # Detached tensors: read as floats only when a checkpoint is written (`logged`), not every step.
    return {"step": state.step, "loss": loss.detach(), "l_diff": l_diff.detach(),
            "l_vb": l_vb.detach() if l_vb is not None else zero,
            "l_real": terms.l_real.detach() if terms else zero, "l_gen": terms.l_gen.detach() if terms else zero}


# ---------------------------------------------------------------------------------------- the loop
def finetune(cfg: RunConfig, cache: LatentCache, dit_labels: list[int], out_dir: str | Path,
             progress: bool = True, stop_after: int | None = None) -> Path:
    """Fine-tune `cfg.model.dit` on the cached real latents; returns the run directory.

    `dit_labels[c]` is the label the DiT is conditioned on for local class c (the canonical
    ImageNet-1k index for ImageNet subsets). `stop_after` ends the call after that many steps
    (a checkpoint is written), to test resumption.
    """
    out = Path(out_dir)
    steps = total_steps(len(cache), cfg)  # refuses a training set smaller than a batch, before anything is written
    if cfg.finetune.batch_size % distributed.world():
        raise ValueError(f"finetune.batch_size={cfg.finetune.batch_size} does not split over {distributed.world()} "
                         "ranks: launch a number of processes that divides it")
    if distributed.is_main():  # one writer of the run's files; the others read them
        prepare_run_dir(out, cfg)
    distributed.barrier()
    if is_done(out):
        return out
    ft = cfg.finetune
    torch.manual_seed(ft.seed)
    apply_model_switches(cfg.model)
    model = load_transformer(cfg.model.dit, numerics=cfg.model.dit_numerics)
    select_trainable(model, ft.difffit, ft.bitfit)
    set_class_table(model, cfg.model.class_table, len(dit_labels), ft.seed)  # after the selection: it trains
    model.to(default_device()).train()
    forward = maybe_compile(model, cfg.model.compile)  # the same parameters: EMA and checkpoints use `model`
    trainable = [p for p in model.parameters() if p.requires_grad]
    state = State(
        step=0,
        optimizer=torch.optim.AdamW(trainable, lr=ft.lr, weight_decay=ft.weight_decay),
        ema=EMA(model, ft.ema_decay),
        memories=ClassMemories(ft.n_real, ft.n_gen, ft.rule) if ft.rule else None,
        generator=torch.Generator().manual_seed(ft.seed),
        history=[],
    )
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        load_checkpoint(ckpt, model, state, cfg)
    schedule = Schedule.linear(cfg.model.num_timesteps, cfg.model.beta_start, cfg.model.beta_end)
    dit_labels = torch.as_tensor(dit_labels)
    start, t0 = state.step, time.time()
    bar = tqdm(total=steps, initial=start, desc=f"fine-tune {ft.method}", disable=not progress)
    while state.step < steps:
        state.history.append(training_step(forward, state, cache, dit_labels, schedule, cfg))
        bar.update(1)
        if state.memories is not None and ft.memory_log_every and state.step % ft.memory_log_every == 0:
            state.memory_log += memory_log(state.memories, state.step)  # the mechanism of eq-adaptive, over time
        at_end = state.step == steps or (stop_after is not None and state.step - start >= stop_after)
        if at_end or state.step % ft.checkpoint_every == 0:
            if state.memories is not None:  # the invariant of several ranks, checked where it is cheap to
                distributed.check_identical(state.memories.state_dict(), "the memories")
            if distributed.is_main():
                save_checkpoint(ckpt, model, state, cfg)
            distributed.barrier()  # a checkpoint is complete before any rank moves on
        if at_end:
            break
    bar.close()
    if state.step == steps and distributed.is_main():
        with atomic_write(out / "ema.pt") as tmp:
            torch.save({"config_id": checkpoint_id(cfg), "model": cfg.model.dit, "ema": state.ema.shadow}, tmp)
        if state.memory_log:  # the memory log as a tidy table beside the weights (also in the checkpoint)
            write_text(out / "memory_log.csv", log_csv(state.memory_log))
        write_text(out / "done.json", json.dumps({"steps": steps, "wall_s": time.time() - t0,
                                                  "config": to_dict(cfg)["finetune"]}))
    return out


def load_finetuned(cfg: RunConfig, run_dir: str | Path | None, num_classes: int | None = None):
    """The DiT with the run's EMA weights (the model sampling uses); the pretrained model for `dit`.

    `num_classes`: the dataset's class count, for a fresh class table (`model.class_table="fresh"`).
    """
    model = load_transformer(cfg.model.dit, numerics=cfg.model.dit_numerics)
    set_class_table(model, cfg.model.class_table, num_classes, cfg.finetune.seed)
    if cfg.finetune.method != "dit":
        path = Path(run_dir) / "ema.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the fine-tuning run in {run_dir} has not finished "
                                    "(rerun `ddgd distill` with the same config to resume it)")
        blob = read_checkpoint(path, keys=("config_id", "model", "ema"))
        if blob["config_id"] != checkpoint_id(cfg):
            raise RunDirError(f"{path} was made with another config: sample with the run's own config.json")
        select_trainable(model, cfg.finetune.difffit, cfg.finetune.bitfit)
        copy_parameters(model, blob["ema"])
    return model.to(default_device()).eval().requires_grad_(False)
