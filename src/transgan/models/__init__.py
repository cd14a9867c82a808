"""Network definitions: transformer generator and discriminator, CNN baselines, presets."""

from transgan.models.build import (
    apply_overrides,
    build_discriminator,
    build_generator,
    config_from_dict,
    config_to_dict,
    count_parameters,
    discriminator_config,
    discriminator_from_config,
    generator_config,
    generator_from_config,
)
from transgan.models.cnn import (
    CNNDiscriminator,
    CNNDiscriminatorConfig,
    CNNGenerator,
    CNNGeneratorConfig,
)
from transgan.models.configs import ConfigError, DiscriminatorConfig, GeneratorConfig
from transgan.models.discriminator import TransformerDiscriminator
from transgan.models.generator import TransformerGenerator
from transgan.models.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset, list_presets

__all__ = [
    "apply_overrides",
    "CNNDiscriminator",
    "CNNDiscriminatorConfig",
    "CNNGenerator",
    "CNNGeneratorConfig",
    "ConfigError",
    "DEFAULT_PRESET",
    "DiscriminatorConfig",
    "GeneratorConfig",
    "PRESETS",
    "Preset",
    "TransformerDiscriminator",
    "TransformerGenerator",
    "build_discriminator",
    "build_generator",
    "config_from_dict",
    "config_to_dict",
    "count_parameters",
    "discriminator_config",
    "discriminator_from_config",
    "generator_config",
    "generator_from_config",
    "get_preset",
    "list_presets",
]
