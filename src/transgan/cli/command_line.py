"""The ``transgan`` command: builds the parser from the command modules and runs one.

This is the one place user mistakes become one ``transgan: error: ...`` line and exit
status 2 (never a traceback); a diverged run, an unwritable run directory or a failed
benchmark end with one ``transgan: ...`` line and status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from transgan import __version__
from transgan.cli import (
    bench,
    convert,
    experiment,
    export,
    interpolate,
    models,
    prepare,
    sample,
    serve,
    train,
)
from transgan.cli import eval as eval_command
from transgan.cli.parsing import OneLineParser
from transgan.errors import DeviceError, RunFailure, UserError, first_line
from transgan.train.choices import device_problem

# In the order `transgan --help` lists them.
COMMANDS = (
    train, sample, interpolate, serve, bench, export, convert, experiment, prepare, eval_command,
    models,
)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="transgan", description="Train and sample TransGAN (transformer GAN) models."
    )
    parser.add_argument("--version", action="version", version=f"transgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = getattr(args, "device", None)
        if device:  # checked before any work starts; torch is loaded only to find a GPU
            if problem := device_problem(device):
                raise DeviceError(problem)
            if device not in ("auto", "cpu"):
                from transgan.train.distributed import resolve_device

                resolve_device(device)
        return args.func(args)
    except UserError as exc:
        problems = getattr(exc, "problems", [])
        if len(problems) > 1:
            print(f"transgan: error: {len(problems)} problems, nothing was started:",
                  file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        message = first_line(exc)
        print(f"transgan: error: {message}", file=sys.stderr)
        return 2
    except RunFailure as exc:
        print(f"transgan: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("transgan: interrupted", file=sys.stderr)
        return 130
