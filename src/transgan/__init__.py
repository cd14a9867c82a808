"""transgan: GANs whose generator and discriminator are pure transformers.

The public names load their modules on first use, so that the command line can parse its
arguments and print help without importing torch.
"""

from __future__ import annotations

from transgan.lazy import lazy_exports

__version__ = "0.1.0"

_names, __getattr__ = lazy_exports(__name__, {
    "transgan.artifacts.loading": ("load_discriminator", "load_generator"),
    "transgan.errors": ("ConfigError",),
    "transgan.models.build": ("build_discriminator", "build_generator"),
    "transgan.models.parameters": ("count_parameters",),
    "transgan.models.presets": ("get_preset", "list_presets"),
})
__all__ = ["__version__", *_names]
