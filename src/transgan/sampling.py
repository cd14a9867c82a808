"""Sampling from trained generators: latents (plain or truncated), image files, grids, latent
walks."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from transgan.errors import ConfigError
from transgan.progress import Progress

# Runs of characters a class name may hold that a file name should not.
_FILE_UNSAFE = re.compile(r"[^\w.+-]+")
# Grids show tiles of at least this many pixels, so 16 px samples are not thumbnails.
GRID_MIN_TILE = 64


def check_class_range(classes: Tensor, num_classes: int) -> None:
    """ConfigError naming the first class index outside ``[0, num_classes)``."""
    bad = classes[(classes < 0) | (classes >= num_classes)]
    if bad.numel():
        raise ConfigError(f"class {int(bad[0])} is out of range: the model has {num_classes} "
                          f"classes (0 to {num_classes - 1})")


def generator_class_names(generator: nn.Module | Any) -> list[str]:
    """The names of the classes of ``generator`` (or of its config) in label order: its
    ``class_names``, or its indices as text where it has none (empty when unconditional)."""
    names = getattr(generator, "class_names", None)
    return list(names) if names else [str(k) for k in range(getattr(generator, "num_classes", 0))]


def resolve_classes(classes: Sequence[str | int] | None,
                    names: Sequence[str]) -> list[int] | None:
    """Class indices of ``classes`` given by name or index (a name wins where a name is also
    an index, as with class folders named 0-9) for a generator whose classes are ``names``;
    ConfigError naming the classes it has for one it does not."""
    if classes is None:
        return None
    if not names:
        raise ConfigError("this generator is unconditional; it takes no class")
    index = {name: k for k, name in enumerate(names)}
    resolved = []
    for cls in classes:
        text = str(cls).strip()
        if text in index:
            resolved.append(index[text])
        elif text.isdigit() and int(text) < len(names):
            resolved.append(int(text))
        else:
            known = ", ".join(names) if len(names) <= 20 else f"0 to {len(names) - 1}"
            raise ConfigError(f"class {text!r} is not one of the model's {len(names)} classes "
                              f"({known})")
    return resolved


def latents(
    num: int, latent_dim: int, seed: int, device: str | torch.device = "cpu",
    truncation: float | None = None,
) -> Tensor:
    """Latents that depend only on (seed, num, latent_dim, truncation), drawn on the CPU:
    standard normal, or with ``truncation`` PSI the same draws mapped by :func:`truncate`."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(num, latent_dim, generator=gen)
    return (z if truncation is None else truncate(z, truncation)).to(device)


def seed_latents(
    seeds: Sequence[int], latent_dim: int, device: str | torch.device = "cpu",
    truncation: float | None = None,
) -> Tensor:
    """One latent per seed, each that of ``latents(1, ..., seed)``: an image depends on its
    seed alone, whatever other seeds are asked for with it."""
    if not seeds:
        raise ConfigError("no seed given")
    rows = [latents(1, latent_dim, seed, truncation=truncation) for seed in seeds]
    return torch.cat(rows).to(device)


def seed_classes(
    seeds: Sequence[int], latent_dim: int, num_classes: int,
    classes: Sequence[int] | None = None, device: str | torch.device = "cpu",
) -> Tensor | None:
    """One class per seed, drawn uniformly from ``classes`` (default all) by the seed's own
    generator right after its latent (:func:`seed_latents`): a seed's class, like its latent,
    depends on the seed alone. None for an unconditional generator asked for no class."""
    chosen = class_labels(len(classes) if classes else num_classes, num_classes, classes)
    if chosen is None:
        return None
    picks = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        torch.randn(1, latent_dim, generator=generator)  # the seed's latent comes first
        picks.append(chosen[int(torch.randint(chosen.numel(), (), generator=generator))])
    return torch.stack(picks).to(device)


