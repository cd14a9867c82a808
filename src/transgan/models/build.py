"""Build networks from presets or configs, and convert configs to and from plain dicts."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from transgan.errors import ConfigError
from transgan.models.cnn import (
    CNNDiscriminator,
    CNNDiscriminatorConfig,
    CNNGenerator,
    CNNGeneratorConfig,
)
from transgan.models.configs import DiscriminatorConfig, GeneratorConfig
from transgan.models.discriminator import TransformerDiscriminator
from transgan.models.generator import TransformerGenerator
from transgan.models.presets import AnyDiscriminatorConfig, AnyGeneratorConfig, get_preset

# The one registry: config type tag -> (config class, module class it builds).
MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "transformer-g": (GeneratorConfig, TransformerGenerator),
    "cnn-g": (CNNGeneratorConfig, CNNGenerator),
    "transformer-d": (DiscriminatorConfig, TransformerDiscriminator),
    "cnn-d": (CNNDiscriminatorConfig, CNNDiscriminator),
}
_TYPE_NAMES = {cfg_cls: name for name, (cfg_cls, _) in MODELS.items()}
_MODULES = dict(MODELS.values())
GENERATOR_CONFIGS = (GeneratorConfig, CNNGeneratorConfig)
DISCRIMINATOR_CONFIGS = (DiscriminatorConfig, CNNDiscriminatorConfig)


def apply_overrides(cfg: Any, overrides: dict[str, Any], what: str) -> Any:
    """A copy of dataclass ``cfg`` with ``overrides``; unknown keys give a one-line ConfigError.

    ``attention`` is accepted for every model and ignored by the CNN baselines.
    """
    names = {f.name for f in dataclasses.fields(cfg)}
    overrides = {k: v for k, v in overrides.items() if k in names or k != "attention"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(
            f"unknown {what} option '{unknown[0]}'; valid: {', '.join(sorted(names))}"
        )
    for name, value in overrides.items():
        _check_type(name, value, getattr(cfg, name), what)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    try:
        return dataclasses.replace(cfg, **overrides)
    except TypeError as exc:
        raise ConfigError(f"bad {what} option: {exc}") from None


def _check_type(name: str, value: Any, default: Any, what: str) -> None:
    """ConfigError unless ``value`` has the type of the field's ``default``."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int | float):
        allowed = int if isinstance(default, int) else int | float
        ok = isinstance(value, allowed) and not isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = "a list of integers" if isinstance(default, tuple) else type(default).__name__
        raise ConfigError(f"bad {what} option {name}={value!r}: expected {kind}, "
                          f"like the default {default!r}")


def config_to_dict(cfg: AnyGeneratorConfig | AnyDiscriminatorConfig) -> dict[str, Any]:
    """Plain dict with a ``type`` tag, suitable for JSON, YAML and checkpoints."""
    data = dataclasses.asdict(cfg)
    if "depths" in data:
        data["depths"] = list(data["depths"])
    return {"type": _TYPE_NAMES[type(cfg)], **data}


def config_from_dict(data: dict[str, Any]) -> AnyGeneratorConfig | AnyDiscriminatorConfig:
    """Inverse of :func:`config_to_dict`; ConfigError on unknown types or fields."""
    data = dict(data)
    type_name = data.pop("type", None)
    if type_name not in MODELS:
        raise ConfigError(f"unknown model config type '{type_name}'")
    return apply_overrides(MODELS[type_name][0](), data, type_name)


def generator_from_config(cfg: AnyGeneratorConfig) -> nn.Module:
    """Instantiate the generator a config describes."""
    if not isinstance(cfg, GENERATOR_CONFIGS):
        raise ConfigError(f"not a generator config: {type(cfg).__name__}")
    return _MODULES[type(cfg)](cfg)


def discriminator_from_config(cfg: AnyDiscriminatorConfig) -> nn.Module:
    """Instantiate the discriminator a config describes."""
    if not isinstance(cfg, DISCRIMINATOR_CONFIGS):
        raise ConfigError(f"not a discriminator config: {type(cfg).__name__}")
    return _MODULES[type(cfg)](cfg)


def generator_config(preset: str, **overrides: Any) -> AnyGeneratorConfig:
    """The preset's generator config with ``overrides`` applied and validated."""
    return apply_overrides(get_preset(preset).architecture.generator, overrides, "generator")


def discriminator_config(preset: str, **overrides: Any) -> AnyDiscriminatorConfig:
    """The preset's discriminator config with ``overrides`` applied and validated."""
    architecture = get_preset(preset).architecture
    return apply_overrides(architecture.discriminator, overrides, "discriminator")


def build_generator(preset: str, **overrides: Any) -> nn.Module:
    """Generator of ``preset``; overrides are config fields, e.g. ``attention="naive"``."""
    return generator_from_config(generator_config(preset, **overrides))


def build_discriminator(preset: str, **overrides: Any) -> nn.Module:
    """Discriminator of ``preset``; overrides are config fields, e.g. ``depth=4``."""
    return discriminator_from_config(discriminator_config(preset, **overrides))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of trainable parameters, or of all of them (a frozen copy's included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
