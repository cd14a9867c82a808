"""Sampling from trained generators: checkpoint loading, image files, grids, latent walks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from transgan.models import config_from_dict, generator_from_config
from transgan.train.checkpoint import CheckpointError, find_checkpoint, load_checkpoint

# Grids show tiles of at least this many pixels, so 16 px samples are not thumbnails.
GRID_MIN_TILE = 64


EXPORT_FORMAT = "transgan-generator-v1"


def export_generator(path: str | Path, out: Path, ema: bool = True) -> Path:
    """Write a checkpoint's (EMA) generator as safetensors, its config in the metadata."""
    ckpt = load_checkpoint(find_checkpoint(path), map_location="cpu")
    weights = {k: v.contiguous() for k, v in ckpt["G_ema" if ema else "G"].items()}
    metadata = {
        "format": EXPORT_FORMAT,
        "generator_config": json.dumps(ckpt["generator_config"]),
        "images": str(ckpt.get("counters", {}).get("images", 0)),
        "preset": str(ckpt["options"].get("preset")),
        "data": str(ckpt["options"].get("data")),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out), metadata=metadata)
    return out


def _load_export(path: Path) -> dict:
    """A checkpoint-like dict from an exported safetensors file (no code can run from it)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        weights = load_file(str(path))
    except Exception as exc:  # malformed headers fail in many ways
        raise CheckpointError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not an exported transgan generator")
    config = json.loads(metadata["generator_config"])
    options = {"preset": metadata.get("preset"), "data": metadata.get("data")}
    return {"generator_config": config, "G_ema": weights, "G": weights, "options": options,
            "counters": {"images": int(metadata.get("images", 0))}}


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> tuple[nn.Module, dict]:
    """The (EMA) generator of a checkpoint, run directory or exported ``.safetensors`` file,
    in eval mode, and the checkpoint (or the export's metadata in checkpoint form)."""
    if Path(path).suffix == ".safetensors":
        ckpt = _load_export(Path(path))
    else:
        ckpt = load_checkpoint(find_checkpoint(path), map_location="cpu")
    generator = generator_from_config(config_from_dict(ckpt["generator_config"]))
    try:
        generator.load_state_dict(ckpt["G_ema" if ema else "G"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"checkpoint weights do not match its model config: {first}"
        ) from None
    return generator.to(device).eval().requires_grad_(False), ckpt


def latents(num: int, latent_dim: int, seed: int, device: str | torch.device = "cpu") -> Tensor:
    """Standard normal latents that depend only on (seed, num, latent_dim)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num, latent_dim, generator=gen).to(device)


@torch.no_grad()
def generate(generator: nn.Module, z: Tensor, batch: int = 64) -> Tensor:
    """Images in [-1, 1] for latents ``z``, computed ``batch`` at a time."""
    return torch.cat([generator(chunk) for chunk in z.split(batch)])


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


def save_images(images: Tensor, folder: Path, start: int = 0) -> list[Path]:
    """Write each image as ``000000.png``, ``000001.png``, ... (lossless PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset, image in enumerate(to_uint8(images)):
        path = folder / f"{start + offset:06d}.png"
        _to_pil(image).save(path)
        paths.append(path)
    return paths


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latent batches ``a`` and ``b`` at fractions ``t``."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolation_latents(rows: int, steps: int, latent_dim: int, seed: int) -> Tensor:
    """(rows * steps, latent) latents: each row walks from one random latent to another."""
    ends = latents(2 * rows, latent_dim, seed)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    walk = slerp(ends[:rows, None, :], ends[rows:, None, :], t)
    return walk.reshape(rows * steps, latent_dim)


def save_gif(frames: list[Tensor], path: Path, duration_ms: int = 80) -> Path:
    """Animated GIF (forth and back) from uint8 (C, H, W) frames such as :func:`grid_tensor`'s."""
    images = [_to_pil(f).convert("RGB") for f in frames]
    images = images + images[-2:0:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path
