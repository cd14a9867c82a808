"""The ``transgan`` command line: one module per command, one error handler (``main``)."""

from transgan.cli.main import build_parser, main
from transgan.cli.train import train_options_from_args

__all__ = ["build_parser", "main", "train_options_from_args"]
