"""Training recipes: the options each preset trains with where they differ from the defaults
of :class:`transgan.train.options.TrainOptions` (the official CIFAR-10 recipe).

A recipe is checked against the option table when it is defined: a misspelt option or a
value of the wrong type fails on import, not when a run starts. Every preset of
:mod:`transgan.models.presets` has a recipe here, and every recipe a preset. Free of torch,
so that the command line can show the defaults in its help without loading it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

from transgan.errors import ConfigError, OptionsError
from transgan.models.presets import CONDITIONAL_MODE_SEEKING, PRESETS, get_preset
from transgan.train.options import TrainOptions, checked, merge


class Recipe(Mapping[str, Any]):
    """Training options (name -> value) that a preset changes, each value of its option's
    type; checked when made, read-only after."""

    def __init__(self, **options: Any) -> None:
        if "preset" in options:
            raise OptionsError("a recipe cannot set the preset: it is the preset's")
        self._options = checked(options, "recipe")

    def but(self, **options: Any) -> Recipe:
        """This recipe with ``options`` set as well (checked too)."""
        return Recipe(**{**self._options, **options})

    def __getitem__(self, name: str) -> Any:
        return self._options[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __repr__(self) -> str:
        return f"Recipe({', '.join(f'{k}={v!r}' for k, v in self._options.items())})"


# The defaults are the official CIFAR-10 recipe (D batch 64, n_critic 4, 500k G steps = 128M
# real images) except for G batch 128 and random flips. STL-10: batches 32/64, n_critic 5.
CIFAR = Recipe(g_batch=128, hflip=True)
# The v1 generators mask their last block by the official epoch schedule (v2 has no mask).
V1_CIFAR = CIFAR.but(locality="official")
STL = CIFAR.but(batch=32, g_batch=64, n_critic=5, images=80_000_000)
# The official v2 STL-10 script: its own erasing in place of cutout, EMA warm-up 0.05.
V2_STL = STL.but(augment="translation,stl_erase_ratio,color", ema_rampup=0.05)
# The official 256 px scripts: D batch 16 accumulated 4 times, n_critic 4, a fixed EMA beta
# 0.995 per G step (ema_warmup 0) = a half-life of 64 * ln 0.5 / ln 0.995 images of D batch.
HQ256 = Recipe(
    batch=64, accum=4, g_batch=128, hflip=True, ema_rampup=None,
    ema_half_life=64 * math.log(0.5) / math.log(0.995),
    augment="translation,erase_ratio,color", images=128_000_000,
)
# The CPU demo: a higher learning rate and one D step per G step learn digits in minutes;
# its matrices are too small for bf16 to pay off on a CPU (measured 76 vs 123 img/s).
# --augment-p adaptive can take p from 0 to 1 within a third of the run (ada_speed).
DIGITS = Recipe(
    batch=32, n_critic=1, lr_g=2e-4, lr_d=2e-4, images=60_000, precision="fp32",
    log_every=1_000, sample_every=5_000, checkpoint_every=10_000, ada_speed=20_000,
)
# The default demo: one class embedding per digit, no augmentation, and a mode-seeking term
# at 0.25 that keeps each class from collapsing to one stroke (docs/results/conditional.md).
DIGITS_CONDITIONAL = DIGITS.but(conditional=True, augment="none",
                                mode_seeking=CONDITIONAL_MODE_SEEKING)


def _for_every_preset(recipes: dict[str, Recipe]) -> dict[str, Recipe]:
    """``recipes`` if they name exactly the presets; a ConfigError naming a missing or
    unknown preset otherwise."""
    missing = [name for name in PRESETS if name not in recipes]
    unknown = [name for name in recipes if name not in PRESETS]
    if missing or unknown:
        raise ConfigError(f"recipes missing for presets {missing}, recipes of no preset {unknown}")
    return recipes


# Preset name -> its recipe.
RECIPES: dict[str, Recipe] = _for_every_preset({
    "transgan-s": V1_CIFAR,
    "transgan-m": V1_CIFAR,
    "transgan-l": V1_CIFAR,
    "transgan-xl": V1_CIFAR,
    "transgan-stl10": STL.but(locality="official"),
    "transgan-celeba64": STL.but(images=40_000_000, locality="official-celeba64"),
    "transgan-v2-cifar10": CIFAR,
    "transgan-v2-stl10": V2_STL,
    "transgan-v2-celeba128": CIFAR.but(batch=32, g_batch=64, images=32_000_000),
    "transgan-v2-church256": HQ256,
    "transgan-v2-celebahq256": HQ256,
    "digits": DIGITS,
    "digits-conditional": DIGITS_CONDITIONAL,
    "digits-32": DIGITS,
    "tiny-32": DIGITS,
    "tiny-64": DIGITS,
    "digits-cnn": DIGITS,
    "digits-cnn-g": DIGITS,
    "digits-cnn-d": DIGITS,
    "cnn": CIFAR,
    "cnn-g": CIFAR,
    "cnn-d": CIFAR,
})


def recipe_for(preset: str) -> Recipe:
    """The recipe of ``preset``; a one-line ConfigError listing the presets otherwise."""
    return RECIPES[get_preset(preset).name]


def options_for(preset: str, updates: dict[str, Any] | None = None, source: str = "options"
                ) -> TrainOptions:
    """Defaults <- the preset's recipe <- ``updates`` (checked, naming ``source``)."""
    opts = dataclasses.replace(TrainOptions(), **recipe_for(preset), preset=preset)
    return merge(opts, updates or {}, source)


def chosen_options(options: Mapping[str, Any], preset: str | None) -> dict[str, Any]:
    """Those of ``options`` that differ from what ``preset`` gives (its recipe over
    transgan's defaults): what was set for the run rather than left as it comes."""
    # A preset this version does not know has no recipe here.
    given = {**TrainOptions().to_dict(), **(RECIPES.get(preset, {}) if preset else {})}
    return {name: value for name, value in options.items()
            if name not in given or value != given[name]}
