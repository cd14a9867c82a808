"""A preset's training recipe: the options it changes, as plain read-only data. The models layer
cannot see the option table, so :mod:`transgan.train.recipes` checks every recipe on import."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from transgan.errors import OptionsError

OptionValue = bool | int | float | str | None


class Recipe(Mapping[str, OptionValue]):
    """Training options (name -> value) that a preset changes from the defaults; read-only."""

    def __init__(self, **options: OptionValue) -> None:
        if "preset" in options:
            raise OptionsError("a recipe cannot set the preset: it is the preset's")
        self._options = options

    def but(self, **options: OptionValue) -> Recipe:
        """This recipe with ``options`` set as well."""
        return Recipe(**{**self._options, **options})

    def __getitem__(self, name: str) -> OptionValue:
        return self._options[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __hash__(self) -> int:  # a Preset, frozen, stays hashable
        return hash(frozenset(self._options.items()))

    def __repr__(self) -> str:
        return f"Recipe({', '.join(f'{k}={v!r}' for k, v in self._options.items())})"
