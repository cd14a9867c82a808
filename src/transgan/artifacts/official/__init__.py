"""Checkpoints of the official TransGAN code: infer each architecture from its tensors, map the
weights onto this library's models, and write them as a model folder with their configs.

Public names load their modules on first use, so the command line can list ``WEIGHTS``
without loading torch.
"""

from __future__ import annotations

from transgan.lazy import lazy_exports

# Which generator of an official checkpoint to convert: the EMA copy or the raw one.
WEIGHTS = ("ema", "raw")

_names, __getattr__ = lazy_exports(__name__, {
    "transgan.artifacts.official.checkpoint": ("DISCRIMINATOR_FILE", "DISCRIMINATOR_FORMAT",
                                               "GENERATOR_FILE", "convert_checkpoint"),
    "transgan.artifacts.official.mapping": ("convert_generator",),
})
__all__ = ["WEIGHTS", *_names]
