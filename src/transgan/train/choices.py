"""The losses, augmentation strengths, precisions and devices a run may choose, free of torch so
that the command line can list and check them; a loss's class is loaded when it is built."""

import re
from dataclasses import dataclass

from transgan.errors import AugmentError


@dataclass(frozen=True)
class LossEntry:
    """A loss's class as "module:Class" and whether its penalties are zero-centred (R1, R2),
    so that a finite difference can stand for them."""

    target: str
    zero_centred: bool = False


# The losses by name: the command line's choices, and where train.losses.make_loss finds each.
LOSS_REGISTRY: dict[str, LossEntry] = {
    "wgangp-eps": LossEntry("transgan.train.losses:WGANGPEps"),
    "hinge": LossEntry("transgan.train.losses:Hinge"),
    "logistic-r1": LossEntry("transgan.train.losses:LogisticR1", zero_centred=True),
    "rpgan": LossEntry("transgan.train.losses:RelativisticPairing", zero_centred=True),
}
LOSSES: tuple[str, ...] = tuple(LOSS_REGISTRY)
ZERO_CENTRED_LOSSES: tuple[str, ...] = tuple(
    name for name, entry in LOSS_REGISTRY.items() if entry.zero_centred)
# How the zero-centred penalties (R1, R2) are taken: the input gradient through a double
# backward, or a finite difference of D along random directions (one plain D pass).
PENALTIES: tuple[str, ...] = ("exact", "finite-difference")
# Training schedules: constant, or a linear or cosine way from a start value to an end value.
SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
# The devices that train.distributed.resolve_device takes: --device of every command.
DEVICE_HELP = "auto (CUDA when present, else the CPU) | cpu | cuda | cuda:N"
# --augment-p's value for the adaptive controller (train.ada) instead of a fixed probability.
ADAPTIVE = "adaptive"


@dataclass(frozen=True)
class AugmentParams:
    """Strengths of the translation and cutout transforms, as fractions of the image size."""

    translation_ratio: float
    cutout_ratio: float
    cutout_prob: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.translation_ratio < 1.0:
            raise AugmentError(f"translation_ratio must be in [0, 1), got {self.translation_ratio}")
        if not 0.0 <= self.cutout_ratio <= 1.0:
            raise AugmentError(f"cutout_ratio must be in [0, 1], got {self.cutout_ratio}")
        if not 0.0 <= self.cutout_prob <= 1.0:
            raise AugmentError(f"cutout_prob must be in [0, 1], got {self.cutout_prob}")


# DiffAugment's parameter sets, by their --augment-params name (train.augment applies them).
AUGMENT_PARAMS: dict[str, AugmentParams] = {
    "transgan": AugmentParams(translation_ratio=0.2, cutout_ratio=0.5, cutout_prob=0.3),
    "diffaugment": AugmentParams(translation_ratio=0.125, cutout_ratio=0.5, cutout_prob=1.0),
}


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a --device value (None when it is one); whether the machine has
    that device is train.distributed.resolve_device's to say."""
    if name in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", name):
        return None
    return f"unknown device '{name}'; use auto, cpu, cuda or cuda:N"
