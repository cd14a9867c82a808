"""``transgan sample``: images or a grid from a trained generator."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.cli.parsing import (
    CLASS_HELP,
    GENERATOR_SOURCE_HELP,
    TRUNCATION_HELP,
    add_device_argument,
    class_list,
    seed_list,
    truncation,
)
from transgan.errors import UsageError

# An --out ending in one of these is one grid image, not a folder; other image files are
# refused rather than made into folders of that name.
GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
OTHER_IMAGE_SUFFIXES = (".tif", ".tiff", ".gif", ".bmp", ".svg", ".pdf")
DEFAULT_NUM = 64
# Samples from which sampling shows its progress.
PROGRESS_MIN_SAMPLES = 1000
DEFAULT_SEED = 0


def add_parser(sub: Any) -> None:
    """Register ``sample`` on argparse sub-parsers."""
    sample = sub.add_parser("sample", help="write samples of a trained generator")
    sample.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    sample.add_argument("--num", type=int, default=None,
                        help=f"number of samples, all drawn from --seed (default: {DEFAULT_NUM})")
    sample.add_argument("--out", default="samples",
                        help="folder of PNG files, or a .png/.jpg file: one grid image "
                        "(default: samples)")
    sample.add_argument("--grid", action="store_true",
                        help="one grid image instead of files (OUT/grid.png in a folder OUT)")
    sample.add_argument("--seed", type=int, default=None,
                        help=f"latent seed of the --num samples (default: {DEFAULT_SEED})")
    sample.add_argument("--seeds", type=seed_list, metavar="0-35,40",
                        help="one sample per seed, each the same whatever seeds it is listed "
                        "with, in files named by seed (seed0040.png) or a grid in seed order; "
                        "instead of --seed and --num")
    sample.add_argument("--truncation", type=truncation, metavar="PSI", help=TRUNCATION_HELP)
    sample.add_argument("--batch", type=int, default=64, help="images per forward pass")
    add_device_argument(sample, "cpu")
    sample.add_argument("--raw", action="store_true", help="use G instead of the EMA generator")
    sample.add_argument("--class", dest="classes", type=class_list, metavar="NAME[,NAME...]",
                        help=CLASS_HELP)
    sample.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from transgan.artifacts.loading import open_generator
    from transgan.sampling import (
        class_grid,
        class_labels,
        generate,
        generator_class_names,
        latents,
        resolve_classes,
        save_grid,
        save_images,
        seed_classes,
        seed_file_name,
        seed_latents,
    )
    from transgan.train.distributed import resolve_device

    if args.seeds is not None and (args.num is not None or args.seed is not None):
        raise UsageError("--seeds gives one sample per seed; leave out --seed and --num")
    if args.num is not None and args.num <= 0:
        raise UsageError("--num must be positive")
    num = len(args.seeds) if args.seeds is not None else args.num or DEFAULT_NUM
    out = Path(args.out)
    grid_file = out.suffix.lower() in GRID_SUFFIXES
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise UsageError(f"--out {out}: a folder, or a file ending in "
                         f"{', '.join(GRID_SUFFIXES)} for one grid image")
    device = resolve_device(args.device)
    generator, _ = open_generator(args.checkpoint, device, ema=not args.raw)
    names = generator_class_names(generator)
    classes = resolve_classes(args.classes, names)
    whole, columns = class_grid(num, generator.num_classes, classes)
    rounded = ""
    if args.seeds is None and whole != num:  # seeds are never invented
        rounded = (f" (--num {num} rounded up to {columns} for each of {whole // columns} "
                   "classes)")
        num = whole
    if args.seeds is not None:
        columns = None  # a grid in seed order
        z = seed_latents(args.seeds, generator.latent_dim, device, args.truncation)
        labels = seed_classes(args.seeds, generator.latent_dim, generator.num_classes,
                              classes, device)
    else:
        labels = class_labels(num, generator.num_classes, classes, repeat=columns,
                              device=device)
        seed = DEFAULT_SEED if args.seed is None else args.seed
        z = latents(num, generator.latent_dim, seed, device, args.truncation)
    images = generate(generator, z, batch=args.batch, labels=labels,
                      progress=num >= PROGRESS_MIN_SAMPLES)
    if args.grid or grid_file:
        path = save_grid(images, out if grid_file else out / "grid.png", nrow=columns)
        print(f"wrote a grid of {num} samples to {path}{rounded}")
    else:
        files = None
        if args.seeds is not None:  # a conditional sample's file says its class
            drawn = [None] * num if labels is None else [names[int(c)] for c in labels]
            files = [seed_file_name(s, c) for s, c in zip(args.seeds, drawn, strict=True)]
        save_images(images, out, names=files)
        print(f"wrote {num} samples to {out}/{rounded}")
    return 0