def check_truncation(psi: float) -> None:
    """ConfigError unless ``psi`` is a finite number above 0."""
    if isinstance(psi, bool) or not isinstance(psi, int | float) or not 0 < psi < math.inf:
        raise ConfigError(f"the truncation PSI must be a number > 0, got {psi!r}")


def truncate(z: Tensor, psi: float) -> Tensor:
    """Standard normal ``z`` mapped, component by component, to a normal truncated at
    |z| <= ``psi`` (BigGAN's truncation trick; smaller psi, less variety).

    The map z -> G^-1(Phi(z)), with Phi the normal CDF and G the truncated normal's, keeps
    each draw's sign and rank and moves it inwards: the result has exactly the truncated
    distribution (as redrawing the components beyond psi gives), and a seed's truncated
    samples are tamer versions of its plain ones.
    Computed on the lower tail in float64, so large |z| and small psi keep their precision.
    """
    check_truncation(psi)
    z64 = z.double()
    outside = torch.special.ndtr(torch.tensor(-float(psi), dtype=torch.float64))
    tail = outside + torch.special.ndtr(-z64.abs()) * (1 - 2 * outside)  # in [outside, 0.5]
    return (-torch.special.ndtri(tail) * z64.sign()).clamp(-psi, psi).to(z.dtype)


