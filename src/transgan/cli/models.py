"""``transgan models``: the presets with their resolution and parameter counts."""

from __future__ import annotations

import argparse
from typing import Any

import torch

from transgan.models import (
    count_parameters,
    discriminator_from_config,
    generator_from_config,
    get_preset,
    list_presets,
)


def add_parser(sub: Any) -> None:
    """Register ``models`` on argparse sub-parsers."""
    models = sub.add_parser("models", help="list model presets with parameter counts")
    models.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    rows = []
    with torch.device("meta"):
        for name in list_presets():
            preset = get_preset(name)
            arch = preset.architecture
            g = count_parameters(generator_from_config(arch.generator))
            d = count_parameters(discriminator_from_config(arch.discriminator))
            rows.append((name, f"{arch.img_size} px", str(arch.channels),
                         f"{g / 1e6:.2f}M", f"{d / 1e6:.2f}M", preset.data, preset.description))
    header = ("preset", "resolution", "ch", "G params", "D params", "data", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
