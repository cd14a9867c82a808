"""Names that load their modules on first use, so that importing a package or a registry (the
command line does, to parse its arguments) does not load torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def load(target: str) -> Any:
    """The object a "module:name" string points at, its module imported if need be."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def lazy_attributes(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a module
    name) the first time ``name`` is read and returns its attribute of that name."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return load(f"{exports[name]}:{name}")

    return __getattr__
