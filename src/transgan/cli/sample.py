"""``transgan sample``: images or a grid from a trained generator."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.cli.parsing import CLASS_HELP, GENERATOR_SOURCE_HELP, class_list
from transgan.errors import OptionsError

# An --out ending in one of these is one grid image, not a folder; other image files are
# refused rather than made into folders of that name.
GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
OTHER_IMAGE_SUFFIXES = (".tif", ".tiff", ".gif", ".bmp", ".svg", ".pdf")


def add_parser(sub: Any) -> None:
    """Register ``sample`` on argparse sub-parsers."""
    sample = sub.add_parser("sample", help="write samples of a trained generator")
    sample.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    sample.add_argument("--num", type=int, default=64, help="number of samples")
    sample.add_argument("--out", default="samples",
                        help="folder of PNG files, or a .png/.jpg file: one grid image "
                        "(default: samples)")
    sample.add_argument("--grid", action="store_true",
                        help="one grid image instead of files (OUT/grid.png in a folder OUT)")
    sample.add_argument("--seed", type=int, default=0, help="latent seed")
    sample.add_argument("--batch", type=int, default=64, help="images per forward pass")
    sample.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    sample.add_argument("--raw", action="store_true", help="use G instead of the EMA generator")
    sample.add_argument("--class", dest="classes", type=class_list, metavar="K[,K...]",
                        help=CLASS_HELP)
    sample.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    if args.num <= 0:
        raise OptionsError("--num must be positive")
    out = Path(args.out)
    grid_file = out.suffix.lower() in GRID_SUFFIXES
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise OptionsError(f"--out {out}: a folder, or a file ending in "
                           f"{', '.join(GRID_SUFFIXES)} for one grid image")
    from transgan.loading import open_generator
    from transgan.sampling import (
        class_labels,
        generate,
        grid_columns,
        latents,
        save_grid,
        save_images,
    )

    generator, _ = open_generator(args.checkpoint, args.device, ema=not args.raw)
    columns = grid_columns(args.num, generator.num_classes, args.classes)
    labels = class_labels(args.num, generator.num_classes, args.classes, repeat=columns,
                          device=args.device)
    z = latents(args.num, generator.latent_dim, args.seed, args.device)
    images = generate(generator, z, batch=args.batch, labels=labels)
    if args.grid or grid_file:
        path = save_grid(images, out if grid_file else out / "grid.png", nrow=columns)
        print(f"wrote a grid of {args.num} samples to {path}")
    else:
        save_images(images, out)
        print(f"wrote {args.num} samples to {out}/")
    return 0
