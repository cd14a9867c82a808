"""Official TransGAN checkpoint files: read them safely, convert both networks, write the
generator as a model folder and the discriminator beside it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transgan.artifacts.checkpoint import safe_torch_load
from transgan.artifacts.official import WEIGHTS
from transgan.artifacts.official.mapping import Converted, convert_discriminator, convert_generator
from transgan.errors import ConversionError
from transgan.models import PRESETS, config_to_dict, generator_from_config
from transgan.models.folder import save_weights, write_model_folder

# Older convert folders held the generator as this file; they still load.
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
DISCRIMINATOR_FORMAT = "transgan-discriminator-v1"
# Top-level entries of an official training checkpoint that hold no model weights.
_NON_MODEL_ENTRIES = (
    "epoch", "best_fid", "gen_model", "dis_model", "gen_optimizer", "dis_optimizer",
    "path_helper", "fixed_z", "train_global_steps", "valid_global_steps",
)


def read_official(path: str | Path) -> dict[str, Any]:
    """Load an official checkpoint without running code from it (tensors and plain data)."""
    state = safe_torch_load(path, numpy_scalars=True)  # the official code saves a numpy FID
    if not isinstance(state, dict):
        raise ConversionError(f"{path} holds a {type(state).__name__}, not a checkpoint dict")
    return state


@dataclass
class OfficialCheckpoint:
    """An official checkpoint converted: generator, optional discriminator, what was left."""

    generator: Converted
    discriminator: Converted | None
    weights: str
    epoch: int | None
    ignored: list[str]


def convert_checkpoint(
    path: str | Path,
    weights: str = "ema",
    gen_overrides: Mapping[str, Any] | None = None,
    disc_overrides: Mapping[str, Any] | None = None,
) -> OfficialCheckpoint:
    """Convert an official checkpoint (or a bare official generator state dict)."""
    if weights not in WEIGHTS:
        raise ConversionError(f"unknown weights '{weights}'; choose from {', '.join(WEIGHTS)}")
    state = read_official(path)
    if "gen_state_dict" in state or "avg_gen_state_dict" in state:
        key = "avg_gen_state_dict" if weights == "ema" else "gen_state_dict"
        if key not in state:
            raise ConversionError(f"{path} has no '{key}' (choose the other --weights)")
        generator = convert_generator(state[key], gen_overrides)
        dis = state.get("dis_state_dict")
        discriminator = None if dis is None else convert_discriminator(dis, disc_overrides)
        known = {"gen_state_dict", "avg_gen_state_dict", "dis_state_dict", *_NON_MODEL_ENTRIES}
        unknown = sorted(set(state) - known)
        if unknown:
            raise ConversionError(f"cannot map checkpoint entry '{unknown[0]}'")
        ignored = sorted(k for k in state if k in _NON_MODEL_ENTRIES)
        epoch = state.get("epoch")
        return OfficialCheckpoint(generator, discriminator, weights,
                                  int(epoch) if isinstance(epoch, int | float) else None, ignored)
    if any(k.removeprefix("module.") == "l1.weight" for k in state):
        return OfficialCheckpoint(convert_generator(state, gen_overrides), None, "as saved",
                                  None, [])
    first = next(iter(state), "<empty>")
    raise ConversionError(f"{path} is not an official TransGAN checkpoint (first key '{first}')")


def _matching_preset(generator: Any, discriminator: Any | None) -> str:
    """Name of the preset with this generator (and discriminator, where given), or ''."""
    for name, preset in PRESETS.items():
        if preset.architecture.generator == generator and discriminator in (
                None, preset.architecture.discriminator):
            return name
    return next((n for n, p in PRESETS.items() if p.architecture.generator == generator), "")


def save_converted(converted: OfficialCheckpoint, out: Path, source: str) -> list[Path]:
    """Write the generator as a model folder in DIR (``config.json``, ``model.safetensors``,
    model card, samples) and DIR/discriminator.safetensors beside it."""
    d_config = None if converted.discriminator is None else converted.discriminator.config
    common = {"source": Path(source).name, "official_version": converted.generator.version,
              "official_epoch": "" if converted.epoch is None else str(converted.epoch),
              "preset": _matching_preset(converted.generator.config, d_config)}
    generator = generator_from_config(converted.generator.config)
    generator.load_state_dict(converted.generator.state)
    info = {**common, "preset": common["preset"] or None,
            "data": None, "images_trained": 0, "weights": converted.weights}
    paths = write_model_folder(out, generator.eval(), info)
    if converted.discriminator is not None:
        d = converted.discriminator
        d_meta = {"format": DISCRIMINATOR_FORMAT,
                  "discriminator_config": json.dumps(config_to_dict(d.config)), **common}
        paths.append(out / DISCRIMINATOR_FILE)
        save_weights({k: v.contiguous() for k, v in d.state.items()}, paths[-1], d_meta)
    return paths


def describe(config: Any) -> str:
    """A short summary of a converted config's fields for the command's report."""
    data = dataclasses.asdict(config)
    data.pop("attention", None)
    return ", ".join(f"{k}={v}" for k, v in data.items())
