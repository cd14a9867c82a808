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
from transgan.models.capabilities import (
    config_has_locality,
    config_has_super_resolution,
    supports_locality,
    supports_super_resolution,
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
from transgan.models.presets import (
    DEFAULT_PRESET,
    PRESETS,
    V1_SIZES,
    Architecture,
    Preset,
    get_preset,
    list_presets,
)

__all__ = [
    "Architecture",
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
    "V1_SIZES",
    "build_discriminator",
    "build_generator",
    "config_from_dict",
    "config_has_locality",
    "config_has_super_resolution",
    "config_to_dict",
    "count_parameters",
    "discriminator_config",
    "discriminator_from_config",
    "generator_config",
    "generator_from_config",
    "get_preset",
    "list_presets",
    "supports_locality",
    "supports_super_resolution",
]
