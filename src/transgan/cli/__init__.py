"""The ``transgan`` command line; ``main`` runs it (attributes load on first use)."""

from transgan.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "transgan.cli.command_line": ("build_parser", "main"),
    "transgan.cli.train": ("train_options_from_args",),
})
