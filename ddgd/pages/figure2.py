"""Figure 2 of the paper, drawn by code: the DDGD fine-tuning step and the sampling branch.

The paper's Figure 2 shows the distillation process: real images are encoded, noised and passed
through the diffusion model (diffusion loss), the predicted latents are compared with a memory of
real latents (L_real) and a memory of generated latents (L_gen), and both memories take the
self-adaptive update (book page: The method). `draw_pipeline` redraws it with matplotlib patches and
arrows; every number on it (lambda_r, lambda_g, N_R, N_G, the memory rule, the sampler and the
evaluation settings) is read from a `ddgd.config.RunConfig`, so the picture always shows the
configuration it was drawn for.

One deviation from the caption is drawn on purpose: the caption says the memories are updated
"after each epoch"; the released code, and this package, update them after every step (book page:
The method), so the update box says "after every step".

Layout: coordinates are inches of a 12 x 5.5 inch figure (equal aspect), so box sizes are the
sizes on the page. The memory area is a diamond: zhat on top, L_real and L_gen at the sides, the
total loss below, the two memories and their update rule inside. The pipeline graph is not
planar (the edges z0 -> M_real, zhat -> M_gen and the update linking both memories cannot all
avoid the loss paths), so exactly one dashed "store" line crosses a solid arrow.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ddgd.config import PRESETS, RunConfig

FIGSIZE = (12.0, 5.5)  # inches: book width, as the paper's two-column figure
FONTSIZE = 10.0
# Fill colours by role: data, model, memory, loss, memory update, sampling branch.
COLOURS = {"data": "#dbe9f6", "model": "#fde2c4", "memory": "#d5efd5", "loss": "#f9d3d3",
           "update": "#e6dcf2", "sample": "#eeeeee"}
# Row centres (inches from the bottom).
Y_FORWARD, Y_XHAT, Y_MEMORY, Y_TOTAL, Y_SAMPLE = 4.85, 3.8, 2.75, 1.78, 0.52


@dataclass(frozen=True)
class Box:
    """A labelled rounded box: centre (cx, cy), width w and height h in inches."""

    cx: float
    cy: float
    w: float
    h: float
    text: str
    role: str

    def anchor(self, side: str, shift: float = 0.0) -> tuple[float, float]:
        """Midpoint of one side ("left", "right", "top", "bottom"), moved along it by `shift`."""
        x = {"left": self.cx - self.w / 2, "right": self.cx + self.w / 2}.get(side, self.cx + shift)
        y = {"top": self.cy + self.h / 2, "bottom": self.cy - self.h / 2}.get(side, self.cy + shift)
        return x, y


def _fmt(value: float) -> str:
    """A weight as typed in the config (0.002, not 2e-03) for the labels."""
    return f"{value:.6f}".rstrip("0").rstrip(".") if 1e-4 <= abs(value) < 1e4 else f"{value:g}"


def _networks(names: tuple[str, ...]) -> str:
    """Network names as printed in the papers (ResNetAP-10), three at most, then a count."""
    pretty = [n.replace("resnetap", "ResNetAP").replace("resnet", "ResNet").replace("convnet", "ConvNet")
              for n in names]
    return ", ".join(pretty) if len(pretty) <= 3 else ", ".join(pretty[:2]) + f" and {len(pretty) - 2} more"


def _update_text(rule: str | None, method: str) -> str:
    """The update-rule box: the rule's definition (book page: The method), per step as in the code."""
    if rule is None:
        return f"no memories (method: {method})\nonly $\\mathcal{{L}}_{{\\mathrm{{diffusion}}}}$ is trained"
    if rule == "fifo":
        return ("FIFO update (Minimax), every step\nwhile $|\\mathcal{M}|>N$:\n"
                "drop the oldest item")
    pick = "max" if rule == "adaptive" else "min"
    name = "self-adaptive update" if rule == "adaptive" else f"{rule} update"
    return (f"{name}, every step\n"
            "$S_{ij}=\\sigma(m_i,m_j)$,  $s_i=\\Sigma_j\\,S_{ij}$\n"
            f"while $|\\mathcal{{M}}|>N$: drop $\\mathrm{{arg\\,{pick}}}_i\\ s_i$")


