"""How long the evaluation networks train, and when they are tested (IDC and Minimax; book page: Parity).

Epochs follow the protocol's table by IPC (`epochs_for_ipc`), scaled on the CPU presets
(`num_epochs`); the test set is evaluated every E/100 epochs, as Minimax's `train.py` does
(`evaluation_epochs`), so the "best" accuracy is like-for-like with the published numbers.
"""
from __future__ import annotations

import math

from ddgd.config import EvalConfig


def epochs_for_ipc(ipc: int, nclass: int = 10) -> int:
    """Training epochs of the protocol for `ipc` images per class of `nclass` classes (IDC / Minimax).

    Exactly 100 classes train for 2/3 of the table, rounded down to hundreds (IDC `argument.py`
    L43-45 and Minimax `argument.py` L39-41, `ipc_epoch`: ``if nclass == 100``); 1000 classes keep the
    table, as both do.
    """
    if ipc <= 0:
        raise ValueError(f"ipc={ipc} must be a positive integer")
    epochs = next((e for limit, e in ((1, 3000), (10, 2000), (50, 1500), (200, 1000), (500, 500)) if ipc <= limit), 300)
    if nclass == 100:
        epochs = int(2 / 3 * epochs)
        epochs -= epochs % 100
    return epochs


def num_epochs(cfg: EvalConfig, ipc: int) -> int:
    """cfg.epochs if set, else the protocol's epochs for cfg.epoch_classes classes (None: the 10-class table)
    scaled by cfg.epoch_scale (at least cfg.min_epochs)."""
    if cfg.epochs is not None:
        return int(cfg.epochs)
    return max(int(cfg.min_epochs), round(epochs_for_ipc(ipc, cfg.epoch_classes or 10) * cfg.epoch_scale))


def evaluation_epochs(epochs: int, evaluations: int, style: str = "reference") -> list[int]:
    """Epochs (1-based) after which the test set is evaluated, the last one always included.

    Reference style (Minimax's `train.py`): every `epochs // evaluations` epochs, i.e. 100 tests at
    the protocol's epoch counts; legacy style: `evaluations` tests spaced as evenly as the count allows.
    """
    n = max(1, min(evaluations, epochs))
    if style == "reference":
        every = max(1, epochs // n)
        return sorted({e for e in range(every, epochs + 1, every)} | {epochs})
    return sorted({math.ceil(epochs * k / n) for k in range(1, n + 1)})
