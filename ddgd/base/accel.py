"""GPU execution switches: bf16 autocast, TF32 matmuls, channels_last, torch.compile, determinism.

Each switch is a config field with a code path that also runs on the CPU (where the tests run it):

* ``model.precision`` / ``eval.precision`` = "bf16": autocast the DiT and the VAE (fine-tuning,
  sampling, encoding) / the evaluation networks to bfloat16. Pays on GPUs from the A100 on and on
  CPUs with AVX512-BF16 or AMX units (`bf16_units`); the master weights, the optimiser, the loss
  sums and the memories stay float32.
* ``model.tf32``: TF32 tensor-core matmuls and convolutions on Ampere and later GPUs (no effect on
  a CPU).
* ``model.compile``: `torch.compile` the DiT (``eval.compile`` does the same for the networks).
* ``eval.channels_last``: the evaluation networks and their batches in NHWC memory layout, which
  cuDNN's convolutions prefer under bf16.
* ``model.deterministic``: deterministic kernels (`torch.use_deterministic_algorithms`), for runs
  that must repeat bit for bit on one GPU, at some cost in speed.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str):
    """A bfloat16 autocast context for `precision == "bf16"` on `device`, else a no-op."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose 'fp32' or 'bf16'")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions (ignored on a CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def set_deterministic(enabled: bool) -> None:
    """Deterministic kernels everywhere (cuBLAS needs its workspace setting for that)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.benchmark = not enabled


def apply_model_switches(model_cfg) -> None:
    """Process-wide switches of the model section: TF32 and determinism."""
    set_tf32(bool(model_cfg.tf32))
    set_deterministic(bool(model_cfg.deterministic))


def maybe_compile(module: torch.nn.Module, enabled: bool):
    """`torch.compile(module)` when enabled (dynamic shapes: one graph for every batch size), else the module."""
    return torch.compile(module, dynamic=True) if enabled else module


def bf16_units() -> dict[str, bool]:
    """Which bfloat16 units this machine has: the GPU's (Ampere or later), the CPU's AVX512-BF16 and AMX."""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {"cuda_bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with `n` intra-op threads (None or 0: leave the count as it is), then restore it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
