"""A 2-D stand-in for the paper's Figure 1: the gradient field and the paths of distillation.

The paper's Figure 1 sketches the paths that sampling takes from noise to the distilled points on
a 2-D distribution, with and without its memory terms. Here it is a real experiment (the
book's Figure 1 page): a small noise-prediction MLP is (1) pretrained on a biased, low-diversity version of
the data, standing in for the ImageNet-pretrained DiT; (2) fine-tuned on the real data with the
losses of the book's page The method three ways, with the package's own loss and memory code: diffusion loss
only (``finetune``), plus the memory terms with FIFO memories (``minimax``) or with self-adaptive
ones (``ddgd``); (3) sampled with ancestral DDPM from fixed noise shared by all methods, keeping
the paths; (4) scored by coverage: modes hit, and the distance from real points to the nearest
distilled point.

The modes sit on a ring around the origin: the memory terms compare predictions by COSINE
similarity, which for 2-D points measures only their angle, so on a ring angular diversity is mode
diversity. Every function is deterministic given its seed.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ddgd.config import METHOD_RULES
from ddgd.experiments import statistics
from ddgd.experiments.comparisons import paired_phrase
from ddgd.method.diffusion import Schedule
from ddgd.method.memory import ClassMemories
from ddgd.pages.toy_diffusion import ToyDenoiser, sample_paths, score_field, train

TOY_METHODS = ("pretrained", "finetune", "minimax", "ddgd")


@dataclass(frozen=True)
class ToyParams:
    """Every knob of the experiment; the notebook's parameters cell holds the same names."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    methods: tuple[str, ...] = TOY_METHODS
    n_modes: int = 8
    radius: float = 2.0  # the ring of mode centres, around the origin (cosine = angle)
    mode_std: float = 0.15
    pretrain_weights: tuple[float, ...] = (0.6, 0.3, 0.1)  # mass of the first modes; the rest get none
    num_timesteps: int = 100
    hidden: int = 128
    n_train: int = 2000  # real training points
    pretrain_steps: int = 1500
    pretrain_batch_size: int = 128  # a well-trained (if biased) starting point
    finetune_steps: int = 600  # a short budget: plain fine-tuning leaves some of the pretraining bias
    batch_size: int = 8  # the paper's batch
    lr: float = 1e-3
    ema_decay: float = 0.99  # fine-tuning samples from the EMA, as the paper does; 0 disables
    lambda_r: float = 0.1  # the paper's 1:4 ratio of lambda_r to lambda_g, scaled up 50 times
    lambda_g: float = 0.4
    n_real: int = 4  # N_R: small, or the extreme cosines saturate at -1 and 1 in 2-D
    n_gen: int = 4  # N_G
    ipc: int = 16  # distilled points per run
    hit_radius: float = 0.5  # a mode is hit when a distilled point lies this close to its centre
    n_eval: int = 2000  # real points for the nearest-distilled-point distance
    field_t: int = 25  # timestep of the drawn gradient field (late in sampling: small t)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "ToyParams":
        """Parameters from a dict (e.g. the notebook's); unknown names and bad values are refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown figure-1 parameter(s) {', '.join(unknown)}: known are {', '.join(sorted(names))}")
        p = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        positive = ("n_modes", "hidden", "n_train", "batch_size", "pretrain_batch_size", "n_real", "n_gen", "ipc", "n_eval")
        checks = [
            (all(m in TOY_METHODS for m in p.methods), f"methods={p.methods}: unknown method; choose from {TOY_METHODS}"),
            (len(p.seeds) > 0, "seeds is empty: give at least one seed, e.g. seeds=[0]"),
            (0 < len(p.pretrain_weights) <= p.n_modes and min(p.pretrain_weights, default=-1) >= 0
             and sum(p.pretrain_weights) > 0, f"pretrain_weights={p.pretrain_weights}: give 1 to n_modes "
             f"non-negative weights, not all zero"),
            # Schedule.linear scales beta by 1000 / T, so beta_T reaches 1 at T = 20
            (p.num_timesteps >= 25, f"num_timesteps={p.num_timesteps} is too small for the linear schedule: use 25 or more"),
            (0 <= p.field_t < p.num_timesteps, f"field_t={p.field_t} must lie in [0, num_timesteps={p.num_timesteps})"),
            *((getattr(p, n) > 0, f"{n}={getattr(p, n)} must be a positive integer") for n in positive),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return p


# ----------------------------------------------------------------------------- data
def mode_centres(n_modes: int, radius: float) -> torch.Tensor:
    """[K, 2] centres evenly spaced on a circle of `radius` around the origin."""
    angle = torch.arange(n_modes, dtype=torch.float32) * (2 * math.pi / n_modes)
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)


def mode_weights(n_modes: int, first: tuple[float, ...] | None = None) -> torch.Tensor:
    """[K] mixture weights: uniform, or `first` (normalised) on the first modes and 0 on the rest."""
    if first is None:
        return torch.full((n_modes,), 1.0 / n_modes)
    w = torch.zeros(n_modes)
    w[: len(first)] = torch.tensor(first, dtype=torch.float32)
    return w / w.sum()


def mixture_sample(n: int, centres: torch.Tensor, std: float, weights: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """[n, 2] points of the Gaussian mixture."""
    k = torch.multinomial(weights, n, replacement=True, generator=g)  # [n]
    return centres[k] + std * torch.randn(n, 2, generator=g)


def mixture_density(xy: torch.Tensor, centres: torch.Tensor, std: float, weights: torch.Tensor) -> torch.Tensor:
    """[N] density of the isotropic Gaussian mixture at points xy [N, 2]."""
    d2 = torch.cdist(xy, centres).pow(2)  # [N, K]
    return (weights * torch.exp(-d2 / (2 * std**2))).sum(1) / (2 * math.pi * std**2)


def smooth_path(path: np.ndarray, window: int) -> np.ndarray:
    """Moving average over time of paths [T + 1, n, 2] for display; the two ends stay where they are."""
    if window <= 1:
        return path
    kernel = np.ones(window) / window
    pad = np.concatenate([np.repeat(path[:1], window // 2, 0), path, np.repeat(path[-1:], window - 1 - window // 2, 0)])
    out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, pad)
    out[0], out[-1] = path[0], path[-1]
    return out


def coverage(points: torch.Tensor, centres: torch.Tensor, real: torch.Tensor, hit_radius: float) -> dict[str, float]:
    """Coverage of distilled points [n, 2]: modes hit (some point within `hit_radius` of the centre)
    and the mean distance from each real point [M, 2] to its nearest distilled point (lower is better)."""
    hit = (torch.cdist(centres, points).min(1).values <= hit_radius).sum()
    nn_dist = torch.cdist(real, points).min(1).values.mean()
    return {"modes_hit": int(hit), "nn_distance": float(nn_dist)}


# ----------------------------------------------------------------------------- the experiment
def run_figure1(params: Mapping[str, Any] | ToyParams | None = None) -> dict[str, Any]:
    """Run every method on every seed; returns tidy results and the arrays the figure needs.

    Keys: ``results`` (DataFrame, one row per method and seed), ``paths`` (method -> [T+1, ipc, 2]
    of the first seed), ``field`` (method -> (X, Y, U, V) of the first seed), ``density``
    (X, Y, p of the real distribution), ``centres`` [K, 2], ``params`` (a dict).
    Within a seed every method starts from the same pretrained weights and sees the same batches,
    timesteps and noise, so methods differ only by their losses.
    """
    p = params if isinstance(params, ToyParams) else ToyParams.from_mapping(params or {})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP runs fastest on one thread; restored below
    try:
        return _run(p)
    finally:
        torch.set_num_threads(threads)


def _run(p: ToyParams) -> dict[str, Any]:
    schedule = Schedule.linear(p.num_timesteps)
    centres = mode_centres(p.n_modes, p.radius)
    lim = p.radius + 4 * p.mode_std + 0.5
    rows, paths, field = [], {}, {}
    for seed in p.seeds:
        g = torch.Generator().manual_seed(seed)
        biased = mixture_sample(p.n_train, centres, p.mode_std, mode_weights(p.n_modes, p.pretrain_weights), g)
        real = mixture_sample(p.n_train, centres, p.mode_std, mode_weights(p.n_modes), g)
        evaluation = mixture_sample(p.n_eval, centres, p.mode_std, mode_weights(p.n_modes), g)
        noise = torch.randn(p.num_timesteps + 1, p.ipc, 2, generator=g)  # shared by all methods
        with torch.random.fork_rng():  # the MLP's initialisation, leaving the global RNG as it was
            torch.manual_seed(seed)
            pretrained = ToyDenoiser(p.hidden)
        train(pretrained, biased, schedule, p.pretrain_steps, p.pretrain_batch_size, p.lr, g)
        finetune_seed = int(torch.randint(0, 2**62, (1,), generator=g))
        for method in p.methods:
            model, log = copy.deepcopy(pretrained), []
            if method != "pretrained":
                rule = METHOD_RULES.get(method)
                memories = ClassMemories(p.n_real, p.n_gen, rule) if rule else None
                log = train(model, real, schedule, p.finetune_steps, p.batch_size, p.lr,
                            torch.Generator().manual_seed(finetune_seed), memories, p.lambda_r, p.lambda_g, p.ema_decay)
            path = sample_paths(model, schedule, noise)
            # mean memory terms over fine-tuning: r near 2 and g near 1 mean saturated extremes
            terms = pd.DataFrame(log, columns=["l_real", "l_gen"]).mean()  # NaN without memory terms
            rows.append({"method": method, "seed": seed, **coverage(path[-1], centres, evaluation, p.hit_radius),
                         "l_real": float(terms["l_real"]), "l_gen": float(terms["l_gen"])})
            if seed == p.seeds[0]:
                paths[method] = path.numpy()
                field[method] = score_field(model, schedule, p.field_t, lim)
    axis = torch.linspace(-lim, lim, 200)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    dens = mixture_density(torch.stack([gx.flatten(), gy.flatten()], 1), centres, p.mode_std, mode_weights(p.n_modes))
    return {"results": pd.DataFrame(rows), "paths": paths, "field": field, "centres": centres.numpy(),
            "density": (gx.numpy(), gy.numpy(), dens.reshape(gx.shape).numpy()), "params": asdict(p)}


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each coverage measure and memory term, one row per method (in run order)."""
    order = list(dict.fromkeys(results["method"]))
    out = results.groupby("method")[["modes_hit", "nn_distance", "l_real", "l_gen"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.loc[order].reset_index()


def _paired(results: pd.DataFrame, a: str, b: str, column: str, lower_better: bool, decimals: int) -> tuple[str, str]:
    """(relation, phrase) of method a against b by one column, paired by seed (`ddgd.experiments.statistics`).

    Within a seed every method starts from the same pretrained model and sees the same batches and
    noise, so the runs of one seed are pairs. The difference is a - b; where lower is better the
    interval's verdict is read the other way round (a negative distance difference is "better").
    """
    x, y = results[results["method"] == a], results[results["method"] == b]
    p = statistics.paired_statistics(statistics.pair_by_seed(x["seed"], x[column], y["seed"], y[column]))
    flip = {statistics.BETTER: statistics.WORSE, statistics.WORSE: statistics.BETTER}
    said = flip.get(p.verdict, p.verdict) if lower_better else p.verdict
    words = {statistics.BETTER: "better than", statistics.WORSE: "worse than"}
    relation = words.get(said, "not measurably better or worse than")
    phrase = paired_phrase(p.n_pairs, p.n_unpaired, p.mean_diff, p.ci_low, p.ci_high, said, p.seeds_needed,
                           decimals=decimals, unit="")
    return relation, phrase


def verdict(results: pd.DataFrame) -> str:
    """The page's sentence on how DDGD fares against the other methods, from the per-seed `results`.

    Each comparison pairs the runs by seed and reads the tables' bootstrap interval
    (`ddgd.experiments.statistics`): "better than" / "worse than" when the interval excludes 0,
    "not measurably better or worse than" when it holds 0 or when there are fewer seeds than a verdict
    takes, so the sentence never claims more than the runs show. The intervals follow as bullets.
    """
    if not {"finetune", "minimax", "ddgd"} <= set(results["method"]):
        return "DDGD, Minimax and plain fine-tuning were not all run, so they are not compared."
    names = {"ddgd": "DDGD", "minimax": "Minimax", "finetune": "plain fine-tuning"}
    pairs = [("ddgd", "minimax", "nn_distance"), ("ddgd", "finetune", "nn_distance"), ("ddgd", "minimax", "modes_hit"),
             ("ddgd", "finetune", "modes_hit"), ("minimax", "finetune", "nn_distance")]
    measure = {"nn_distance": ("mean distance to the nearest distilled point", True, 3),
               "modes_hit": ("modes hit", False, 1)}
    said = {(a, b, col): _paired(results, a, b, col, *measure[col][1:]) for a, b, col in pairs}
    r = {k: v[0] for k, v in said.items()}
    text = (f"Paired by seed, DDGD covers the real distribution {r[pairs[0]]} Minimax and {r[pairs[1]]} plain "
            f"fine-tuning by the distance measure, and {r[pairs[2]]} Minimax and {r[pairs[3]]} plain fine-tuning "
            f"by the modes hit; Minimax is {r[pairs[4]]} plain fine-tuning by distance. The paired differences:")
    bullets = [f"- {names[a]} - {names[b]}, {measure[col][0]}: {said[(a, b, col)][1]}." for a, b, col in pairs]
    return "\n".join([text, "", *bullets])
