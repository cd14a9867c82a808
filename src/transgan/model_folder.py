"""Hub-style model folders: ``config.json``, ``model.safetensors``, a ``README.md`` model card
and ``samples.png`` -- the layout the Hugging Face ecosystem expects of a PyTorch model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from transgan.errors import CheckpointError
from transgan.model_card import render_card
from transgan.models.build import config_to_dict, count_parameters
from transgan.sampling import class_labels, generate, latents, save_grid

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
GENERATOR_FORMAT = "transgan-generator-v1"
# The sample grid of a model card: this many images of latent seed 0, eight to a row (a
# class-conditional generator's cycle through its classes).
CARD_SAMPLES = 16
# Run options that say how a model was trained; paths and machine settings stay private.
TRAINING_FIELDS = (
    "images", "batch", "n_critic", "loss", "lr_g", "lr_d", "augment", "hflip", "mtct",
    "locality", "ema_half_life", "precision", "seed",
)


def is_model_folder(path: Path) -> bool:
    """A folder holding ``config.json`` and ``model.safetensors``."""
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def training_summary(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a run that describe its training recipe."""
    return {name: options[name] for name in TRAINING_FIELDS if name in options}


def generator_metadata(
    config: Mapping[str, Any], images: int, preset: str | None, data: str | None
) -> dict[str, str]:
    """The safetensors metadata of a generator's weights: its config and where it came from."""
    return {"format": GENERATOR_FORMAT, "generator_config": json.dumps(config),
            "images": str(images or 0), "preset": str(preset or ""), "data": str(data or "")}


def write_model_folder(
    out: Path, generator: nn.Module, info: Mapping[str, Any] | None = None, samples: bool = True
) -> list[Path]:
    """Write ``generator`` (with its ``config``) and ``info`` (preset, data, metrics, ...) as a
    model folder; ``samples`` adds a grid of :data:`CARD_SAMPLES` images to the card."""
    info = dict(info or {})
    config = {"format": GENERATOR_FORMAT, "library": "transgan",
              "generator": config_to_dict(generator.config), **info}
    weights = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    metadata = generator_metadata(config["generator"], info.get("images_trained") or 0,
                                  info.get("preset"), info.get("data"))
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / CONFIG_FILE, out / WEIGHTS_FILE, out / CARD_FILE]
    paths[0].write_text(json.dumps(config, indent=2) + "\n")
    save_file(weights, str(paths[1]), metadata=metadata)
    if samples:
        device = next(generator.parameters()).device
        z = latents(CARD_SAMPLES, generator.latent_dim, seed=0, device=device)
        labels = class_labels(CARD_SAMPLES, generator.config.num_classes, device=device)
        paths.append(save_grid(generate(generator.eval(), z, labels=labels), out / SAMPLES_FILE,
                               nrow=8))
    paths[2].write_text(render_card(config, count_parameters(generator), samples))
    return paths


def read_model_folder(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``config.json`` and the weights of a model folder; one-line errors when malformed."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path / CONFIG_FILE}: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != GENERATOR_FORMAT:
        raise CheckpointError(f"{path / CONFIG_FILE} does not describe a transgan generator")
    try:
        weights = load_file(str(path / WEIGHTS_FILE))
    except Exception as exc:  # malformed headers fail in many ways
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read {path / WEIGHTS_FILE}: {message}") from None
    return config, weights
