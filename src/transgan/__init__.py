"""transgan: GANs whose generator and discriminator are pure transformers.

The public names load their modules on first use, so that the command line can parse its
arguments and print help without importing torch.
"""

from __future__ import annotations

from transgan.lazy import lazy_attributes

__version__ = "0.1.0"

# Public name -> module that defines it.
_EXPORTS = {
    "ConfigError": "transgan.errors",
    "build_discriminator": "transgan.models.build",
    "build_generator": "transgan.models.build",
    "count_parameters": "transgan.models.parameters",
    "get_preset": "transgan.models.presets",
    "list_presets": "transgan.models.presets",
    "load_discriminator": "transgan.artifacts.loading",
    "load_generator": "transgan.artifacts.loading",
}

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


__getattr__ = lazy_attributes(__name__, _EXPORTS)
