"""``transgan interpolate``: latent walks as an image strip or an animated GIF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.cli.parsing import GENERATOR_SOURCE_HELP, class_list
from transgan.errors import OptionsError


def add_parser(sub: Any) -> None:
    """Register ``interpolate`` on argparse sub-parsers."""
    interp = sub.add_parser("interpolate", help="latent walk as an image strip or GIF")
    interp.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    interp.add_argument("--out", default="interpolation.png", help=".png strip or .gif")
    interp.add_argument("--rows", type=int, default=4, help="independent walks")
    interp.add_argument("--steps", type=int, default=10, help="images per walk")
    interp.add_argument("--seed", type=int, default=0, help="latent seed")
    interp.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    interp.add_argument("--class", dest="classes", type=class_list, metavar="K[,K...]",
                        help="class of each walk of a class-conditional generator, in turn "
                        "(default: all classes in turn)")
    interp.set_defaults(func=cmd_interpolate)


def cmd_interpolate(args: argparse.Namespace) -> int:
    if args.rows <= 0 or args.steps < 2:
        raise OptionsError("--rows must be positive and --steps at least 2")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".gif"):
        raise OptionsError("--out must end in .png (image strip) or .gif (animation)")
    from transgan.loading import open_generator
    from transgan.sampling import (
        class_labels,
        generate,
        grid_tensor,
        interpolation_latents,
        save_gif,
        save_grid,
    )

    generator, _ = open_generator(args.checkpoint, args.device)
    z = interpolation_latents(args.rows, args.steps, generator.latent_dim, args.seed)
    labels = class_labels(args.rows * args.steps, generator.num_classes, args.classes,
                          repeat=args.steps, device=args.device)
    frames = generate(generator, z.to(args.device), labels=labels).cpu()
    if out.suffix.lower() == ".gif":
        # Frame t shows step t of every walk side by side.
        per_step = frames.view(args.rows, args.steps, *frames.shape[1:]).transpose(0, 1)
        save_gif([grid_tensor(f, nrow=args.rows) for f in per_step], out)
    else:
        save_grid(frames, out, nrow=args.steps)
    print(f"wrote a latent walk ({args.rows} x {args.steps}) to {out}")
    return 0
