"""Hub-style model folders: ``config.json``, ``model.safetensors``, a ``README.md`` model card
and ``samples.png`` -- the layout the Hugging Face ecosystem expects of a PyTorch model."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from transgan.errors import CheckpointError, first_line
from transgan.models.card import CARD_COLUMNS, card_grid_rows, render_card
from transgan.models.config_dicts import config_from_dict, config_to_dict
from transgan.models.parameters import count_parameters
from transgan.sampling import class_labels, generate, latents, save_grid

_Model = TypeVar("_Model")

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
GENERATOR_FORMAT = "transgan-generator-v1"
# A path as a shared file would hold it: an optional ``kind:`` prefix (folder:, zip:), then an
# absolute (POSIX or Windows) or home-relative location.
_LOCAL_PATH = re.compile(r"^(?P<kind>[a-z][a-z0-9-]+:)?(?P<path>(?:/(?!/)|~|[A-Za-z]:[\\/]).*)$")


def is_model_folder(path: Path) -> bool:
    """A folder holding ``config.json`` and ``model.safetensors``."""
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def without_local_paths(value: Any) -> Any:
    """``value`` (plain JSON data) with every absolute or home-relative path cut to its last
    part (``folder:/home/me/pets`` -> ``folder:pets``): a shared file names a file or folder,
    never where it lay on the machine that wrote it."""
    if isinstance(value, dict):
        return {key: without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_local_paths(item) for item in value]
    if isinstance(value, str) and (match := _LOCAL_PATH.match(value)):
        last = re.split(r"[\\/]", match["path"].rstrip("\\/"))[-1]
        return f"{match['kind'] or ''}{last}"
    return value


def save_weights(weights: Mapping[str, torch.Tensor], path: Path,
                 metadata: Mapping[str, str] | None = None) -> Path:
    """safetensors' ``save_file`` with the permissions of any other file written here (it
    creates its files 0600, unreadable to the others a shared model is meant for)."""
    save_file(dict(weights), str(path), metadata=dict(metadata) if metadata else None)
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)
    return path


def generator_metadata(
    config: Mapping[str, Any], images: int, preset: str | None, data: str | None
) -> dict[str, str]:
    """The safetensors metadata of a generator's weights: its config and where it came from."""
    return {"format": GENERATOR_FORMAT, "generator_config": json.dumps(config),
            "images": str(images or 0), "preset": str(preset or ""),
            "data": str(without_local_paths(data) or "")}


def write_model_folder(
    out: Path, generator: nn.Module, info: Mapping[str, Any] | None = None, samples: bool = True
) -> list[Path]:
    """Write ``generator`` (with its ``config``) and ``info`` (preset, data, metrics, ...) as a
    model folder, no local path in any file; ``samples`` adds a grid of samples to the card."""
    info = without_local_paths(dict(info or {}))
    config = {"format": GENERATOR_FORMAT, "library": "transgan",
              "generator": config_to_dict(generator.config), **info}
    weights = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    metadata = generator_metadata(config["generator"], info.get("images_trained") or 0,
                                  info.get("preset"), info.get("data"))
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / CONFIG_FILE, out / WEIGHTS_FILE, out / CARD_FILE]
    paths[0].write_text(json.dumps(config, indent=2) + "\n")
    save_weights(weights, paths[1], metadata)
    if samples:
        device = next(generator.parameters()).device
        num_classes = generator.config.num_classes
        rows = card_grid_rows(num_classes)
        z = latents(rows * CARD_COLUMNS, generator.latent_dim, seed=0, device=device)
        labels = class_labels(rows * CARD_COLUMNS, num_classes,
                              range(rows) if num_classes else None, CARD_COLUMNS, device)
        paths.append(save_grid(generate(generator.eval(), z, labels=labels), out / SAMPLES_FILE,
                               nrow=CARD_COLUMNS))
    params = count_parameters(generator, trainable_only=False)
    paths[2].write_text(render_card(config, params, samples))
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
        message = first_line(exc)
        raise CheckpointError(f"cannot read {path / WEIGHTS_FILE}: {message}") from None
    return config, weights


def load_model_folder(path: str | Path, device: str | torch.device, cls: type[_Model]) -> _Model:
    """The eval-mode generator of a local model folder, which must be a ``cls``."""
    path = Path(path)
    if not (path.is_dir() and is_model_folder(path)):
        raise CheckpointError(
            f"{path} is not a local model folder (config.json and model.safetensors); "
            "download a Hub model first, e.g. with huggingface_hub.snapshot_download"
        )
    config, weights = read_model_folder(path)
    cfg = config_from_dict(config["generator"])
    if not isinstance(cfg, cls.config_class):  # type: ignore[attr-defined]
        raise CheckpointError(f"{path} holds a {type(cfg).__name__} model, not a {cls.__name__}")
    model = cls(cfg)  # type: ignore[call-arg]
    try:
        model.load_state_dict(weights)  # type: ignore[attr-defined]
    except RuntimeError as exc:
        raise CheckpointError(f"{path / WEIGHTS_FILE} does not fit its config: "
                              f"{first_line(exc)}") from None
    return model.to(device).eval()  # type: ignore[attr-defined]
