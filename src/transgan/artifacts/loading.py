"""Trained networks in and out of files: run directories, checkpoints, safetensors exports,
model folders (``config.json`` + ``model.safetensors``, also what ``transgan convert`` writes),
older convert folders (``generator.safetensors``) and the official checkpoints themselves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from transgan.artifacts.checkpoint import find_checkpoint, load_checkpoint
from transgan.artifacts.official import (
    DISCRIMINATOR_FILE,
    DISCRIMINATOR_FORMAT,
    GENERATOR_FILE,
    convert_checkpoint,
)
from transgan.errors import CheckpointError, ForeignCheckpointError, first_line
from transgan.models import (
    config_from_dict,
    config_to_dict,
    discriminator_from_config,
    generator_from_config,
)
from transgan.models.folder import (
    GENERATOR_FORMAT,
    WEIGHTS_FILE,
    is_model_folder,
    read_model_folder,
)


def _read_safetensors(path: Path, fmt: str, what: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata of a safetensors file written in format ``fmt``."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        weights = load_file(str(path))
    except Exception as exc:  # malformed headers fail in many ways
        raise CheckpointError(f"cannot read {path}: {first_line(exc)}") from None
    if metadata.get("format") != fmt:
        raise CheckpointError(f"{path} is not an exported transgan {what}")
    return weights, metadata


def _export_as_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint-like dict from an exported or converted generator file."""
    weights, metadata = _read_safetensors(path, GENERATOR_FORMAT, "generator")
    options = {"preset": metadata.get("preset"), "data": metadata.get("data")}
    return {"generator_config": json.loads(metadata["generator_config"]), "G_ema": weights,
            "G": weights, "options": options,
            "counters": {"images": int(metadata.get("images") or 0)}}


def _folder_as_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint-like dict from a model folder; ``info`` keeps the rest of its config."""
    config, weights = read_model_folder(path)
    info = {k: v for k, v in config.items() if k not in ("format", "library", "generator")}
    options = {"preset": info.get("preset"), "data": info.get("data"),
               **(info.get("training") or {})}
    return {"generator_config": config["generator"], "G_ema": weights, "G": weights,
            "options": options, "counters": {"images": int(info.get("images_trained") or 0)},
            "info": info}


def _official_as_checkpoint(path: Path, ema: bool) -> dict[str, Any]:
    """A checkpoint-like dict from a checkpoint of the official code, converted in memory."""
    converted = convert_checkpoint(path, "ema" if ema else "raw")
    weights = converted.generator.state
    ckpt: dict[str, Any] = {
        "generator_config": config_to_dict(converted.generator.config), "G_ema": weights,
        "G": weights, "options": {"preset": None, "data": None}, "counters": {"images": 0},
    }
    if converted.discriminator is not None:
        ckpt["discriminator_config"] = config_to_dict(converted.discriminator.config)
        ckpt["D"] = converted.discriminator.state
    return ckpt


def _is_network_folder(path: Path) -> bool:
    """A model folder or an older ``transgan convert`` folder, not a run directory."""
    return path.is_dir() and (is_model_folder(path) or (path / GENERATOR_FILE).is_file()) and not (
        path / "checkpoints"
    ).is_dir()


def source_file(path: str | Path) -> Path:
    """The file a generator at ``path`` (any form :func:`read_checkpoint` takes) comes from."""
    path = Path(path)
    if _is_network_folder(path):
        return path / WEIGHTS_FILE if is_model_folder(path) else path / GENERATOR_FILE
    return path if path.suffix == ".safetensors" else find_checkpoint(path)


def read_checkpoint(path: str | Path, ema: bool = True) -> dict[str, Any]:
    """A checkpoint dict (``generator_config``, ``G``/``G_ema``, maybe ``D``) from any form."""
    file = source_file(path)
    if file.name == WEIGHTS_FILE and is_model_folder(file.parent):
        return _folder_as_checkpoint(file.parent)
    if file.suffix == ".safetensors":
        return _export_as_checkpoint(file)
    try:
        return load_checkpoint(file, map_location="cpu")
    except ForeignCheckpointError:
        return _official_as_checkpoint(file, ema)


def _load(module: nn.Module, weights: dict[str, torch.Tensor], device: str | torch.device
          ) -> nn.Module:
    load_state(module, weights, "checkpoint")
    return module.to(device).eval().requires_grad_(False)


def open_generator(
    path: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """The (EMA) generator of ``path`` in eval mode, and the checkpoint it came from."""
    ckpt = read_checkpoint(path, ema)
    generator = generator_from_config(config_from_dict(ckpt["generator_config"]))
    return _load(generator, ckpt["G_ema" if ema else "G"], device), ckpt


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> nn.Module:
    """An eval-mode generator from a run directory, a checkpoint (ours or the official
    code's), an exported ``.safetensors`` file or a model (or ``transgan convert``) folder."""
    return open_generator(path, device, ema)[0]


@dataclass
class InitWeights:
    """Networks to start a new run from: configs (plain dicts) and state dicts."""

    generator_config: dict[str, Any]
    generator: dict[str, torch.Tensor]
    generator_ema: dict[str, torch.Tensor]
    discriminator_config: dict[str, Any] | None
    discriminator: dict[str, torch.Tensor] | None


def read_init_weights(path: str | Path) -> InitWeights:
    """G, its EMA and (where saved) D from any form :func:`read_checkpoint` takes; a
    ``transgan convert`` folder's or an export's one generator serves as both G and EMA."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    d_config, d_state = ckpt.get("discriminator_config"), ckpt.get("D")
    if _is_network_folder(path) and (path / DISCRIMINATOR_FILE).is_file():
        d_state, metadata = _read_safetensors(
            path / DISCRIMINATOR_FILE, DISCRIMINATOR_FORMAT, "discriminator"
        )
        d_config = json.loads(metadata["discriminator_config"])
    return InitWeights(ckpt["generator_config"], ckpt["G"], ckpt["G_ema"], d_config, d_state)


def load_state(module: nn.Module, weights: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict`` whose mismatch is a one-line :class:`CheckpointError`."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        first = first_line(exc)
        raise CheckpointError(f"{what} weights do not match its model config: {first}") from None


def load_discriminator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """An eval-mode discriminator from a run directory, a checkpoint (ours or the official
    code's), a discriminator ``.safetensors`` file or a ``transgan convert`` folder."""
    path = Path(path)
    if _is_network_folder(path) or path.suffix == ".safetensors":
        file = path / DISCRIMINATOR_FILE if path.is_dir() else path
        if not file.is_file():
            raise CheckpointError(f"no discriminator in {path} (expected {file.name})")
        weights, metadata = _read_safetensors(file, DISCRIMINATOR_FORMAT, "discriminator")
        config = json.loads(metadata["discriminator_config"])
    else:
        ckpt = read_checkpoint(path)
        if "D" not in ckpt:
            raise CheckpointError(f"{path} holds no discriminator")
        weights, config = ckpt["D"], ckpt["discriminator_config"]
    return _load(discriminator_from_config(config_from_dict(config)), weights, device)
