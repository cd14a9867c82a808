"""``transgan train``: every training option as a flag, a YAML config, resume."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from transgan.cli.parsing import count, key_value
from transgan.train.options import (
    OPTION_NAMES,
    OptionsError,
    TrainOptions,
    field_type,
    load_yaml,
    merge,
    options_for,
)
from transgan.train.state import resolve_resume

MODEL_OVERRIDES = {"generator": "gen", "discriminator": "disc"}


def add_parser(sub: Any) -> None:
    """Register ``train`` on argparse sub-parsers."""
    train = sub.add_parser(
        "train", help="train a model (default: digits preset on the CPU)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Defaults shown are the official CIFAR-10 recipe; each preset's recipe "
        "changes a few (the digits demo: 60k images, n_critic 1, lr 2e-4, batch 32, fp32). "
        "A --config file overrides those, and the command line overrides the file.",
    )
    train.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file")
    train.add_argument("--resume", action="store_true",
                       help="require an existing checkpoint in --out (re-running resumes anyway)")
    _add_train_options(train)
    train.set_defaults(func=cmd_train)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(TrainOptions):
        help_text = f.metadata["help"]
        if f.name in MODEL_OVERRIDES:
            parser.add_argument(
                f"--{MODEL_OVERRIDES[f.name]}", dest=f.name, action="append", type=key_value,
                metavar="KEY=VALUE", default=argparse.SUPPRESS,
                help=f"{help_text} (repeatable)",
            )
            continue
        kind = field_type(f.name)
        flag = f"--{f.name.replace('_', '-')}"
        default_text = f"default: {f.default}" if f.default is not None else None
        full_help = f"{help_text} ({default_text})" if default_text else help_text
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=full_help)
        else:
            parser.add_argument(flag, dest=f.name, type=count if kind is int else kind,
                                default=argparse.SUPPRESS, help=full_help,
                                metavar=f.name.upper())


def train_options_from_args(args: argparse.Namespace) -> tuple[TrainOptions, set[str]]:
    """Defaults <- YAML config <- command line; also the names the user set explicitly."""
    given = {name: getattr(args, name) for name in OPTION_NAMES if hasattr(args, name)}
    for name in MODEL_OVERRIDES:
        if name in given:
            given[name] = dict(given[name])
    from_file = load_yaml(args.config) if args.config else {}
    preset = given.get("preset", from_file.get("preset", TrainOptions().preset))
    if not isinstance(preset, str):
        raise OptionsError(f"option 'preset' must be str, got {preset!r}")
    opts = options_for(preset, from_file, f"config file {args.config}")
    opts = merge(opts, given, "command line")
    return opts, set(from_file) | set(given)


def cmd_train(args: argparse.Namespace) -> int:
    from transgan.train.loop import Trainer

    opts, explicit = train_options_from_args(args)
    opts, state = resolve_resume(opts, explicit, args.resume)
    trainer = Trainer(opts, resume_state=state)
    if state is not None and trainer.counters.images >= opts.images:
        print(f"run in {trainer.run_dir} already finished ({trainer.counters.images:,} images); "
              "raise --images to train longer", file=sys.stderr)
        return 0
    trainer.run()
    return 0
