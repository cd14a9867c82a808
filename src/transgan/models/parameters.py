"""Parameter counts of a network."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of trainable parameters, or of all of them (a frozen copy's included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# Each preset's G and D parameter counts (built for the classes of its own data where its
# recipe is class-conditional), so that `transgan models` lists them without loading torch or
# building a model; tests/test_models.py builds every preset and checks these.
PRESET_PARAMETERS: dict[str, tuple[int, int]] = {
    "transgan-s": (34_369_707, 12_458_497),
    "transgan-m": (49_862_883, 12_458_497),
    "transgan-l": (86_904_147, 12_458_497),
    "transgan-xl": (133_596_611, 12_458_497),
    "transgan-stl10": (150_064_467, 12_489_217),
    "transgan-celeba64": (132_929_267, 12_532_225),
    "transgan-v2-cifar10": (83_316_591, 10_210_400),
    "transgan-v2-stl10": (168_470_719, 10_341_536),
    "transgan-v2-celeba128": (50_520_347, 10_574_432),
    "transgan-v2-church256": (205_296_048, 17_754_569),
    "transgan-v2-celebahq256": (212_907_351, 13_334_593),
    "digits": (1_168_033, 598_529),
    "digits-vit": (1_168_033, 598_529),
    "digits-conditional": (1_692_961, 599_809),
    "digits-32": (4_636_241, 1_793_665),
    "tiny-32": (648_453, 423_169),
    "tiny-64": (821_445, 429_313),
    "digits-cnn": (758_913, 185_473),
    "digits-cnn-g": (758_913, 598_529),
    "digits-cnn-d": (1_168_033, 185_473),
    "cnn": (4_276_739, 1_053_825),
    "cnn-g": (4_276_739, 12_458_497),
    "cnn-d": (34_369_707, 1_053_825),
}
