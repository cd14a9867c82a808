"""``transgan models``: the presets with their resolution and parameter counts."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from transgan.models.presets import Preset, get_preset, list_presets
from transgan.train.recipes import recipe_for


def add_parser(sub: Any) -> None:
    """Register ``models`` on argparse sub-parsers."""
    models = sub.add_parser("models", help="list model presets with parameter counts")
    models.set_defaults(func=cmd_models)


def preset_classes(preset: Preset) -> int:
    """Classes a class-conditional preset trains with on its own data (0 for the others)."""
    from transgan.data.build import build_dataset

    if not recipe_for(preset.name).get("conditional"):
        return 0
    arch = preset.architecture
    return build_dataset(preset.data, arch.img_size, arch.channels, download=False).num_classes


def cmd_models(args: argparse.Namespace) -> int:
    import torch

    from transgan.models.build import discriminator_from_config, generator_from_config
    from transgan.models.parameters import count_parameters

    rows = []
    for name in list_presets():
        preset = get_preset(name)
        arch = preset.architecture
        classes = preset_classes(preset)
        with torch.device("meta"):
            g = count_parameters(generator_from_config(
                dataclasses.replace(arch.generator, num_classes=classes)))
            d = count_parameters(discriminator_from_config(
                dataclasses.replace(arch.discriminator, num_classes=classes)))
            rows.append((name, f"{arch.img_size} px", str(arch.channels),
                         f"{g / 1e6:.2f}M", f"{d / 1e6:.2f}M", preset.data, preset.description))
    header = ("preset", "resolution", "ch", "G params", "D params", "data", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
