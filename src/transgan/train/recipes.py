"""Every preset's recipe checked against the option table on import (a misspelt option or a
wrong type fails then, not when a run starts) and applied to the defaults; free of torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from transgan.models.presets import PRESETS, Preset, get_preset
from transgan.train.options import TrainOptions, checked, merge


def check_recipes(presets: Iterable[Preset]) -> None:
    """An OptionsError naming the preset whose recipe sets an unknown option or a value of
    the wrong type; run on import over every preset."""
    for preset in presets:
        checked(preset.recipe, f"preset {preset.name}'s recipe")


check_recipes(PRESETS.values())


def options_for(preset: str, updates: dict[str, Any] | None = None, source: str = "options"
                ) -> TrainOptions:
    """Defaults <- the preset's recipe <- ``updates`` (checked, naming ``source``)."""
    recipe = get_preset(preset).recipe
    opts = merge(TrainOptions(preset=preset), recipe, f"preset {preset}'s recipe")
    return merge(opts, updates or {}, source)


def chosen_options(options: Mapping[str, Any], preset: str | None) -> dict[str, Any]:
    """Those of ``options`` that differ from what ``preset`` gives (its recipe over
    transgan's defaults): what was set for the run rather than left as it comes."""
    # A preset this version does not know has no recipe here.
    recipe: Mapping[str, Any] = PRESETS[preset].recipe if preset in PRESETS else {}
    given = {**TrainOptions().to_dict(), **recipe}
    return {name: value for name, value in options.items()
            if name not in given or value != given[name]}
