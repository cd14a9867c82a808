"""The ``transgan`` command: builds the parser from the command modules and runs one.

This is the one place user mistakes become one ``transgan: error: ...`` line and exit
status 2 (never a traceback); a diverged run, an unwritable run directory or a failed
benchmark end with one ``transgan: ...`` line and status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from transgan import __version__
from transgan.bench import BenchError
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
from transgan.data import DataError
from transgan.experiments import ExperimentFailed
from transgan.metrics.frechet import MetricError
from transgan.models import ConfigError
from transgan.train.augment import AugmentError
from transgan.train.checkpoint import CheckpointError
from transgan.train.distributed import DeviceError, resolve_device
from transgan.train.loop import RunDirectoryError, TrainingDiverged
from transgan.train.losses import LossError
from transgan.train.options import OptionsError
from transgan.train.schedules import ScheduleError

USER_ERRORS = (
    OptionsError, ConfigError, DataError, CheckpointError, AugmentError, LossError, ScheduleError,
    MetricError, DeviceError,
)
RUN_FAILURES = (TrainingDiverged, RunDirectoryError, BenchError, ExperimentFailed)
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
        if getattr(args, "device", None):
            resolve_device(args.device)  # checked before any work starts
        return args.func(args)
    except USER_ERRORS as exc:
        problems = getattr(exc, "problems", [])
        if len(problems) > 1:
            print(f"transgan: error: {len(problems)} problems, nothing was started:",
                  file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"transgan: error: {message}", file=sys.stderr)
        return 2
    except RUN_FAILURES as exc:
        print(f"transgan: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("transgan: interrupted", file=sys.stderr)
        return 130
