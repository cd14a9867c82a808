"""Training recipes: checked when defined, one for every preset, the base of options_for."""

from __future__ import annotations

import pytest

from transgan.errors import ConfigError, OptionsError
from transgan.models.presets import DEFAULT_PRESET, PRESETS
from transgan.train.options import TrainOptions
from transgan.train.recipes import (
    RECIPES,
    Recipe,
    chosen_options,
    options_for,
    recipe_for,
)


def test_a_recipe_is_checked_when_defined() -> None:
    with pytest.raises(OptionsError, match="recipe: unknown option 'batch_size'"):
        Recipe(batch_size=32)
    with pytest.raises(OptionsError, match="recipe: option 'n_critic' must be int"):
        Recipe(n_critic="5")
    with pytest.raises(OptionsError, match="recipe: option 'hflip' must be bool"):
        Recipe(g_batch=128).but(hflip=1)
    with pytest.raises(OptionsError, match="cannot set the preset"):
        Recipe(preset="digits")


def test_a_recipe_holds_values_of_their_options_types() -> None:
    recipe = Recipe(lr_g=1, images=6e4, ema_rampup=None)
    assert dict(recipe) == {"lr_g": 1.0, "images": 60_000, "ema_rampup": None}
    assert isinstance(recipe["lr_g"], float) and isinstance(recipe["images"], int)
    assert dict(recipe.but(images=10)) == {"lr_g": 1.0, "images": 10, "ema_rampup": None}
    assert recipe["images"] == 60_000  # but() leaves the recipe as it was


def test_every_preset_has_a_recipe_and_every_recipe_a_preset() -> None:
    assert set(RECIPES) == set(PRESETS)
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose from"):
        recipe_for("nope")


def test_options_for_puts_the_recipe_over_the_defaults() -> None:
    opts = options_for(DEFAULT_PRESET, {"seed": 3})
    recipe = recipe_for(DEFAULT_PRESET)
    assert opts.preset == DEFAULT_PRESET and opts.seed == 3
    assert all(opts.value(name) == value for name, value in recipe.items())
    defaults = TrainOptions()
    assert opts.objective.gp_weight == defaults.objective.gp_weight and "gp_weight" not in recipe
    with pytest.raises(OptionsError, match="t: unknown option 'colour'"):
        options_for("digits", {"colour": 1}, "t")


def test_chosen_options_are_those_off_what_the_preset_gives() -> None:
    saved = options_for("digits", {"seed": 3, "n_critic": 4}).to_dict()
    recipe = recipe_for("digits")
    chosen = chosen_options(saved, "digits")
    # The general default n_critic 4 is a choice under a recipe of n_critic 1; the rest of
    # the recipe is what the preset gives, not repeated.
    assert chosen == {"preset": "digits", "seed": 3, "n_critic": 4}
    # A preset this version does not know has no recipe: only the defaults count.
    assert chosen_options(saved, "from-the-future") == {
        "preset": "digits", **{k: v for k, v in recipe.items() if k != "n_critic"}, "seed": 3}
    assert chosen_options(TrainOptions().to_dict(), None) == {}
