"""What every page shares: saving a figure, a grid of images, a CSV beside it, and the values it glues.

Each is written atomically (`ddgd.base.files`), so a page interrupted mid-build leaves no figure or
table that looks complete.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import torch
from matplotlib.figure import Figure

from ddgd.base.files import atomic_write
from ddgd.base.provenance import provenance, provenance_line
from ddgd.config import RunConfig, config_hash
from ddgd.method.latents import to_uint8


def save_figure(fig: Figure, directory: str | Path, stem: str,
                formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 200) -> list[Path]:
    """Write the figure as `stem.png`, `stem.pdf` in `directory`, each atomically; return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)  # format given: the temporary suffix says nothing
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------- figures, files, clocks
def image_grid(rows: Sequence[torch.Tensor], labels: Sequence[str] | None = None, title: str | None = None,
               size: float = 0.9):
    """A figure of image rows: rows[k] is uint8 [n, C, H, W] or float in [-1, 1]; row labels on the left."""
    from matplotlib.figure import Figure  # no pyplot: the figure is glued, not shown twice

    cols = max(1, max(len(r) for r in rows))
    width = size * cols + (0.09 * max(map(len, labels)) + 0.2 if labels else 0.1)  # room for the row labels
    fig = Figure(figsize=(width, size * len(rows) + (0.4 if title else 0.1)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, row in enumerate(rows):
        row = row if row.dtype == torch.uint8 else to_uint8(row)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([]), ax.set_frame_on(False)
            if c < len(row):
                img = row[c].permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
        if labels:
            axes[r][0].set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def write_csv(frame: pd.DataFrame, path: str | Path, cfg: RunConfig | None = None) -> Path:
    """Write a page's table atomically; with `cfg`, the preset, config hash and provenance on every row."""
    if cfg is not None:
        frame = frame.assign(preset=cfg.name, config_hash=config_hash(cfg), **provenance())
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def glue_values(prefix: str, values: Mapping[str, Any]) -> None:
    """Glue every value as ``<prefix>-<key>`` for the page's text, without showing it in the notebook.

    The page's prose cites them as {glue:text}`<prefix>-<key>`; the cell that calls this is removed
    from the page (tag ``remove-cell``), so readers see the code that computes, not the bookkeeping.
    """
    from myst_nb import glue  # deferred: a book tool, absent where only the package is installed

    for key, value in values.items():
        glue(f"{prefix}-{key}", value, display=False)


def run_facts(runs: pd.DataFrame, preset: str, csv: str) -> dict[str, Any]:
    """What a results page states about its rows: preset, result file, runs, seeds, provenance."""
    return {"preset": preset, "csv": csv, "runs": len(runs), "seeds": runs["seed"].nunique() if len(runs) else 0,
            "provenance": provenance_line(runs)}


def pinned_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides of a page that pin a setting the CPU presets changed (`ddgd.config.presets.FIRST_CPU_SETTINGS`)."""
    from ddgd.config.presets import FIRST_CPU_SETTINGS

    return {k: overrides[k] for k in FIRST_CPU_SETTINGS if k in overrides}


def settings_note(overrides: Mapping[str, Any]) -> str:
    """The page's sentence on the settings it pins to read rows computed before the CPU presets changed.

    The CPU presets took the reference evaluation protocol and their own lambda_g after several result
    files were committed (`ddgd.config.presets.FIRST_CPU_SETTINGS`); a page that still reads such rows
    passes those settings as overrides, and says so with this sentence.
    """
    from ddgd.config import FinetuneConfig
    from ddgd.config.presets import CPU_LAMBDA_G

    pinned = pinned_settings(overrides)
    if not pinned:
        return "Its runs use the preset's own settings."
    words = {"eval.protocol": lambda v: f"the evaluation protocol `{v}`" + (" (this package's first one)" if
                                                                          v == "legacy" else ""),
             "finetune.lambda_g": lambda v: f"$\\lambda_g$ = {v:g}" + (" (the paper's)" if v == FinetuneConfig().lambda_g else "")}
    listed = ", ".join(words[k](v) for k, v in pinned.items())
    return (f"Its runs were computed before the CPU presets took the reference evaluation protocol and "
            f"$\\lambda_g$ = {CPU_LAMBDA_G:g}, and it reads them at the settings they ran with, passed as "
            f"overrides: {listed}. The Table 1 page measures what the two changes move; without these overrides "
            f"the page runs at the presets' current settings.")
