"""Checkpoints of the official TransGAN code: infer each architecture from its tensors, map the
weights onto this library's models, and write them as a model folder with their configs."""

from transgan.official.checkpoint import (
    DISCRIMINATOR_FILE,
    DISCRIMINATOR_FORMAT,
    GENERATOR_FILE,
    WEIGHTS,
    OfficialCheckpoint,
    convert_checkpoint,
    describe,
    read_official,
    save_converted,
)
from transgan.official.mapping import (
    ConversionError,
    Converted,
    convert_discriminator,
    convert_generator,
)

__all__ = [
    "DISCRIMINATOR_FILE",
    "DISCRIMINATOR_FORMAT",
    "GENERATOR_FILE",
    "WEIGHTS",
    "ConversionError",
    "Converted",
    "OfficialCheckpoint",
    "convert_checkpoint",
    "convert_discriminator",
    "convert_generator",
    "describe",
    "read_official",
    "save_converted",
]