def _boxes(cfg: RunConfig) -> dict[str, Box]:
    """Every box of the diagram, its label filled from the config."""
    ft, sm, ev = cfg.finetune, cfg.sample, cfg.eval
    vb = "\n$+\\ \\mathcal{L}_{\\mathrm{vb}}$ (variance head)" if ft.use_vb else ""
    trained = "DiffFit: biases, class emb., $\\gamma$" if ft.difffit else "all parameters trained"
    # long lists are shortened so that the labels keep to their boxes
    shown = ev.ipcs if len(ev.ipcs) <= 4 else (ev.ipcs[0], ev.ipcs[1], "...", ev.ipcs[-1])
    ipcs = " / ".join(str(i) for i in shown)
    guided = "all" if sm.guided_channels is None else f"first {sm.guided_channels}"
    if ft.rule is None:
        terms = f"   (memory terms off: method {ft.method})"
    elif ft.accumulate == "once":
        terms = "   (class terms averaged over the batch's classes)"
    else:  # the released code's running sums (book page: The method)
        terms = "   (class terms summed cumulatively, as the released code)"
    # box sizes were fitted at FONTSIZE; the tests check that every label stays inside its box
    b = {
        # forward path of one fine-tuning step (book page: The method)
        "x": Box(0.68, Y_FORWARD, 1.22, 0.78, f"real images $x$\nclass $c$, {cfg.data.resolution} px", "data"),
        "enc": Box(2.02, Y_FORWARD, 1.0, 0.78, "VAE\nencoder $E$", "model"),
        "z0": Box(3.28, Y_FORWARD, 1.16, 0.78, "latent\n$z_0=s\\,E(x)$", "data"),
        "noise": Box(5.27, Y_FORWARD, 2.45, 0.78,
                     "forward noising\n$z_t=\\sqrt{\\bar\\alpha_t}\\,z_0+\\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$", "data"),
        "dit": Box(7.78, Y_FORWARD, 2.2, 0.78, f"DiT  $\\epsilon_\\theta(z_t,t,c)$\n{trained}", "model"),
        "ldiff": Box(10.62, Y_FORWARD, 2.46, 0.78 if not vb else 0.86,
                     "$\\mathcal{L}_{\\mathrm{diffusion}}=\\Vert\\epsilon_\\theta-\\epsilon\\Vert^2$" + vb, "loss"),
        "xhat": Box(6.0, Y_XHAT, 3.1, 0.66,
                    "predicted clean latent\n$\\hat z_0=(z_t-\\sqrt{1-\\bar\\alpha_t}\\,\\epsilon_\\theta)/\\sqrt{\\bar\\alpha_t}$",
                    "data"),
        # the diamond: losses at the sides, memories and their update inside
        "lreal": Box(1.2, Y_MEMORY, 2.2, 0.8, "representativeness\n$\\mathcal{L}_{\\mathrm{real}}=1-\\min\\ \\sigma(\\hat z_0,m)$", "loss"),
        "mreal": Box(3.26, Y_MEMORY, 1.62, 0.8, f"real memory $\\mathcal{{M}}_R^c$\n$N_R={ft.n_real}$ latents $z_0$", "memory"),
        "update": Box(6.0, Y_MEMORY, 3.3, 0.9, _update_text(ft.rule, ft.method), "update"),
        "mgen": Box(8.74, Y_MEMORY, 1.72, 0.8, f"gen. memory $\\mathcal{{M}}_G^c$\n$N_G={ft.n_gen}$ latents $\\hat z_0$", "memory"),
        "lgen": Box(10.78, Y_MEMORY, 2.05, 0.8, "diversity\n$\\mathcal{L}_{\\mathrm{gen}}=\\max\\ \\sigma(\\hat z_0,m)$", "loss"),
        "total": Box(6.0, Y_TOTAL, 11.5, 0.5,
                     "$\\mathcal{L}=\\mathcal{L}_{\\mathrm{diffusion}}+\\lambda_r\\,\\mathcal{L}_{\\mathrm{real}}"
                     "+\\lambda_g\\,\\mathcal{L}_{\\mathrm{gen}}$,   "
                     f"$\\lambda_r={_fmt(ft.lambda_r)}$,  $\\lambda_g={_fmt(ft.lambda_g)}${terms}", "loss"),
        # sampling and evaluation, after fine-tuning (book page: The method)
        "ema": Box(1.55, Y_SAMPLE, 1.9, 0.72, f"EMA of DiT weights\ndecay {_fmt(ft.ema_decay)}", "sample"),
        "sampler": Box(3.95, Y_SAMPLE, 2.3, 0.72,
                       f"guided DDPM sampler\n{sm.steps} steps, scale {_fmt(sm.guidance)} ({guided} ch.)", "sample"),
        "images": Box(6.42, Y_SAMPLE, 2.05, 0.72, f"{sm.pool} images per class\nIPC = first {ipcs}", "sample"),
        "net": Box(9.05, Y_SAMPLE, 2.6, 0.72,
                   "network trained from scratch\n" + _networks(ev.networks), "sample"),
        "test": Box(11.2, Y_SAMPLE, 1.4, 0.72, "top-1 on real\ntest images", "sample"),
    }
    return b


