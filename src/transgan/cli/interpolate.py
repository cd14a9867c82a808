"""``transgan interpolate``: latent walks as an image strip or an animated GIF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.cli.parsing import (
    GENERATOR_SOURCE_HELP,
    TRUNCATION_HELP,
    add_device_argument,
    class_list,
    seed_list,
    truncation,
)
from transgan.errors import UsageError

DEFAULT_ROWS = 4
DEFAULT_SEED = 0


def add_parser(sub: Any) -> None:
    """Register ``interpolate`` on argparse sub-parsers."""
    interp = sub.add_parser("interpolate", help="latent walk as an image strip or GIF")
    interp.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    interp.add_argument("--out", default="interpolation.png", help=".png strip or .gif")
    interp.add_argument("--rows", type=int, default=None,
                        help=f"independent walks, all drawn from --seed (default: {DEFAULT_ROWS})")
    interp.add_argument("--steps", type=int, default=10, help="images per walk")
    interp.add_argument("--seed", type=int, default=None,
                        help=f"latent seed of the walks' ends (default: {DEFAULT_SEED})")
    interp.add_argument("--seeds", type=seed_list, metavar="A,B[,C...]",
                        help="walk through these seeds in order, one row per step from a seed "
                        "to the next (3,7,9 or 0-4); each end is that seed's `sample --seeds` "
                        "latent; instead of --seed and --rows")
    interp.add_argument("--truncation", type=truncation, metavar="PSI",
                        help=f"{TRUNCATION_HELP}; the walk stays within |z| <= PSI")
    add_device_argument(interp, "cpu")
    interp.add_argument("--class", dest="classes", type=class_list, metavar="NAME[,NAME...]",
                        help="class of each walk of a class-conditional generator (name or "
                        "index), in turn "
                        "(default: all classes in turn)")
    interp.set_defaults(func=cmd_interpolate)


def cmd_interpolate(args: argparse.Namespace) -> int:
    from transgan.artifacts.loading import open_generator
    from transgan.sampling import (
        class_labels,
        generate,
        generator_class_names,
        grid_tensor,
        interpolation_latents,
        resolve_classes,
        save_gif,
        save_grid,
        seed_walk_latents,
    )
    from transgan.train.distributed import resolve_device

    if args.seeds is not None and (args.rows is not None or args.seed is not None):
        raise UsageError("--seeds sets the walks; leave out --seed and --rows")
    if args.seeds is not None and len(args.seeds) < 2:
        raise UsageError("--seeds needs at least 2 seeds to walk between")
    if (args.rows is not None and args.rows <= 0) or args.steps < 2:
        raise UsageError("--rows must be positive and --steps at least 2")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".gif"):
        raise UsageError("--out must end in .png (image strip) or .gif (animation)")
    device = resolve_device(args.device)
    generator, _ = open_generator(args.checkpoint, device)
    if args.seeds is not None:
        rows = len(args.seeds) - 1
        z = seed_walk_latents(args.seeds, args.steps, generator.latent_dim, args.truncation)
    else:
        rows = args.rows or DEFAULT_ROWS
        seed = DEFAULT_SEED if args.seed is None else args.seed
        z = interpolation_latents(rows, args.steps, generator.latent_dim, seed, args.truncation)
    classes = resolve_classes(args.classes, generator_class_names(generator))
    labels = class_labels(rows * args.steps, generator.num_classes, classes,
                          repeat=args.steps, device=device)
    frames = generate(generator, z.to(device), labels=labels).cpu()
    if out.suffix.lower() == ".gif":
        # Frame t shows step t of every walk side by side.
        per_step = frames.view(rows, args.steps, *frames.shape[1:]).transpose(0, 1)
        save_gif([grid_tensor(f, nrow=rows) for f in per_step], out)
    else:
        save_grid(frames, out, nrow=args.steps)
    print(f"wrote a latent walk ({rows} x {args.steps}) to {out}")
    return 0
