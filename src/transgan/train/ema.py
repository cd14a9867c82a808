"""Exponential moving average of the generator, updated once per G step, with a warm-up ramp."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(batch_size: int, images_seen: int, half_life: float, rampup: float | None) -> float:
    """EMA decay for one G step, as the official TransGAN computes it.

    Each G step counts ``batch_size`` (the global D batch) towards ``half_life``, so the
    average halves every ``half_life / batch_size`` G steps, during which D sees n_critic
    times ``half_life`` real images. With ``rampup`` the half-life is at most
    ``rampup * images_seen``, where ``images_seen`` counts the real images D had seen when
    this G step's D steps began (0 at the first G step, which makes the EMA a copy of G).
    """
    ema_nimg = float(half_life)
    if rampup:
        ema_nimg = min(ema_nimg, images_seen * rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """Move ema's parameters towards model's (beta * ema + (1 - beta) * model); copy buffers."""
    ema_params = list(ema.parameters())
    model_params = list(model.parameters())
    if len(ema_params) != len(model_params):
        raise ValueError(
            f"EMA has {len(ema_params)} parameters but the model has {len(model_params)}"
        )
    lerp_ema: list[torch.Tensor] = []
    lerp_model: list[torch.Tensor] = []
    for e, m in zip(ema_params, model_params, strict=True):
        if e.is_floating_point():
            lerp_ema.append(e)
            lerp_model.append(m.detach())
        else:
            e.copy_(m)
    if lerp_ema:
        torch._foreach_lerp_(lerp_ema, lerp_model, 1.0 - beta)
    for e, m in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(m)


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen eval-mode copy of the model to hold its moving average."""
    ema = copy.deepcopy(model)
    ema.eval()
    ema.requires_grad_(False)
    return ema
