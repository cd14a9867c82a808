"""Names that load their modules on first use, so that importing a package or a registry (the
command line does, to parse its arguments) does not load torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def load(target: str) -> Any:
    """The object a "module:name" string points at, its module imported if need be."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]
                 ) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` for ``package``, from module -> the names it
    defines: a name's module is imported the first time the name is read."""
    owners = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in owners:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return load(f"{owners[name]}:{name}")

    return sorted(owners), __getattr__
