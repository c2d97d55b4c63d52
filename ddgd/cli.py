"""The `ddgd` command: the one place that parses arguments.

    ddgd pretrain   train the embedded Fashion-MNIST latent diffusion model (VAE + DiT)
    ddgd distill    fine-tune one method with one seed (resumes an interrupted run)
    ddgd sample     generate the pool of images per class from a distilled model
    ddgd evaluate   train networks on distilled images, test on real data, append CSV rows
    ddgd run        all of the above for several methods and seeds (resumable)
    ddgd report     result CSV -> table of mean ± std
    ddgd reproduce  execute a book notebook (a table or figure) through papermill

Every command takes ``--preset`` and ``-o section.field=value`` overrides, and writes the resolved
config beside what it produces.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ddgd.config import PRESETS, ConfigError, RunConfig, resolve

METHOD_CHOICES = ("dit", "finetune", "minimax", "ddgd", "random", "full")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="fashion-mnist-quick", choices=sorted(PRESETS),
                   help="named configuration (paper scale: imagewoof, imagenette, imageidc; CPU: fashion-mnist, "
                        "fashion-mnist-quick; tests: digits-tiny). Default: %(default)s")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override one config field, e.g. -o finetune.lambda_r=0.004 -o eval.ipcs=1,10 (repeatable)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="data root: ImageNet folder with train/ and val/ wnid folders (ImageNet subsets), or the "
                        "folder of the Fashion-MNIST idx files (default: Debian's package, then the download cache)")
    p.add_argument("--out", default=None, metavar="DIR", help="experiment folder (default: runs/<preset>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _config(args) -> RunConfig:
    cfg = resolve(args.preset, args.override)
    if args.root:
        if cfg.data.dataset == "digits":
            raise ConfigError("--root has no effect on sklearn's digits, which ship with scikit-learn: drop it")
        cfg = replace(cfg, data=replace(cfg.data, root=args.root))
    return cfg


def _out(args, cfg: RunConfig) -> Path:
    out = Path(args.out or Path("runs") / cfg.name)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: name a folder for the experiment (it is created if missing)")
    return out


def cmd_pretrain(args) -> None:
    from ddgd.embedded.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(vae_steps=args.vae_steps, dit_steps=args.dit_steps, seed=args.seed,
                         eval_per_class=args.eval_per_class, size=args.size)
    command = (f"ddgd pretrain --out {args.out} --vae-steps {args.vae_steps} --dit-steps {args.dit_steps} "
               f"--eval-per-class {args.eval_per_class} --seed {args.seed}"
               + (f" --size {args.size}" if args.size != PretrainConfig.size else ""))
    card = pretrain(args.out, cfg, data_root=args.root, download=args.download, progress=not args.quiet,
                    command=command)
    q = card["quality"]
    print(f"saved to {args.out}: conditional accuracy {q['conditional_accuracy']:.1f} %, "
          f"diversity ratio {q['diversity_ratio_mean']:.2f}, VAE PSNR {card['reconstruction']['psnr_db']:.1f} dB")


def cmd_distill(args) -> None:
    from ddgd.experiments.pipeline import distill, load_data
    from ddgd.experiments.runs import with_seed

    cfg = with_seed(_config(args), args.seed, args.method)
    out = distill(cfg, _out(args, cfg), load_data(cfg), progress=not args.quiet)
    print(f"fine-tuning run: {out}")


def cmd_sample(args) -> None:
    from ddgd.experiments.pipeline import distill, load_data, run_dir, sample_pool
    from ddgd.experiments.runs import with_seed

    cfg = with_seed(_config(args), args.seed, args.method)
    data = load_data(cfg)
    out = run_dir(_out(args, cfg), cfg)
    if cfg.finetune.method == "dit":
        out = distill(cfg, _out(args, cfg), data, progress=not args.quiet)
    images, _ = sample_pool(cfg, out, data, progress=not args.quiet)
    print(f"{len(images)} images in {out / 'samples'}")


def cmd_evaluate(args) -> None:
    from ddgd.experiments.pipeline import evaluate_set, load_data, run_experiment
    from ddgd.experiments.runs import with_seed
    from ddgd.method.sample import ipc_subset
    from ddgd.protocol.data import load_image_folder

    cfg = _config(args)
    csv = Path(args.csv or _out(args, cfg) / "results.csv")
    if args.folder:  # any ImageFolder of distilled images, e.g. another method's output
        if (Path(args.folder) / "manifest.json").is_file():
            from ddgd.method.sample import verify_image_folder

            verify_image_folder(args.folder)  # a pool this package wrote: refuse it when tampered with
        data = load_data(cfg)
        images, labels = load_image_folder(args.folder, data.names)
        for seed in cfg.eval.seeds:
            for ipc in cfg.eval.ipcs:
                x, y = ipc_subset(images, labels, ipc)
                for net in cfg.eval.networks:
                    row = evaluate_set(with_seed(cfg, seed), x, y, data, args.label, ipc, net, seed, csv,
                                       not args.quiet)
                    print(f"{net} IPC {ipc} seed {seed}: best {row['best']:.2f} final {row['final']:.2f}")
        return
    run_experiment(with_seed(cfg, args.seed), (args.method,), _out(args, cfg), csv, progress=not args.quiet)
    print(f"results appended to {csv}")


def cmd_verify(args) -> None:
    from ddgd.method.sample import verify_image_folder

    for path in args.path:
        folder = Path(path)
        pool = folder / "samples" if (folder / "samples" / "manifest.json").is_file() else folder
        manifest = verify_image_folder(pool)
        print(f"{pool}: {len(manifest['files'])} images in {len(manifest['counts'])} classes match their "
              f"manifest (sample hash {manifest.get('sample_hash', 'unknown')})")


def cmd_run(args) -> None:
    from ddgd.experiments.pipeline import run_experiment

    cfg = _config(args)
    methods = tuple(args.methods.split(","))
    bad = [m for m in methods if m not in METHOD_CHOICES]
    if bad:
        raise ConfigError(f"unknown method(s) {', '.join(bad)}: choose from {', '.join(METHOD_CHOICES)}")
    csv = Path(args.csv or Path("data/results") / f"{cfg.name}.csv")
    run_experiment(cfg, methods, _out(args, cfg), csv, progress=not args.quiet)
    print(f"results in {csv}")


def cmd_report(args) -> None:
    from ddgd.experiments.report import format_markdown, load_results, references_markdown, table

    df = load_results(args.csv)
    # rows of an ablation or a sweep carry their variant's label: one table row per variant, not per method
    variants = "variant" in df.columns and df["variant"].dropna().astype(str).str.len().gt(0).any()
    print(format_markdown(table(df, metric=args.metric, rows="variant" if variants else "method")))
    if args.references:
        print("\nPublished numbers, for orientation (not computed by this code):\n")
        print(references_markdown(args.references))


def cmd_reproduce(args) -> None:
    from ddgd.experiments.reproduce import parse_overrides, run

    path = run(args.artefact, preset=args.preset, overrides=parse_overrides(args.param),
               output_dir=args.output_dir, progress=not args.quiet)
    print(f"executed notebook: {path}")


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
                   help="model sizes (ddgd.method.models.SMALL_CONFIGS): the shipped model's, or seconds-long for tests")
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
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("verify", help="check a sample pool (or a run folder's pool) against its manifest",
                       description="Check every image of a sample pool against the SHA-256 and the counts of its "
                                   "manifest.json; exits non-zero, naming the files, when any differ.")
    p.add_argument("path", nargs="+", help="a sample pool folder, or a run folder holding samples/")
    p.set_defaults(fn=cmd_verify)
    p = sub.add_parser("run", help="distill, sample and evaluate several methods and seeds (resumable)")
    _add_config_args(p)
    p.add_argument("--methods", default="dit,finetune,minimax,ddgd,random,full",
                   help="comma-separated methods (default: %(default)s)")
    p.add_argument("--csv", default=None, help="results CSV (default: data/results/<preset>.csv)")
    p.set_defaults(fn=cmd_run)

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
    from ddgd.method.finetune import RunDirError

    try:
        args.fn(args)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError, RunDirError, NotebookFailed) as err:
        print(f"ddgd {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
