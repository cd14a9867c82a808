"""What a model can do beyond ``G(z)`` / ``D(x)``, decided by its class (and config).

Only the transformer models have self-attention a locality window can restrict, and only a
transformer generator without latent modulation has the super-resolution entry MT-CT trains.
"""

from __future__ import annotations

from typing import TypeGuard

from torch import nn

from transgan.models.configs import DiscriminatorConfig, GeneratorConfig
from transgan.models.discriminator import TransformerDiscriminator
from transgan.models.generator import TransformerGenerator

LocalityModel = TransformerGenerator | TransformerDiscriminator


def config_has_locality(cfg: object) -> bool:
    """Whether the model ``cfg`` describes will support :func:`supports_locality`."""
    return isinstance(cfg, GeneratorConfig | DiscriminatorConfig)


def config_has_super_resolution(cfg: object) -> bool:
    """Whether the generator ``cfg`` describes will support :func:`supports_super_resolution`."""
    return isinstance(cfg, GeneratorConfig) and not cfg.latent_modulation


def supports_locality(model: nn.Module) -> TypeGuard[LocalityModel]:
    """Whether ``model`` has ``set_locality`` (locality-aware attention masks)."""
    return isinstance(model, LocalityModel)


def supports_super_resolution(generator: nn.Module) -> TypeGuard[TransformerGenerator]:
    """Whether ``generator`` has ``super_resolve`` (multi-task co-training, MT-CT)."""
    return isinstance(generator, TransformerGenerator) and config_has_super_resolution(
        generator.config)
