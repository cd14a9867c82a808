"""``transgan prepare``: pack a folder or zip of images into a training archive (zip:PATH)."""

from __future__ import annotations

import argparse
from typing import Any

from transgan.data.specs import CROPS, DEFAULT_CHANNELS, DEFAULT_CROP, DEFAULT_LABELS, LABEL_MODES


def cmd_prepare(args: argparse.Namespace) -> int:
    """Run prepare with the parsed options and print its one-line summary."""
    from transgan.data.prepare import prepare

    report = prepare(args.source, args.out, args.resolution, crop=args.crop, labels=args.labels,
                     channels=args.channels, min_size=args.min_size, report_path=args.report)
    print(report.summary(args.out, args.resolution, args.channels))
    if args.report:
        print(f"{len(report.files)} files not written as they were are listed in {args.report}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Add the prepare subcommand to the transgan command's subparsers."""
    parser = subparsers.add_parser(
        "prepare", help="pack a folder or zip of images into a training zip (zip:PATH)",
        description="Writes same-size PNGs and a dataset.json (labels as StyleGAN2-ADA's dataset "
        "tool writes them) into one zip that training reads into memory with --data zip:OUT. "
        "Grayscale, palette, transparent and 16-bit images are converted and smaller images "
        "upscaled; unreadable and truncated images (and with --min-size, small ones) are skipped "
        "and duplicates (same file bytes) dropped; each is counted in the summary line and "
        "--report lists the files.",
    )
    parser.add_argument("source", metavar="SRC", help="folder (searched recursively) or zip")
    parser.add_argument("--out", required=True, metavar="DATA.zip", help="archive to write")
    parser.add_argument("--resolution", type=int, required=True, metavar="R",
                        help="side of the square output images, in pixels")
    parser.add_argument("--crop", choices=CROPS, default=DEFAULT_CROP,
                        help="center: the centre square of each image; none: images must be "
                        f"square already, others are skipped (default: {DEFAULT_CROP})")
    parser.add_argument("--labels", default=DEFAULT_LABELS,
                        metavar=f"{'|'.join(LABEL_MODES)}|FILE.json",
                        help="subfolders: SRC's first-level folders are the classes, in name "
                        'order; FILE.json: {"labels": [[name relative to SRC, class], ...]} '
                        f"(default: {DEFAULT_LABELS})")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=DEFAULT_CHANNELS,
                        help=f"3: RGB, 1: grayscale (default: {DEFAULT_CHANNELS})")
    parser.add_argument("--min-size", type=int, default=0, metavar="PX",
                        help="skip images whose shorter side is below PX instead of upscaling "
                        "them (default: 0, every image smaller than R is upscaled)")
    parser.add_argument("--report", metavar="FILE.csv",
                        help="list every file skipped, dropped, converted or upscaled, with "
                        "why, as CSV (file, outcome, detail)")
    parser.set_defaults(func=cmd_prepare)