def _draw_box(ax: Axes, box: Box) -> None:
    pad = 0.06  # rounding pad, kept inside the nominal size so neighbouring boxes keep their gap
    ax.add_patch(FancyBboxPatch((box.cx - box.w / 2 + pad, box.cy - box.h / 2 + pad), box.w - 2 * pad,
                                box.h - 2 * pad, boxstyle=f"round,pad={pad}", facecolor=COLOURS[box.role],
                                edgecolor="#444444", linewidth=1.0, zorder=2))
    ax.text(box.cx, box.cy, box.text, ha="center", va="center", fontsize=FONTSIZE, linespacing=1.35,
            zorder=4, gid="label")


def _arrow(ax: Axes, points: list[tuple[float, float]], dashed: bool = False, both: bool = False,
           label: str | None = None, label_at: tuple[float, float] | None = None) -> None:
    """A polyline arrow through `points` (straight segments: routes are planned in the layout)."""
    style = "<|-|>" if both else "-|>"
    colour = "#6a3d9a" if both else ("#555555" if dashed else "#222222")
    for i, (a, c) in enumerate(zip(points[:-1], points[1:])):
        head = style if i == len(points) - 2 else "-"
        if both and i == 0 and len(points) > 2:
            head = "<|-"
        ax.add_patch(FancyArrowPatch(a, c, arrowstyle=head, mutation_scale=12, shrinkA=0, shrinkB=0,
                                     linestyle="--" if dashed or both else "-", linewidth=1.2,
                                     color=colour, zorder=3))
    if label is not None and label_at is not None:
        ax.text(*label_at, label, ha="center", va="center", fontsize=FONTSIZE - 1, color=colour, zorder=4,
                gid="arrow-label", bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none"))


def _draw_arrows(ax: Axes, b: dict[str, Box]) -> None:
    """The edges of the pipeline; dashed lines write into a memory (no gradient, after the loss)."""
    for src, dst in (("x", "enc"), ("enc", "z0"), ("z0", "noise"), ("noise", "dit")):
        _arrow(ax, [b[src].anchor("right"), b[dst].anchor("left")])
    _arrow(ax, [b["dit"].anchor("right"), b["ldiff"].anchor("left")], label="$\\epsilon_\\theta$",
           label_at=((b["dit"].anchor("right")[0] + b["ldiff"].anchor("left")[0]) / 2, Y_FORWARD + 0.2))
    # DiT -> zhat: straight down where the two boxes overlap horizontally
    down_x = (b["dit"].cx - b["dit"].w / 2 + b["xhat"].cx + b["xhat"].w / 2) / 2
    _arrow(ax, [(down_x, b["dit"].anchor("bottom")[1]), (down_x, b["xhat"].anchor("top")[1])],
           label="$\\epsilon_\\theta$", label_at=(down_x + 0.24, (b["dit"].anchor("bottom")[1] + b["xhat"].anchor("top")[1]) / 2))
    # zhat -> L_real and L_gen: out of zhat's sides, along its row, down into the loss boxes
    _arrow(ax, [b["xhat"].anchor("left"), (b["lreal"].cx, Y_XHAT), b["lreal"].anchor("top")])
    _arrow(ax, [b["xhat"].anchor("right"), (b["lgen"].cx, Y_XHAT), b["lgen"].anchor("top")])
    # memories feed their loss terms
    _arrow(ax, [b["mreal"].anchor("left"), b["lreal"].anchor("right")])
    _arrow(ax, [b["mgen"].anchor("right"), b["lgen"].anchor("left")])
    # storage after the loss: z0 -> M_real (the one crossing), zhat -> M_gen
    _arrow(ax, [b["z0"].anchor("bottom"), (b["z0"].cx, b["mreal"].anchor("top")[1])], dashed=True,
           label="store", label_at=(b["z0"].cx + 0.32, (b["z0"].anchor("bottom")[1] + b["xhat"].anchor("top")[1]) / 2))
    store_y = (b["xhat"].anchor("bottom")[1] + b["mgen"].anchor("top")[1]) / 2
    store_x = b["xhat"].cx + b["xhat"].w / 2 - 0.35
    _arrow(ax, [(store_x, b["xhat"].anchor("bottom")[1]), (store_x, store_y), (b["mgen"].cx, store_y),
                b["mgen"].anchor("top")], dashed=True)
    ax.text((store_x + b["mgen"].cx) / 2, store_y, "store", ha="center", va="center", fontsize=FONTSIZE - 1,
            color="#555555", zorder=4, gid="arrow-label",
            bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none"))
    # the update rule acts on both memories
    _arrow(ax, [b["update"].anchor("left"), b["mreal"].anchor("right")], both=True)
    _arrow(ax, [b["update"].anchor("right"), b["mgen"].anchor("left")], both=True)
    # the three terms meet in the total loss
    for name in ("lreal", "lgen"):
        _arrow(ax, [b[name].anchor("bottom"), (b[name].cx, b["total"].anchor("top")[1])])
    right = b["ldiff"].cx + b["ldiff"].w / 2 - 0.12
    _arrow(ax, [(right, b["ldiff"].anchor("bottom")[1]), (right, b["total"].anchor("top")[1])])


def draw_pipeline(ax: Axes | None = None, config: RunConfig | None = None) -> Figure:
    """Draw the DDGD pipeline (the paper's Figure 2) and return its figure.

    ax: an axes to draw into (its figure should be about 12 x 5.5 inches); None makes a new figure.
    config: the run configuration whose values label the diagram; default the ImageWoof preset.
    """
    cfg = PRESETS["imagewoof"] if config is None else config
    if not isinstance(cfg, RunConfig):
        raise TypeError(f"config must be a ddgd.config.RunConfig, got {type(cfg).__name__}: "
                        "use ddgd.config.resolve(preset) to build one")
    if ax is None:
        fig, ax = plt.subplots(figsize=FIGSIZE)
        fig.subplots_adjust(0, 0, 1, 1)
    fig = ax.figure
    ax.set_xlim(0, FIGSIZE[0])
    ax.set_ylim(0, FIGSIZE[1])
    ax.set_aspect("equal")
    ax.axis("off")
    boxes = _boxes(cfg)
    for box in boxes.values():
        _draw_box(ax, box)
    _draw_arrows(ax, boxes)
    # the sampling branch runs once, after fine-tuning: a rule and a caption set it apart
    ax.plot([0.1, FIGSIZE[0] - 0.1], [1.25, 1.25], color="#999999", linewidth=0.8, linestyle=":", zorder=1)
    ax.text(0.12, 1.13, "after fine-tuning", ha="left", va="top", fontsize=FONTSIZE - 1, style="italic",
            color="#555555", gid="arrow-label")
    ax.text(0.12, FIGSIZE[1] - 0.05, f"one fine-tuning step, per class $c$ of the batch  "
            f"(preset {cfg.name}, method {cfg.finetune.method})", ha="left", va="top",
            fontsize=FONTSIZE - 1, style="italic", color="#555555", gid="arrow-label")
    for a, c in (("ema", "sampler"), ("sampler", "images"), ("images", "net"), ("net", "test")):
        _arrow(ax, [boxes[a].anchor("right"), boxes[c].anchor("left")])
    return fig
