"""transgan: GANs whose generator and discriminator are pure transformers."""

from transgan.loading import load_discriminator, load_generator
from transgan.models import (
    ConfigError,
    build_discriminator,
    build_generator,
    count_parameters,
    get_preset,
    list_presets,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "__version__",
    "build_discriminator",
    "build_generator",
    "count_parameters",
    "get_preset",
    "list_presets",
    "load_discriminator",
    "load_generator",
]
