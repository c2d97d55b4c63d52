"""Batched class-conditional sampling with classifier-free guidance (book page: The method).

Ancestral DDPM on `steps` respaced timesteps with DiT's learned variance. We do not use diffusers'
`DiTPipeline`: it hard-codes the null class as 1000, which breaks guidance for models with other
class counts. Here the null class is the model's last label index, whatever the class count.

Guidance follows DiT's `forward_with_cfg`: eps = eps_u + w (eps_c - eps_u) on the first
`guided_channels` channels only (3 of 4 in the original code, a known quirk we keep by default);
the remaining eps channels and the variance come from the conditional pass.

Every image's noise comes from its own generator seeded by (seed, class, index), so the first k
images of a class are the same whatever the pool size (IPC k is a prefix of IPC k') and whatever
the batch size.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DiTTransformer2DModel
from PIL import Image
from tqdm import tqdm  # text bars: the same in a terminal, a notebook and the built book

from ddgd.base import distributed
from ddgd.base.files import atomic_dir, finish_partial, folder_name, partial_dir, start_partial
from ddgd.method.diffusion import Schedule, learned_log_variance, posterior_mean, predicted_x0
from ddgd.method.latents import decode, to_uint8


def image_seed(seed: int, label: int, index: int) -> int:
    """A 63-bit seed for image `index` of class `label`."""
    digest = hashlib.sha256(f"{seed}/{label}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def image_noise(seed: int, label: int, index: int, steps: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Initial noise and the noise of every step for one image: [steps + 1, *shape]."""
    g = torch.Generator().manual_seed(image_seed(seed, label, index))
    return torch.randn((steps + 1, *shape), generator=g)


