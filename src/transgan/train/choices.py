"""Names of the losses, precisions and devices a run may choose, free of torch so that the
command line can list them; the loss registry (``train.losses``) is tested to match."""

import re

LOSSES: tuple[str, ...] = ("wgangp-eps", "hinge", "logistic-r1", "rpgan")
# How the zero-centred penalties (R1, R2) are taken: the input gradient through a double
# backward, or a finite difference of D along random directions (one plain D pass).
PENALTIES: tuple[str, ...] = ("exact", "finite-difference")
# The losses whose penalties are zero-centred, so a finite difference can stand for them.
ZERO_CENTRED_LOSSES: tuple[str, ...] = ("logistic-r1", "rpgan")
# Training schedules: constant, or a linear or cosine way from a start value to an end value.
SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
# The devices that train.distributed.resolve_device takes: --device of every command.
DEVICE_HELP = "auto (CUDA when present, else the CPU) | cpu | cuda | cuda:N"
# --augment-p's value for the adaptive controller (train.ada) instead of a fixed probability.
ADAPTIVE = "adaptive"
# DiffAugment's parameter sets (train.augment.AUGMENT_PARAMS, tested to match).
AUGMENT_PARAM_SETS: tuple[str, ...] = ("transgan", "diffaugment")


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a --device value (None when it is one); whether the machine has
    that device is train.distributed.resolve_device's to say."""
    if name in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", name):
        return None
    return f"unknown device '{name}'; use auto, cpu, cuda or cuda:N"
