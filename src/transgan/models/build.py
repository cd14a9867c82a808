"""Build networks from presets or configs."""

from __future__ import annotations

from typing import Any

from torch import nn

from transgan.errors import ConfigError
from transgan.models.cnn import (
    CNNDiscriminator,
    CNNDiscriminatorConfig,
    CNNGenerator,
    CNNGeneratorConfig,
)
from transgan.models.config_dicts import apply_overrides
from transgan.models.configs import DiscriminatorConfig, GeneratorConfig
from transgan.models.discriminator import TransformerDiscriminator
from transgan.models.generator import TransformerGenerator
from transgan.models.presets import AnyDiscriminatorConfig, AnyGeneratorConfig, get_preset

# Config class -> the module class it builds.
_MODULES: dict[type, type[nn.Module]] = {
    GeneratorConfig: TransformerGenerator,
    CNNGeneratorConfig: CNNGenerator,
    DiscriminatorConfig: TransformerDiscriminator,
    CNNDiscriminatorConfig: CNNDiscriminator,
}
GENERATOR_CONFIGS = (GeneratorConfig, CNNGeneratorConfig)
DISCRIMINATOR_CONFIGS = (DiscriminatorConfig, CNNDiscriminatorConfig)


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


