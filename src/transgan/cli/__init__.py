"""The ``transgan`` command line; ``main`` runs it (attributes load on first use)."""

from transgan.lazy import lazy_attributes

__all__ = ["build_parser", "main", "train_options_from_args"]

__getattr__ = lazy_attributes(__name__, {
    "build_parser": "transgan.cli.command_line",
    "main": "transgan.cli.command_line",
    "train_options_from_args": "transgan.cli.train",
})
