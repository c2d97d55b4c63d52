"""ddgd: diversity-driven generative dataset distillation with self-adaptive memory (ICIP 2025).

The package is built as rooms, each a subpackage that imports only from the rooms below it
(ddgd/README.md draws them; tests/test_layout.py checks the direction of every import):

    base/         what every room shares
      files         atomic_write / atomic_dir: artefacts are complete or absent; folder names
      accel         bf16 autocast, TF32, torch.compile, determinism; torch_threads
      provenance    versions, commit and hardware of a result
      distributed   torch.distributed as torchrun launches it: ranks, shards, gathers
    config/       the frozen configuration; the paper's values are the defaults
      fields        one dataclass per stage (model, data, finetune, sample, eval)
      presets       PRESETS: the paper's ImageNet subsets and the CPU presets
      resolve       section.field=value overrides, validated before any work
      hashing       the config hash of a result row; save_config beside every artefact
    method/       DDGD itself (book page: The method)
      diffusion     the Gaussian diffusion process, DiT's respacing, the predicted x0 (eq-forward, eq-x0)
      losses        diffusion loss, VB term, the two memory terms (eq-diffusion, eq-similarity, eq-real, eq-gen, eq-total)
      memory        per-class memories and their update rules, FIFO and self-adaptive (eq-adaptive)
      slots         the memories of every class in fixed slots: items, their lengths, similarity matrix (eq-adaptive)
      memory_terms  the memory terms and the memories' update of a step, in one pass over each memory
      memory_stats  the memories' diversity during fine-tuning: mean pairwise cosine, Vendi score (memory log)
      gradient_balance  how hard the memory terms pull against the diffusion loss (eq-grad-ratio)
      hub           where a model comes from: small configs, local folders, the Hugging Face Hub
      models        the diffusers DiT and VAE, the original DiT's numerics, DiffFit / BitFit, EMA
      class_table   a fresh class embedding table for classes the DiT was not pretrained on
      latents       VAE latents and the latent cache of the real images
      finetune      Algorithm 1: fine-tuning with the memory terms, on one process or several ranks
      checkpoints   the files of a fine-tuning run: checkpoints read safely, resume
      sample        classifier-free guided sampling; sample pools as ImageFolders with a manifest
    protocol/     the hard-label evaluation protocol of IDC and Minimax (book page: Parity)
      imagenet      the ImageNet subsets: fixed, listed or drawn classes, files, ADM crop and test transforms
      data          Fashion-MNIST, digits, image folders, class labels, the real-image baselines
      folders       any image dataset as train/ and val/ class folders (data.dataset=imagefolder)
      cifar         CIFAR-10 and CIFAR-100 through torchvision
      loaders       DataLoaders for datasets on disk at GPU speed
      networks      ConvNet, ResNetAP-10, ResNet-18 (IDC's definitions)
      augment       IDC's batched augmentation and CutMix
      dsa           Differentiable Siamese Augmentation (eval.augment=dsa)
      schedule      epochs by IPC and the test epochs
      evaluate      train a network on distilled images, test it on real ones
      diversity     precision, recall, density, coverage, Vendi, FID and KID of a set's features against real ones
    embedded/     the small latent diffusion model of the CPU default (book page: The embedded model)
      pretrain      trains it on Fashion-MNIST
      card          its model card and the comparison of two builds
      quality       the judge classifier, conditional accuracy and diversity of samples
      judge         the feature judge of the diversity metrics, shipped in data/judge/ (python -m ddgd.embedded.judge)
    experiments/  experiments and their results
      runs          the methods, and the config one run is hashed with
      pipeline      distill -> sample -> evaluate for every method and seed
      phases        fine-tuning in class phases: one model per phase of classes, one pool
      results       the results CSV: strict reading, atomic appends, per-run locks
      report        tables of mean +- std from the result files
      comparisons   the sentences that compare methods cell by cell
      statistics    paired-by-seed differences, their bootstrap intervals, verdicts and the seeds they need
      references    the published numbers
      variants      the hyperparameter variants of Figure 4 and Tables 2-3
      costs         FLOPs and GPU hours of the paper scale
      reproduce     one artefact of the book through papermill
      diversity     the diversity rows of every method, IPC, class and seed (<results>.diversity.csv)
      export        a distilled set and its model as Hugging Face folders (ddgd export)
      hub_cards     their dataset and model cards
    pages/        one module per book page that needs more than the rooms above
      figures       save_figure, image_grid, write_csv for every page
      walkthrough   shared by the walk-throughs: their configs, real images, latents, timings
      memory_initialisation, minimax_losses, adaptive_update   the walk-through pages
      memory_diversity  the memories' diversity during fine-tuning, read from a run's memory log and drawn
      diversity_accuracy  the page "Is DDGD more diverse, and does it matter?": diversity against accuracy
      diversity_section   the diversity section of Tables 2 and 3: the measures of each configuration's sets
      figure1 (with toy_diffusion), figure2, figure3, figure4, benchmark   the pages of the paper's figures
      memory_weights  the Figure 4 page's gradient balance of the memory terms on real models
      colab         the notebooks' Colab copies
    commands      what each subcommand of `ddgd` does
    cli           the `ddgd` command: the one face of all the above (`__main__`: python -m ddgd)

The names below are the public API, imported on first use (``import ddgd`` stays fast).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "RunConfig": "ddgd.config", "PRESETS": "ddgd.config", "resolve": "ddgd.config", "config_hash": "ddgd.config",
    "ClassMemories": "ddgd.method.memory", "UPDATE_RULES": "ddgd.method.memory",
    "minimax_terms": "ddgd.method.losses", "total_loss": "ddgd.method.losses",
    "Schedule": "ddgd.method.diffusion", "predicted_x0": "ddgd.method.diffusion",
    "load_transformer": "ddgd.method.models", "load_vae": "ddgd.method.models",
    "finetune": "ddgd.method.finetune", "training_step": "ddgd.method.finetune",
    "generate": "ddgd.method.sample", "verify_image_folder": "ddgd.method.sample",
    "train_and_test": "ddgd.protocol.evaluate", "build_network": "ddgd.protocol.networks",
    "run_experiment": "ddgd.experiments.pipeline", "load_results": "ddgd.experiments.report",
    "table": "ddgd.experiments.report",
}
_RENAMED = {"build_network": "build"}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'ddgd' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value
