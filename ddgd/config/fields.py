"""The configuration's vocabulary: one frozen dataclass per stage, the paper's values as defaults.

Each stage (model, data, fine-tuning, sampling, evaluation) has one frozen dataclass. A
`RunConfig` bundles them; `PRESETS` names complete configurations: the three ImageNet subsets at
paper scale (book page: The method), an image folder of one's own and CIFAR-10/100 at the same
scale, and the CPU presets on Fashion-MNIST and sklearn's digits.
`resolve(preset, overrides)` applies ``section.field=value`` overrides and validates the result,
so a bad value fails before any work starts. The resolved config is saved beside every artefact
(`save_config`) and hashed into every result row (`config_hash`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The repository root: shipped data (data/) and committed results (data/results/) live under it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# False for an installed wheel (PROJECT_ROOT is then site-packages): relative paths mean the working directory.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()


def project_path(path: str | Path) -> Path:
    """`path` as given when absolute or present from here, else relative to the repository root.

    Notebooks run in notebooks/, the CLI wherever it is called; both name files relative to the root.
    """
    p = Path(path)
    if p.is_absolute() or p.exists() or not IN_CHECKOUT:
        return p
    return PROJECT_ROOT / p


def shown_path(path: str | Path) -> str:
    """`path` relative to the repository root when it lies inside it: what pages and logs print."""
    p = Path(path).resolve()
    return str(p.relative_to(PROJECT_ROOT)) if p.is_relative_to(PROJECT_ROOT) else str(path)


METHODS = ("dit", "finetune", "minimax", "ddgd")
# The one word that separates Minimax from DDGD: the memory update rule (book page: The method).
METHOD_RULES = {"minimax": "fifo", "ddgd": "adaptive"}
ACCUMULATE = ("once", "cumulative")
PROTOCOLS = ("reference", "legacy")
# The training augmentation of the evaluation (`eval.augment`): IDC's transforms (ddgd.protocol.augment),
# DSA as IDC's --dsa applies it, DSA as DC, DM and MTT apply it (ddgd.protocol.dsa), or none.
AUGMENTS = ("idc", "dsa", "dsa-single", "none")
DIT_NUMERICS = ("original", "diffusers")
# The DiT's class embedding table (`model.class_table`, ddgd.method.class_table): its own, or a fresh one
# of K + 1 rows for classes it was not pretrained on (image folders, CIFAR).
CLASS_TABLES = ("pretrained", "fresh")


@dataclass(frozen=True)
class ModelConfig:
    """Where the pretrained latent diffusion model comes from (hub id, local folder or small config)."""

    dit: str = "facebook/DiT-XL-2-256"  # hub id or folder; a hub id reads the `transformer` subfolder
    vae_encode: str = "stabilityai/sd-vae-ft-ema"  # the encoder choice does not matter for training
    vae_decode: str = "stabilityai/sd-vae-ft-mse"
    num_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    # "original": correct diffusers' DiT to the numerics DiT-XL/2 was trained with (timestep
    # frequencies over half, LayerNorm eps 1e-6 before the MLP); "diffusers": keep diffusers' own,
    # for models trained in diffusers (the embedded Fashion-MNIST model). Book page: deviations.
    dit_numerics: str = "original"
    # "pretrained": condition on the DiT's own labels (ImageNet's, for the ImageNet subsets); "fresh": a new
    # table of K + 1 rows (the last the null class of guidance), trained during fine-tuning, labels 0..K-1
    class_table: str = "pretrained"
    # GPU execution switches (ddgd.base.accel): bf16 autocast of the DiT and the VAE, TF32, compiling the
    # DiT, deterministic kernels. The paper presets turn on TF32; bf16 stays one override away.
    precision: str = "fp32"
    tf32: bool = False
    compile: bool = False
    deterministic: bool = False


@dataclass(frozen=True)
class DataConfig:
    # imagewoof | imagenette | imageidc | imagenet | fashion-mnist | fashion-tops | fashion-other | digits
    # | imagefolder (data.root: train/ and val/ class folders) | cifar10 | cifar100
    dataset: str = "imagewoof"
    # dataset "imagenet" only: its classes as wnids, in the order of the local labels, or
    # class_draw classes of the 1000 drawn with class_seed (IDC's --nclass/--dseed; ddgd.protocol.imagenet)
    classes: tuple[str, ...] | None = None
    class_draw: int | None = None
    class_seed: int = 0
    root: str | None = None  # ImageNet root (train/, val/ wnid folders), an image folder, Fashion-MNIST or CIFAR files
    resolution: int = 256  # resolution the diffusion model sees (ADM centre crop for ImageNet, folders, CIFAR)
    download: bool = False  # Fashion-MNIST and CIFAR only: allow torchvision's download
    # fine-tune on the first N training images per class (file order for ImageNet: Minimax's
    # --finetune-ipc); None: all of them
    train_per_class: int | None = None
    workers: int = 8  # DataLoader worker processes that decode ImageNet JPEGs (0: in the main process)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning (book page: The method). `method` picks the baseline or the memory rule."""

    method: str = "ddgd"  # dit | finetune | minimax | ddgd
    memory_rule: str | None = None  # None: the method's rule (fifo for minimax, adaptive for ddgd)
    lambda_r: float = 0.002
    lambda_g: float = 0.008
    n_real: int = 64  # N_R
    n_gen: int = 64  # N_G
    accumulate: str = "once"  # "once" (paper) | "cumulative" (released code)
    use_vb: bool = True  # train DiT's variance head with improved DDPM's L_vb (released code)
    class_dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8
    epochs: int = 8
    max_steps: int = 12000  # the released code's checkpoint step
    ema_decay: float = 0.9999
    difffit: bool = True  # train the DiffFit selection; False trains every parameter
    bitfit: bool = False  # train the biases only (BitFit, Minimax's is_bitfit); takes precedence over difffit
    checkpoint_every: int = 1000
    # every k steps, the diversity of every class's memories into the run's memory log
    # (ddgd.method.memory_stats); 0: no log. What is logged, never what is computed: not hashed
    memory_log_every: int = 10
    seed: int = 0
    # None: one model fine-tuned on every class; K: one model per phase of K classes of the list, each
    # fine-tuned from the pretrained DiT on its phase's classes (Minimax's --nclass K --phase p for ImageNet-100)
    classes_per_phase: int | None = None

    @property
    def rule(self) -> str | None:
        """The memory update rule actually used, or None when no memory terms are trained."""
        if self.method in ("dit", "finetune"):
            return None
        return self.memory_rule or METHOD_RULES[self.method]


