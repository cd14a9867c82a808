"""Presets' recipes: plain data in each preset, checked against the option table on import,
the base of options_for and of what a run chose."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from transgan.errors import ConfigError, OptionsError
from transgan.models.presets import DEFAULT_PRESET, DIGITS_GAMMA, PRESETS, get_preset
from transgan.models.recipe import Recipe
from transgan.train.options import TrainOptions
from transgan.train.recipes import check_recipes, chosen_options, options_for


def test_a_preset_whose_recipe_misspells_an_option_or_its_type_fails_the_check() -> None:
    digits = get_preset("digits")
    for recipe, message in [
        (Recipe(batch_size=32), "preset digits-x's recipe: unknown option 'batch_size'"),
        (Recipe(n_critic="5"), "preset digits-x's recipe: option 'n_critic' must be int"),
        (Recipe(g_batch=128).but(hflip=1), "option 'hflip' must be bool"),
    ]:
        bad = dataclasses.replace(digits, name="digits-x", recipe=recipe)
        with pytest.raises(OptionsError, match=message):
            check_recipes([*PRESETS.values(), bad])
    check_recipes(PRESETS.values())
    with pytest.raises(OptionsError, match="cannot set the preset"):
        Recipe(preset="digits")


def test_a_recipe_is_read_only_data() -> None:
    recipe = Recipe(lr_g=2e-4, images=60_000)
    assert dict(recipe.but(images=10)) == {"lr_g": 2e-4, "images": 10}
    assert recipe["images"] == 60_000  # but() leaves the recipe as it was
    assert hash(get_preset("digits")) == hash(get_preset("digits"))  # a preset stays hashable


def test_options_for_puts_the_recipe_over_the_defaults(monkeypatch) -> None:
    opts = options_for(DEFAULT_PRESET, {"seed": 3})
    recipe = get_preset(DEFAULT_PRESET).recipe
    assert opts.preset == DEFAULT_PRESET and opts.seed == 3
    assert all(opts.value(name) == value for name, value in recipe.items())
    defaults = TrainOptions()
    assert opts.objective.gp_weight == defaults.objective.gp_weight and "gp_weight" not in recipe
    with pytest.raises(OptionsError, match="t: unknown option 'colour'"):
        options_for("digits", {"colour": 1}, "t")
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose from"):
        options_for("nope")
    # A recipe's values become their options' types, as a config file's do.
    loose = dataclasses.replace(get_preset("digits"), recipe=Recipe(lr_g=1, images=6e4))
    monkeypatch.setitem(PRESETS, "digits", loose)
    opts = options_for("digits")
    assert (opts.optim.lr_g, opts.images) == (1.0, 60_000)
    assert isinstance(opts.optim.lr_g, float) and isinstance(opts.images, int)


def test_chosen_options_are_those_off_what_the_preset_gives() -> None:
    saved = options_for("digits", {"seed": 3, "n_critic": 4}).to_dict()
    recipe = get_preset("digits").recipe
    chosen = chosen_options(saved, "digits")
    # The general default n_critic 4 is a choice under a recipe of n_critic 1; the rest of
    # the recipe is what the preset gives, not repeated.
    assert chosen == {"preset": "digits", "seed": 3, "n_critic": 4}
    # A preset this version does not know has no recipe: only the defaults count, so the
    # recipe's values are choices where they differ from the defaults.
    defaults = TrainOptions()
    assert chosen_options(saved, "from-the-future") == {
        "preset": "digits", "seed": 3,
        **{k: v for k, v in recipe.items() if k != "n_critic" and v != defaults.value(k)}}
    assert recipe["gamma_schedule"] == defaults.optim.gamma_schedule == "constant"
    assert chosen_options(TrainOptions().to_dict(), None) == {}


def test_the_digits_preset_is_the_vit_pair_with_rope_and_a_constant_pairing_penalty() -> None:
    from conftest import tiny_step

    digits, vit = get_preset("digits"), get_preset("digits-vit")
    assert digits.architecture.generator == vit.architecture.generator
    assert digits.architecture.discriminator.rope and not vit.architecture.discriminator.rope
    assert dataclasses.replace(digits.architecture.discriminator, rope=False) == (
        vit.architecture.discriminator)
    opts, paper = options_for("digits"), options_for("digits-vit")
    assert (opts.objective.loss, paper.objective.loss) == ("rpgan", "wgangp-eps")
    assert opts.objective.r1_gamma == opts.objective.r2_gamma == DIGITS_GAMMA
    assert (opts.optim.gamma_schedule, opts.optim.lr_schedule) == ("constant", "cosine")
    # Both train the same G at the same rates; the pairing penalty's slower cycle gets
    # 50,000 images where WGAN-GP gets 60,000.
    assert (opts.optim.lr_g, opts.n_critic) == (paper.optim.lr_g, paper.n_critic)
    assert (opts.images, paper.images) == (50_000, 60_000)
    # The preset trains: a rotary D under the pairing loss logs a finite R1.
    step = tiny_step(preset="digits", discriminator={"width": 32, "depth": 1, "patch": 4,
                                                     "heads": 2})
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    d_stats = step.cycle(lambda: (real, None))[0]
    assert step.D.config.rope and torch.isfinite(d_stats["r1"]) and d_stats["r1"] > 0
