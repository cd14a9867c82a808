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
    "Converted": "transgan.official.mapping",
    "DISCRIMINATOR_FILE": "transgan.official.checkpoint",
    "DISCRIMINATOR_FORMAT": "transgan.official.checkpoint",
    "GENERATOR_FILE": "transgan.official.checkpoint",
    "OfficialCheckpoint": "transgan.official.checkpoint",
    "convert_checkpoint": "transgan.official.checkpoint",
    "convert_discriminator": "transgan.official.mapping",
    "convert_generator": "transgan.official.mapping",
    "describe": "transgan.official.checkpoint",
    "read_official": "transgan.official.checkpoint",
    "save_converted": "transgan.official.checkpoint",
}

__all__ = ["WEIGHTS", *sorted(_EXPORTS)]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
