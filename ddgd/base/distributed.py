"""torch.distributed, as `torchrun` launches it: one process per GPU (or CPU worker), any number of nodes.

`torchrun --nproc_per_node N -m ddgd ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
address in every process's environment; `init` joins the group (NCCL on GPUs, gloo on CPUs) and a
plain `ddgd ...` is world size 1, for which every function here is the identity. Nothing of a
scheduler of our own: the work of a process is a deterministic function of its rank
(`shard`), so a rerun, a resumed run or a run with another world size does the same work.
"""
from __future__ import annotations

import os
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by torchrun (or any launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Join the process group torchrun describes (once); pins each process to its GPU when there are GPUs."""
    if not launched() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes shared artefacts (checkpoints, pools, CSV rows)."""
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shard(items: Sequence[T], k: int | None = None, n: int | None = None) -> list[T]:
    """The items of worker k of n: every n-th item from the k-th (default: this process's rank and world).

    Round-robin rather than contiguous blocks, so that workers get equal shares of items that are
    sorted by cost (methods, IPCs); a deterministic function of (items, k, n) only.
    """
    k = rank() if k is None else k
    n = world() if n is None else n
    if not 0 <= k < n:
        raise ValueError(f"shard {k}/{n}: k must lie in 0 .. n - 1 (--shard k/n counts from 0)")
    return list(items[k::n])


def all_gather_cat(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's `x` along dim 0, in rank order (all ranks' tensors of one shape).

    Under gloo the tensors travel on the CPU; under NCCL they stay on the device.
    """
    if world() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def splice(mine: torch.Tensor) -> torch.Tensor:
    """The whole batch [B, ...] from each rank's equal share [B / world, ...], in rank order, with this rank's
    own share as given (it carries the gradient) and the others' detached.

    Every rank then computes the loss of the whole batch, as one process would; its gradient reaches
    the model through this rank's share alone, so the sum of the ranks' gradients is the one-process
    gradient (`all_reduce_sum_`).
    """
    if world() == 1:
        return mine
    parts = [torch.empty_like(mine) for _ in range(world())]
    dist.all_gather(parts, mine.detach().contiguous())
    parts[rank()] = mine
    return torch.cat(parts)


def _tensors(obj) -> list[torch.Tensor]:
    """The tensors of a nested structure (dicts by sorted key, lists, tuples), in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


def fingerprint(obj) -> str:
    """SHA-256 of the bytes of every tensor in `obj` (a tensor or a nested structure of them): equal on two
    ranks only if every element is."""
    import hashlib

    h = hashlib.sha256()
    for t in _tensors(obj):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_identical(obj, what: str) -> None:
    """Raise when `obj` differs between ranks (what must be the same everywhere: the memories)."""
    if world() == 1:
        return
    prints = gather_objects(fingerprint(obj))
    if len(set(prints)) > 1:
        raise RuntimeError(f"{what} differ between ranks ({len(set(prints))} versions of {world()}): the ranks saw "
                           "different batches; rerun with the same config on every rank")


def all_reduce_sum_(tensors: Sequence[torch.Tensor]) -> None:
    """Sum each tensor over the ranks, in place (the gradients of a global batch split over ranks)."""
    if world() == 1:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def gather_objects(obj):
    """Every rank's picklable `obj`, in rank order, on every rank."""
    if world() == 1:
        return [obj]
    out = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def launch_shard() -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) of a torchrun launch, read from the environment, without joining a group: the
    shard of a grid whose runs are independent (`ddgd run`), or None outside a launch."""
    if not launched():
        return None
    return int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])


def parse_shard(text: str) -> tuple[int, int]:
    """"k/n" (--shard, e.g. from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT) -> (k, n), checked."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: write it as k/n, e.g. 0/4 for the first of four jobs") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {text}: need n >= 1 and 0 <= k < n (k counts from 0)")
    return k, n