def guided_output(model: DiTTransformer2DModel, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                  guidance: float, guided_channels: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(eps, v) for latents z [B, c, h, w] at original timesteps t [B] and model labels y [B]."""
    channels = z.shape[1]  # the DiT predicts eps and v stacked on the channel axis
    if guidance == 1.0:
        out = model(z, timestep=t, class_labels=y).sample.float()  # float32 even under bf16 autocast
        return out[:, :channels], out[:, channels:]
    null = torch.full_like(y, model.config.num_embeds_ada_norm)
    out = model(torch.cat([z, z]), timestep=torch.cat([t, t]), class_labels=torch.cat([y, null])).sample.float()
    cond, uncond = out.chunk(2)
    eps_c, eps_u = cond[:, :channels], uncond[:, :channels]
    k = channels if guided_channels is None else guided_channels  # DiT's sampler guides the first 3 only
    eps = torch.cat([eps_u[:, :k] + guidance * (eps_c[:, :k] - eps_u[:, :k]), eps_c[:, k:]], dim=1)
    return eps, cond[:, channels:]


@torch.no_grad()
def sample_latents(model: DiTTransformer2DModel, labels: list[int], indices: list[int], dit_labels: list[int],
                   seed: int, steps: int = 50, guidance: float = 4.0, guided_channels: int | None = 3,
                   schedule: Schedule | None = None) -> torch.Tensor:
    """One batch: latents [B, c, h, w] for (local label, index) pairs, conditioned on dit_labels."""
    cfg = model.config
    shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
    sched = (schedule or Schedule.linear()).respaced(steps)
    device = next(model.parameters()).device
    noise = torch.stack([image_noise(seed, c, i, steps, shape) for c, i in zip(labels, indices)], 1).to(device)
    y = torch.tensor(dit_labels, device=device)
    z = noise[0]  # [B, c, h, w]
    for i in reversed(range(steps)):
        t = torch.full((z.shape[0],), i, device=device, dtype=torch.long)
        eps, v = guided_output(model, z, sched.timesteps.to(device)[t], y, guidance, guided_channels)
        zhat = predicted_x0(z, eps, sched.alphas_cumprod, t)  # no clipping: latents are unbounded
        mean = posterior_mean(zhat, z, t, sched)
        log_var = learned_log_variance(v, t, sched)
        z = mean + (torch.exp(0.5 * log_var) * noise[steps - i] if i > 0 else 0.0)
    return z


def pool_batches(n_classes: int, pool: int, batch_size: int) -> list[list[tuple[int, int]]]:
    """The (local class, index) pairs of a pool, class-major, cut into sampling batches of `batch_size`.

    A batch is the unit of work that ranks share out (`ddgd.base.distributed.shard`): every image is
    computed in the batch it has in a one-process run, so a pool sampled by N processes is the same,
    bit for bit, as one sampled by one.
    """
    pairs = [(c, i) for c in range(n_classes) for i in range(pool)]
    return [pairs[start:start + batch_size] for start in range(0, len(pairs), batch_size)]


@torch.no_grad()
def generate_batches(model: DiTTransformer2DModel, vae: AutoencoderKL, dit_labels: list[int],
                     batches: list[list[tuple[int, int]]], seed: int, steps: int = 50, guidance: float = 4.0,
                     guided_channels: int | None = 3, progress: bool = True):
    """Yield (pairs, uint8 images [B, C, H, W]) for each batch of (local class, index) pairs."""
    for chunk in tqdm(batches, desc="sampling", disable=not progress):
        labels = [c for c, _ in chunk]
        z = sample_latents(model, labels, [i for _, i in chunk], [dit_labels[c] for c in labels], seed,
                           steps, guidance, guided_channels)
        yield chunk, to_uint8(decode(vae, z.to(next(vae.parameters()).device))).cpu()


def generate(model: DiTTransformer2DModel, vae: AutoencoderKL, dit_labels: list[int], pool: int, seed: int,
             steps: int = 50, guidance: float = 4.0, guided_channels: int | None = 3, batch_size: int = 50,
             progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """`pool` images for every class: uint8 images [K * pool, C, H, W] and local labels, class-major."""
    batches = pool_batches(len(dit_labels), pool, batch_size)
    images = [x for _, x in generate_batches(model, vae, dit_labels, batches, seed, steps, guidance, guided_channels,
                                             progress)]
    return torch.cat(images), torch.tensor([c for chunk in batches for c, _ in chunk])


def write_pngs(folder: Path, pairs: list[tuple[int, int]], images: torch.Tensor, class_names: list[str]) -> None:
    """PNG `<class>/<index:04d>.png` for each (local class, index) pair and its uint8 image [C, H, W]."""
    for (c, k), img in zip(pairs, images):
        (folder / folder_name(class_names[c])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).squeeze(-1).numpy()).save(folder / f"{folder_name(class_names[c])}/{k:04d}.png")


def write_manifest(folder: Path, meta: dict) -> dict:
    """manifest.json of the PNGs in `folder`: `meta`, per-class counts and every file's SHA-256."""
    files = sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.png"))
    hashes = {rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest() for rel in files}
    counts: dict[str, int] = {}
    for rel in files:
        counts[rel.split("/")[0]] = counts.get(rel.split("/")[0], 0) + 1
    manifest = {**meta, "counts": counts, "files": hashes}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def write_image_folder(images: torch.Tensor, labels: torch.Tensor, class_names: list[str], out_dir: str | Path,
                       meta: dict) -> Path:
    """An ImageFolder tree of PNGs plus manifest.json (meta, counts, file hashes), written atomically.

    The tree is written to a temporary sibling and renamed into place, so an interrupted export never
    leaves a folder that looks complete. Images are numbered per class in the order given.
    """
    out = Path(out_dir)
    seen: dict[int, int] = {}
    pairs = []
    for c in labels.tolist():
        pairs.append((c, seen.get(c, 0)))
        seen[c] = seen.get(c, 0) + 1
    with atomic_dir(out, "choose another output folder or delete it") as tmp:
        write_pngs(tmp, pairs, images, class_names)
        write_manifest(tmp, meta)
    return out


def write_pool(model: DiTTransformer2DModel, vae: AutoencoderKL, dit_labels: list[int], class_names: list[str],
               folder: str | Path, meta: dict, pool: int, seed: int, steps: int = 50, guidance: float = 4.0,
               guided_channels: int | None = 3, batch_size: int = 50, progress: bool = True) -> Path:
    """Sample a pool of `pool` images per class into an ImageFolder with its manifest; returns the folder.

    In one process, or shared out over the ranks of a torchrun launch: each rank samples every n-th
    batch of `pool_batches` and writes its PNGs into the one ``<folder>.partial`` (a file system all
    ranks see); rank 0 writes the manifest and renames the folder once every rank is done. The noise
    of an image derives from (seed, class, index) and its batch is the one it has in a one-process
    run, so the PNGs and the manifest are the same bit for bit, whatever the number of processes.
    """
    folder = Path(folder)
    if folder.exists():  # every rank sees the same file system: all refuse together, none waits alone
        raise FileExistsError(f"{folder} exists already: choose another output folder or delete it")
    batches = pool_batches(len(dit_labels), pool, batch_size)
    mine = [batches[i] for i in distributed.shard(range(len(batches)))]
    if distributed.is_main():
        start_partial(folder)  # a partial folder left by a killed run is cleared, as atomic_dir does
    distributed.barrier()
    tmp = partial_dir(folder)
    for pairs, images in generate_batches(model, vae, dit_labels, mine, seed, steps, guidance, guided_channels,
                                          progress and distributed.is_main()):
        write_pngs(tmp, pairs, images, class_names)
    distributed.barrier()  # every rank's images are on disk
    if distributed.is_main():
        write_manifest(tmp, meta)
        finish_partial(folder)
    distributed.barrier()  # the pool is in place for every rank
    return folder


class PoolError(ValueError):
    """A sample pool whose files do not match its manifest; the message names the files and the fix."""


def verify_image_folder(folder: str | Path) -> dict:
    """Check an exported pool against its manifest.json; returns the manifest, or raises `PoolError`.

    Every PNG listed must exist with the SHA-256 the manifest records, no other PNG may be there,
    and the per-class counts must add up: a deleted, swapped or edited image, or an edited hash,
    is caught before any training on the pool.
    """
    folder = Path(folder)
    path = folder / "manifest.json"
    fix = f"delete {folder} to sample it again (ddgd sample), or restore it from where it came"
    try:
        manifest = json.loads(path.read_text())
        files, counts = manifest["files"], manifest["counts"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PoolError(f"{path} is missing or not a pool manifest ({type(err).__name__}): {fix}") from None
    present = {str(p.relative_to(folder)) for p in folder.glob("*/*.png")}
    missing = sorted(set(files) - present)
    extra = sorted(present - set(files))
    changed = sorted(rel for rel in set(files) & present
                     if hashlib.sha256((folder / rel).read_bytes()).hexdigest() != files[rel])
    per_class: dict[str, int] = {}
    for rel in files:
        per_class[rel.split("/")[0]] = per_class.get(rel.split("/")[0], 0) + 1
    problems = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for label, names in (("missing", missing), ("not in the manifest", extra),
                                     ("changed since sampling", changed)) if names]
    if per_class != counts:
        problems.append(f"the manifest's counts {counts} do not match its file list {per_class}")
    if problems:
        raise PoolError(f"the sample pool {folder} does not match its manifest ({'; '.join(problems)}): {fix}")
    return manifest


def ipc_subset(images: torch.Tensor, labels: torch.Tensor, ipc: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `ipc` images of every class of a class-major pool (IPC k is a prefix of the pool)."""
    keep = torch.cat([torch.nonzero(labels == c).squeeze(1)[:ipc] for c in labels.unique(sorted=True)])
    counts = torch.bincount(labels[keep])
    if counts.min() < ipc:
        raise ValueError(f"IPC {ipc} asks for more images than the pool holds for some class ({int(counts.min())}): "
                         "sample a larger pool (sample.pool)")
    return images[keep], labels[keep]
