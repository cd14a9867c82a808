"""Network definitions: transformer generator and discriminator, CNN baselines, presets.

Public names load their modules on first use: configs and presets are free of torch, so the
command line can read them without loading it.
"""

from __future__ import annotations

from transgan.lazy import lazy_attributes

# Public name -> module that defines it.
_EXPORTS = {
    "apply_overrides": "transgan.models.config_dicts",
    "Architecture": "transgan.models.presets",
    "build_discriminator": "transgan.models.build",
    "build_generator": "transgan.models.build",
    "CNNDiscriminator": "transgan.models.cnn",
    "CNNDiscriminatorConfig": "transgan.models.configs",
    "CNNGenerator": "transgan.models.cnn",
    "CNNGeneratorConfig": "transgan.models.configs",
    "config_from_dict": "transgan.models.config_dicts",
    "config_has_locality": "transgan.models.capabilities",
    "config_has_super_resolution": "transgan.models.capabilities",
    "config_to_dict": "transgan.models.config_dicts",
    "ConfigError": "transgan.errors",
    "count_parameters": "transgan.models.parameters",
    "DEFAULT_PRESET": "transgan.models.presets",
    "discriminator_config": "transgan.models.build",
    "discriminator_from_config": "transgan.models.build",
    "DiscriminatorConfig": "transgan.models.configs",
    "generator_config": "transgan.models.build",
    "generator_from_config": "transgan.models.build",
    "GeneratorConfig": "transgan.models.configs",
    "get_preset": "transgan.models.presets",
    "list_presets": "transgan.models.presets",
    "Preset": "transgan.models.presets",
    "PRESETS": "transgan.models.presets",
    "supports_locality": "transgan.models.capabilities",
    "supports_super_resolution": "transgan.models.capabilities",
    "TransformerDiscriminator": "transgan.models.discriminator",
    "TransformerGenerator": "transgan.models.generator",
    "V1_SIZES": "transgan.models.presets",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
