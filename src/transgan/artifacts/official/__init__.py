"""Checkpoints of the official TransGAN code: infer each architecture from its tensors, map the
weights onto this library's models, and write them as a model folder with their configs.

Public names load their modules on first use, so the command line can list ``WEIGHTS``
without loading torch.
"""

from __future__ import annotations

from transgan.lazy import lazy_attributes

# Which generator of an official checkpoint to convert: the EMA copy or the raw one.
WEIGHTS = ("ema", "raw")

# Public name -> module that defines it.
_EXPORTS = {
    "ConversionError": "transgan.errors",
    "Converted": "transgan.artifacts.official.mapping",
    "DISCRIMINATOR_FILE": "transgan.artifacts.official.checkpoint",
    "DISCRIMINATOR_FORMAT": "transgan.artifacts.official.checkpoint",
    "GENERATOR_FILE": "transgan.artifacts.official.checkpoint",
    "OfficialCheckpoint": "transgan.artifacts.official.checkpoint",
    "convert_checkpoint": "transgan.artifacts.official.checkpoint",
    "convert_discriminator": "transgan.artifacts.official.mapping",
    "convert_generator": "transgan.artifacts.official.mapping",
    "describe": "transgan.artifacts.official.checkpoint",
    "read_official": "transgan.artifacts.official.checkpoint",
    "save_converted": "transgan.artifacts.official.checkpoint",
}

__all__ = ["WEIGHTS", *sorted(_EXPORTS)]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
