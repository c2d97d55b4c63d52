"""What each `ddgd` subcommand does, once `ddgd.cli` has parsed its arguments (one function per command).

Heavy imports (torch, diffusers) happen inside the functions, so `ddgd --help` stays quick.
"""
from __future__ import annotations

from pathlib import Path

from ddgd.config import ConfigError, RunConfig, resolve

METHOD_CHOICES = ("dit", "finetune", "minimax", "ddgd", "random", "full")


def _config(args) -> RunConfig:
    """The preset with its overrides; --root enters as `data.root`, so validation checks it before any work."""
    cfg = resolve(args.preset, [*args.override, *([f"data.root={args.root}"] if args.root else [])])
    if args.root and cfg.data.dataset == "digits":
        raise ConfigError("--root has no effect on sklearn's digits, which ship with scikit-learn: drop it")
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
    from ddgd.base import distributed
    from ddgd.experiments.pipeline import distill, load_data
    from ddgd.experiments.runs import with_seed

    distributed.init()  # under torchrun: one rank per process, the global batch split over them

    cfg = with_seed(_config(args), args.seed, args.method)
    out = distill(cfg, _out(args, cfg), load_data(cfg), progress=not args.quiet)
    print(f"fine-tuning run: {out}")


def cmd_sample(args) -> None:
    from ddgd.base import distributed
    from ddgd.experiments.pipeline import distill, load_data, run_dir, sample_pool
    from ddgd.experiments.runs import with_seed

    distributed.init()  # under torchrun: the pool's batches shared out over the ranks

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
        from ddgd.base import distributed

        data = load_data(cfg)
        images, labels = load_image_folder(args.folder, data.names)
        runs = [(seed, ipc, net) for seed in cfg.eval.seeds for ipc in cfg.eval.ipcs for net in cfg.eval.networks]
        shard = _shard(args)
        for seed, ipc, net in distributed.shard(runs, *shard) if shard else runs:
            x, y = ipc_subset(images, labels, ipc)
            row = evaluate_set(with_seed(cfg, seed), x, y, data, args.label, ipc, net, seed, csv, not args.quiet)
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


def cmd_export(args) -> None:
    from ddgd.experiments.export import export

    made = export(args.path, args.to, tuple(w for w in args.what.split(",") if w), args.ipc,
                  [Path(c) for c in args.csv] if args.csv else None)
    for what, folder in made.items():
        print(f"{what}: {folder}")


def _shard(args) -> tuple[int, int] | None:
    """--shard k/n, else the rank and world size of a torchrun launch, else None (all runs)."""
    from ddgd.base import distributed

    return distributed.parse_shard(args.shard) if args.shard else distributed.launch_shard()


def cmd_run(args) -> None:
    from ddgd.experiments.pipeline import run_experiment

    cfg = _config(args)
    methods = tuple(args.methods.split(","))
    bad = [m for m in methods if m not in METHOD_CHOICES]
    if bad:
        raise ConfigError(f"unknown method(s) {', '.join(bad)}: choose from {', '.join(METHOD_CHOICES)}")
    csv = Path(args.csv or Path("data/results") / f"{cfg.name}.csv")
    run_experiment(cfg, methods, _out(args, cfg), csv, progress=not args.quiet, shard=_shard(args))
    print(f"results in {csv}")


def cmd_diversity(args) -> None:
    from ddgd.experiments.diversity import DiversitySpec, run_diversity

    cfg = _config(args)
    methods = tuple(args.methods.split(","))
    csv = Path(args.csv or Path("data/results") / f"{cfg.name}.csv")
    spec = DiversitySpec(features=args.features)
    path = run_diversity(cfg, methods, _out(args, cfg), csv, spec, progress=not args.quiet)
    print(f"diversity rows in {path}")


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
