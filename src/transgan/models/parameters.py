"""Parameter counts of a network."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of trainable parameters, or of all of them (a frozen copy's included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