@dataclass(frozen=True)
class SampleConfig:
    pool: int = 100  # images generated per class; IPC k uses the first k (a prefix)
    steps: int = 50  # respaced ancestral DDPM steps
    guidance: float = 4.0  # classifier-free guidance scale; 1.0 disables guidance
    guided_channels: int | None = 3  # DiT quirk: guidance on the first 3 eps channels; None: all
    batch_size: int = 50
    seed: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """The hard-label protocol of IDC and Minimax (book page: Parity with the reference code)."""

    networks: tuple[str, ...] = ("convnet-6", "resnetap-10", "resnet-18")
    ipcs: tuple[int, ...] = (10, 20, 50)
    image_size: int = 224
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    epochs: int | None = None  # None: by IPC (book page: Parity with the reference code); an int overrides
    # the class count the epoch table is read for, as IDC's and Minimax's `ipc_epoch(nclass=...)` for ImageNet:
    # 100 trains 2/3 of the epochs (ddgd.protocol.schedule.epochs_for_ipc); None: the table as it is
    epoch_classes: int | None = None
    epoch_scale: float = 1.0  # CPU presets train for a fraction of the protocol's epochs
    min_epochs: int = 1
    evaluations: int = 100  # test-set evaluations, every E/100 epochs as in Minimax (best is over these)
    cutmix_beta: float = 1.0
    colour_jitter: float = 0.4
    lighting: float = 0.1
    crop_scale: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    compile: bool = False  # torch.compile the network (pays off on long CPU runs)
    precision: str = "fp32"  # "bf16": autocast the evaluation networks (ddgd.base.accel)
    channels_last: bool = False  # NHWC layout for the networks and their batches (GPU convolutions)
    test_limit: int | None = None  # evaluate on the first N test images only (smoke runs)
    full_epochs: int | None = None  # epochs of the `full` baseline; None: the protocol's 300 x epoch_scale
    # "reference": the networks, augmentation and normalisation of IDC's and Minimax's code (book page
    # "Parity with the reference code"); "legacy": this package's 0.1 protocol, which the committed CPU
    # results were computed with (kept so that they stay reproducible).
    protocol: str = "reference"
    test_resize: int | None = None  # test images: shorter side resized to this, then centre crop; None: image_size (Minimax), 256: IDC
    # training augmentation: "idc" (IDC's and Minimax's, in the protocol's style), "dsa" (DSA as IDC's
    # --dsa applies it), "dsa-single" (DSA as DC, DM and MTT apply it), "none"; book page "Parity"
    augment: str = "idc"


@dataclass(frozen=True)
class RunConfig:
    name: str = "imagewoof"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