def class_labels(
    num: int, num_classes: int, classes: Sequence[int] | None = None, repeat: int = 1,
    device: str | torch.device = "cpu",
) -> Tensor | None:
    """Class indices for ``num`` samples of a generator with ``num_classes`` classes.

    Cycles through ``classes`` (default: all), each repeated ``repeat`` times, so a grid with
    ``repeat`` columns has class ``classes[r]`` in row r. None for an unconditional generator
    (``num_classes`` 0) asked for no class; ConfigError for a class it does not have.
    """
    if not num_classes:
        if classes:
            raise ConfigError("this generator is unconditional; it takes no class")
        return None
    chosen = torch.arange(num_classes) if classes is None else torch.tensor(list(classes))
    if not chosen.numel():
        raise ConfigError("no class given")
    check_class_range(chosen, num_classes)
    cycle = chosen.long().repeat_interleave(max(1, repeat))
    return cycle.repeat(-(-num // cycle.numel()))[:num].to(device)


def class_grid(num: int, num_classes: int,
               classes: Sequence[int] | None = None) -> tuple[int, int | None]:
    """Images and columns of a sample grid: for a class-conditional generator one row per
    class (of ``classes``, default all), ``num`` rounded up to whole rows so that every class
    has its row; ``num`` and None (a square grid) otherwise."""
    if not num_classes:
        return num, None
    rows = len(classes) if classes else num_classes
    columns = max(1, -(-num // rows))
    return rows * columns, columns


@torch.no_grad()
def generate(
    generator: nn.Module, z: Tensor, batch: int = 64, labels: Tensor | None = None,
    progress: bool = False,
) -> Tensor:
    """Images in [-1, 1] for latents ``z`` (and the class ``labels`` of a class-conditional
    generator), computed ``batch`` at a time, with progress on stderr if asked."""
    if labels is not None and labels.shape != z.shape[:1]:
        raise ConfigError(f"{tuple(labels.shape)} labels for {z.shape[0]} latents")
    chunks = labels.split(batch) if labels is not None else [None] * -(-len(z) // batch)
    images = []
    with Progress(len(z), "sampling", "img", enabled=progress) as shown:
        for chunk, y in zip(z.split(batch), chunks, strict=True):
            images.append(generator(chunk) if y is None else generator(chunk, y))
            shown.update(len(chunk))
    return torch.cat(images)


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8 by rounding (the evaluation protocol's quantisation)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def _to_pil(image_uint8: Tensor) -> Image.Image:
    array = image_uint8.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def enlarge_small(images: Tensor, min_side: int = GRID_MIN_TILE) -> Tensor:
    """Nearest-neighbour enlarge images smaller than ``min_side`` by an integer factor."""
    scale = max(1, min_side // images.shape[-1])
    if scale == 1:
        return images
    return images.repeat_interleave(scale, dim=-1).repeat_interleave(scale, dim=-2)


def grid_tensor(images: Tensor, nrow: int, padding: int = 2) -> Tensor:
    """uint8 (C, H, W) grid of ``images`` ([-1, 1]), small tiles enlarged, white padding.

    Tiled here rather than with torchvision, whose import alone costs the trainer ~160 MiB.
    """
    tiles = to_uint8(enlarge_small(images))
    n, c, h, w = tiles.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = torch.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), 255,
                      dtype=torch.uint8)
    for i, tile in enumerate(tiles):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[:, top : top + h, left : left + w] = tile
    return grid


def grid_image(images: Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """One PIL image tiling ``images`` ([-1, 1]) in rows of ``nrow`` (default: square)."""
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return _to_pil(grid_tensor(images, nrow, padding))


def save_grid(images: Tensor, path: Path, nrow: int | None = None) -> Path:
    """Write a PNG grid of ``images`` ([-1, 1])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, nrow).save(path)
    return path


def seed_file_name(seed: int, label: str | None = None) -> str:
    """The file name of the sample of ``seed``: ``seed0040.png``, or with its class name
    ``seed0040-7.png`` / ``seed0040-square.png`` (characters a file name should not hold
    become ``_``)."""
    if label is None:
        return f"seed{seed:04d}.png"
    return f"seed{seed:04d}-{_FILE_UNSAFE.sub('_', label)}.png"


def save_images(
    images: Tensor, folder: Path, start: int = 0, names: Sequence[str] | None = None
) -> list[Path]:
    """Write each image as ``names[i]``, else ``000000.png``, ``000001.png``, ... (lossless
    PNG)."""
    if names is not None and len(names) != len(images):
        raise ConfigError(f"{len(names)} file names for {len(images)} images")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset, image in enumerate(to_uint8(images)):
        path = folder / (names[offset] if names is not None else f"{start + offset:06d}.png")
        _to_pil(image).save(path)
        paths.append(path)
    return paths


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latent batches ``a`` and ``b`` at fractions ``t``."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def walk_latents(
    starts: Tensor, ends: Tensor, steps: int, truncation: float | None = None
) -> Tensor:
    """(rows * steps, latent) latents: row r walks (slerp) from ``starts[r]`` to ``ends[r]``.

    With a ``truncation`` PSI the walk is clipped to |z| <= PSI, where its ends already lie.
    """
    rows, latent_dim = starts.shape
    t = torch.linspace(0, 1, steps, device=starts.device).view(1, steps, 1)
    walk = slerp(starts[:, None, :], ends[:, None, :], t).reshape(rows * steps, latent_dim)
    return walk if truncation is None else walk.clamp(-truncation, truncation)


def interpolation_latents(
    rows: int, steps: int, latent_dim: int, seed: int, truncation: float | None = None
) -> Tensor:
    """(rows * steps, latent) latents: each row walks from one random latent to another."""
    ends = latents(2 * rows, latent_dim, seed, truncation=truncation)
    return walk_latents(ends[:rows], ends[rows:], steps, truncation)


def seed_walk_latents(
    seeds: Sequence[int], steps: int, latent_dim: int, truncation: float | None = None
) -> Tensor:
    """((len(seeds) - 1) * steps, latent) latents: row r walks from seed r's latent to seed
    r + 1's, so the rows chain through the seeds in order."""
    if len(seeds) < 2:
        raise ConfigError("a walk between seeds needs at least 2 seeds")
    ends = seed_latents(seeds, latent_dim, truncation=truncation)
    return walk_latents(ends[:-1], ends[1:], steps, truncation)


def save_gif(frames: list[Tensor], path: Path, duration_ms: int = 80) -> Path:
    """Animated GIF (forth and back) from uint8 (C, H, W) frames such as :func:`grid_tensor`'s."""
    images = [_to_pil(f).convert("RGB") for f in frames]
    images = images + images[-2:0:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path
