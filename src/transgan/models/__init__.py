"""Network definitions: transformer generator and discriminator, CNN baselines, presets.

Public names load their modules on first use: configs and presets are free of torch, so the
command line can read them without loading it.
"""

from __future__ import annotations

from transgan.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "transgan.models.build": ("build_generator", "discriminator_config",
                              "discriminator_from_config", "generator_config",
                              "generator_from_config"),
    "transgan.models.capabilities": ("supports_locality",),
    "transgan.models.cnn": ("CNNDiscriminator", "CNNGenerator"),
    "transgan.models.config_dicts": ("config_from_dict", "config_to_dict"),
    "transgan.models.configs": ("CNNDiscriminatorConfig", "CNNGeneratorConfig",
                                "DiscriminatorConfig", "GeneratorConfig"),
    "transgan.models.discriminator": ("TransformerDiscriminator",),
    "transgan.models.generator": ("TransformerGenerator",),
    "transgan.models.parameters": ("count_parameters",),
    "transgan.models.presets": ("PRESETS", "get_preset", "list_presets"),
})
