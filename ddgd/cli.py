"""The `ddgd` command: the one place that parses arguments.

    ddgd pretrain   train the embedded Fashion-MNIST latent diffusion model (VAE + DiT)
    ddgd distill    fine-tune one method with one seed (resumes an interrupted run)
    ddgd sample     generate the pool of images per class from a distilled model
    ddgd evaluate   train networks on distilled images, test on real data, append CSV rows
    ddgd run        all of the above for several methods and seeds (resumable)
    ddgd verify     check a sample pool against its manifest
    ddgd export     a distilled set and its model as Hugging Face folders with cards
    ddgd diversity  distribution metrics of distilled sets against the real data
    ddgd report     result CSV -> table of mean ± std
    ddgd reproduce  execute a book notebook (a table or figure) through papermill

Every command that computes takes ``--preset`` and ``-o section.field=value`` overrides, and writes
the resolved config beside what it produces. What each command does is `ddgd.commands`.
"""
from __future__ import annotations

import argparse
import sys

from ddgd.commands import (METHOD_CHOICES, cmd_distill, cmd_diversity, cmd_evaluate, cmd_export, cmd_pretrain,
                           cmd_reproduce, cmd_report, cmd_run, cmd_sample, cmd_verify)
from ddgd.config import PRESETS, ConfigError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="fashion-mnist-quick", choices=sorted(PRESETS),
                   help="named configuration (paper scale: imagewoof, imagenette, imageidc; other data on a GPU: "
                        "imagefolder, cifar10, cifar100; CPU: fashion-mnist, fashion-mnist-quick; tests: digits-tiny). "
                        "Default: %(default)s")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override one config field, e.g. -o finetune.lambda_r=0.004 -o eval.ipcs=1,10 (repeatable)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="data root: ImageNet folder with train/ and val/ wnid folders (ImageNet subsets: the fixed "
                        "ones, or -o data.dataset=imagenet with -o data.classes=WNID,... or -o data.class_draw=K), or "
                        "the folder of the Fashion-MNIST idx files (default: Debian's package, then the download cache)")
    p.add_argument("--out", default=None, metavar="DIR", help="experiment folder (default: runs/<preset>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddgd", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="pretrain the embedded Fashion-MNIST latent diffusion model")
    p.add_argument("--out", default="data/fashion-ldm", help="output folder (default: %(default)s)")
    p.add_argument("--vae-steps", type=int, default=1200, help="VAE training steps (default: %(default)s)")
    p.add_argument("--dit-steps", type=int, default=3500, help="DiT training steps (default: %(default)s)")
    p.add_argument("--eval-per-class", type=int, default=100, help="samples per class for the quality figures")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--size", default="fashion", choices=("fashion", "tiny"),
                   help="model sizes (ddgd.method.hub.SMALL_CONFIGS): the shipped model's, or seconds-long for tests")
    p.add_argument("--root", default=None, help="folder of the Fashion-MNIST idx files")
    p.add_argument("--download", action="store_true", help="allow torchvision to download Fashion-MNIST")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_pretrain)

    for name, fn, text in (("distill", cmd_distill, "fine-tune one method with one seed (resumable)"),
                           ("sample", cmd_sample, "generate the image pool of one method and seed")):
        p = sub.add_parser(name, help=text, description=text)
        _add_config_args(p)
        p.add_argument("--method", default="ddgd", choices=("dit", "finetune", "minimax", "ddgd"),
                       help="dit: pretrained model as is; finetune: diffusion loss only; minimax: FIFO memories; "
                            "ddgd: self-adaptive memories (default: %(default)s)")
        p.add_argument("--seed", type=int, default=0, help="seed of fine-tuning and sampling (default: %(default)s)")
        p.set_defaults(fn=fn)

    p = sub.add_parser("evaluate", help="train networks on distilled images and test them on real images")
    _add_config_args(p)
    p.add_argument("--method", default="ddgd", choices=METHOD_CHOICES, help="method whose pool to evaluate")
    p.add_argument("--seed", type=int, default=0, help="seed of the run to evaluate (default: %(default)s)")
    p.add_argument("--folder", default=None, help="evaluate this ImageFolder instead (all eval seeds)")
    p.add_argument("--label", default="folder", help="method name written in the CSV for --folder")
    p.add_argument("--csv", default=None, help="results CSV (default: <out>/results.csv)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="with --folder: only the K-th of N shares of its (seed, IPC, network) runs, K from 0; "
                        "under torchrun, each rank's share")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("verify", help="check a sample pool (or a run folder's pool) against its manifest",
                       description="Check every image of a sample pool against the SHA-256 and the counts of its "
                                   "manifest.json; exits non-zero, naming the files, when any differ.")
    p.add_argument("path", nargs="+", help="a sample pool folder, or a run folder holding samples/")
    p.set_defaults(fn=cmd_verify)

    p = sub.add_parser("export", help="write a distilled set (HF image folder) and its model (save_pretrained) with cards",
                       description="Export a finished run: <to>/dataset, a Hugging Face `datasets` image folder "
                                   "(metadata.jsonl, dataset card), and <to>/model, the fine-tuned DiT as a "
                                   "save_pretrained folder (DiffFit gammas folded in, model card). The pool is "
                                   "verified against its manifest first; the config is the one the pool records.")
    p.add_argument("path", help="a run folder (e.g. runs/<preset>/ddgd/seed0) or its samples/ pool")
    p.add_argument("--to", required=True, metavar="DIR", help="output folder; dataset/ and model/ must not exist yet")
    p.add_argument("--what", default="dataset,model", help="dataset, model or both (default: %(default)s)")
    p.add_argument("--ipc", type=int, default=None, help="export the first IPC images per class (default: the pool)")
    p.add_argument("--csv", action="append", default=None, metavar="CSV",
                   help="results CSV with the set's accuracy rows, for the cards (repeatable; default: "
                        "data/results/<preset>.csv and <experiment>/results.csv, where run and evaluate write)")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("run", help="distill, sample and evaluate several methods and seeds (resumable)")
    _add_config_args(p)
    p.add_argument("--methods", default="dit,finetune,minimax,ddgd,random,full",
                   help="comma-separated methods (default: %(default)s)")
    p.add_argument("--csv", default=None, help="results CSV (default: data/results/<preset>.csv)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run only the K-th of N shares of the (method, seed) runs, K from 0 (job arrays: "
                        "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); under torchrun, each rank's share")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("diversity", help="precision, recall, density, coverage, Vendi, FID/KID of distilled sets",
                       description="Measure the finished pools of a preset's methods and seeds against a fixed, "
                                   "seeded reference of real training images in one feature space; one row per "
                                   "method, IPC, seed and class (and 'all') into <csv stem>.diversity.csv.")
    _add_config_args(p)
    p.add_argument("--methods", default="dit,finetune,minimax,ddgd,random",
                   help="comma-separated methods whose sets to measure (default: %(default)s)")
    p.add_argument("--features", default="judge", choices=("judge", "inception"),
                   help="feature space: the Fashion-MNIST judge (CPU default), or Inception-v3 (ImageNet; weights "
                        "fetched on first use). Default: %(default)s")
    p.add_argument("--csv", default=None, help="the accuracy CSV the rows go beside (default: data/results/<preset>.csv)")
    p.set_defaults(fn=cmd_diversity)

    p = sub.add_parser("report", help="print a results CSV as a table of mean ± std")
    p.add_argument("csv", nargs="+", help="result CSV file(s)")
    p.add_argument("--metric", default="best", choices=("best", "final"), help="accuracy column (default: best)")
    p.add_argument("--references", action="append", default=[], metavar="DATASET",
                   help="also print the published numbers of DATASET (e.g. fashion-mnist, imagewoof), labelled "
                        "with their sources; may be repeated")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("reproduce", help="execute a book notebook (table or figure) through papermill")
    p.add_argument("artefact", help="e.g. table1, figure4, adaptive-update")
    p.add_argument("--preset", default="cpu", help="parameter set: cpu, smoke or paper (default: %(default)s)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override one notebook parameter (repeatable)")
    p.add_argument("--output-dir", default="runs/reproduce", help="where the executed notebook and results go")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help ends here, before torch and diffusers are imported
    from ddgd.experiments.reproduce import NotebookFailed
    from ddgd.method.checkpoints import RunDirError
    from ddgd.method.hub import HubError

    try:
        args.fn(args)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError, RunDirError, NotebookFailed, HubError) as err:
        print(f"ddgd {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
