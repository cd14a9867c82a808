"""``transgan convert``: a checkpoint of the official TransGAN code as a model folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.artifacts.official import WEIGHTS
from transgan.cli.parsing import key_value


def add_parser(sub: Any) -> None:
    """Register ``convert`` on argparse sub-parsers."""
    convert = sub.add_parser(
        "convert", help="convert a checkpoint of the official TransGAN code",
        description="Reads a checkpoint saved by the official TransGAN code (tensors and plain "
        "data only), infers both architectures from its tensors and writes the generator as a "
        "model folder (OUT/config.json, OUT/model.safetensors, a model card) and "
        "OUT/discriminator.safetensors beside it.",
    )
    convert.add_argument("checkpoint", help="official checkpoint (.pth)")
    convert.add_argument("--out", required=True, help="output folder")
    convert.add_argument("--weights", choices=WEIGHTS, default="ema",
                         help="generator weights: the EMA (avg_gen_state_dict) or gen_state_dict")
    convert.add_argument("--gen", action="append", type=key_value, metavar="KEY=VALUE",
                         help="generator field the tensors do not show (heads=4, act=gelu)")
    convert.add_argument("--disc", action="append", type=key_value, metavar="KEY=VALUE",
                         help="discriminator field the tensors do not show (heads, act)")
    convert.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from transgan.artifacts.official.checkpoint import convert_checkpoint, describe, save_converted

    out = Path(args.out)
    converted = convert_checkpoint(
        args.checkpoint, args.weights, dict(args.gen or []), dict(args.disc or [])
    )
    networks = [("generator", converted.generator)]
    if converted.discriminator is not None:
        networks.append(("discriminator", converted.discriminator))
    epoch = "" if converted.epoch is None else f", epoch {converted.epoch}"
    print(f"official {converted.generator.version} checkpoint{epoch}; "
          f"generator weights: {converted.weights}")
    for name, net in networks:
        print(f"{name}: {describe(net.config)}")
        if net.dropped:
            print(f"  not carried over ({len(net.dropped)}): {', '.join(net.dropped)}")
        if net.added:
            print(f"  not in the official model, initialised fresh: {', '.join(net.added)}")
    if converted.ignored:
        print(f"ignored checkpoint entries: {', '.join(converted.ignored)}")
    for path in save_converted(converted, out, source=str(args.checkpoint)):
        print(f"wrote {path}")
    return 0
