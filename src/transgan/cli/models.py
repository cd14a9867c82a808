"""``transgan models``: the presets with their resolution and parameter counts, or with
``--memory`` what each needs to train and the --accum that fits common GPUs."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from transgan.errors import UsageError
from transgan.models.parameters import PRESET_PARAMETERS, count_parameters
from transgan.models.presets import Preset, get_preset, list_presets


def add_parser(sub: Any) -> None:
    """Register ``models`` on argparse sub-parsers."""
    models = sub.add_parser("models", help="list model presets with parameter counts")
    models.add_argument("--memory", action="store_true",
                        help="instead: each preset's training-step peak memory in bf16 at its "
                             "official batches and the smallest --accum that fits 8-80 GB "
                             "GPUs, with and without --activation-checkpointing (traced, "
                             "about 20 s a preset)")
    models.add_argument("--presets", default=None,
                        help="comma list of presets for --memory (default: all)")
    models.add_argument("--json", type=Path, default=None,
                        help="also write the --memory rows to this JSON file")
    models.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress line")
    models.set_defaults(func=cmd_models)


def chosen_presets(text: str | None) -> list[str]:
    """The --presets list (all presets when not given); UsageError for unknown names."""
    if text is None:
        return list_presets()
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in list_presets()]
    if unknown or not names:
        raise UsageError(f"--presets: unknown preset '{unknown[0] if unknown else text}'; "
                         "see `transgan models`")
    return names


def cmd_memory(args: argparse.Namespace) -> int:
    from transgan.memory_table import format_memory_table, memory_rows, write_memory_json

    rows = memory_rows(chosen_presets(args.presets), progress=args.progress)
    print(format_memory_table(rows))
    if args.json is not None:
        write_memory_json(rows, args.json)
    return 0


def preset_classes(preset: Preset) -> int:
    """Classes a class-conditional preset trains with on its own data (0 for the others)."""
    from transgan.data.build import build_dataset

    if not preset.recipe.get("conditional"):
        return 0
    arch = preset.architecture
    return build_dataset(preset.data, arch.img_size, arch.channels, download=False).num_classes


def cmd_models(args: argparse.Namespace) -> int:
    if args.memory:
        return cmd_memory(args)
    if args.presets is not None or args.json is not None:
        raise UsageError("--presets and --json go with --memory")
    rows = []
    for name in list_presets():
        preset = get_preset(name)
        arch = preset.architecture
        g, d = PRESET_PARAMETERS.get(name) or built_parameters(preset)
        rows.append((name, f"{arch.img_size} px", str(arch.channels),
                     f"{g / 1e6:.2f}M", f"{d / 1e6:.2f}M", preset.data, preset.description))
    header = ("preset", "resolution", "ch", "G params", "D params", "data", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def built_parameters(preset: Preset) -> tuple[int, int]:
    """G's and D's parameter counts of ``preset``, from its models built on the meta device
    (with the classes of its own data where its recipe is class-conditional)."""
    import torch

    from transgan.models.build import discriminator_from_config, generator_from_config

    arch, classes = preset.architecture, preset_classes(preset)
    with torch.device("meta"):
        g = generator_from_config(dataclasses.replace(arch.generator, num_classes=classes))
        d = discriminator_from_config(dataclasses.replace(arch.discriminator,
                                                          num_classes=classes))
        return count_parameters(g), count_parameters(d)
