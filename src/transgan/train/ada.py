"""Adaptive augmentation: steer DiffAugment's probability p by how sure D is of the reals.

The over-fitting heuristic of StyleGAN2-ADA (Karras et al. 2020): r_t = E[sign(D(x_real))].
Every ``interval`` D steps p moves by ``interval x batch / speed`` towards more augmentation
when r_t is above ``target`` and towards less when below, within [0, 1]. Everything stays on
the device: the host never waits for r_t or p except when they are logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from transgan.train.defaults import ADA_INTERVAL, ADA_SPEED, ADA_TARGET
from transgan.train.distributed import WHOLE_BATCH, BatchShare


@dataclass(frozen=True)
class AdaSettings:
    """How the controller moves p: target r_t, D steps between moves, images for p 0 -> 1."""

    target: float = ADA_TARGET
    interval: int = ADA_INTERVAL
    speed: int = ADA_SPEED


class AdaController:
    """Keeps the running sum of sign(D(x_real)) and moves ``p`` (a device tensor) in place."""

    def __init__(self, settings: AdaSettings, batch: int, device: torch.device,
                 share: BatchShare = WHOLE_BATCH) -> None:
        self.settings = settings
        self.share = share
        self.batch = batch
        self.p = torch.zeros((), device=device)
        self.rt = torch.zeros((), device=device)
        self._signs = torch.zeros((), device=device)
        self._steps = 0

    def observe(self, real_sign: Tensor) -> None:
        """Add one D step's mean sign of the real logits; move p every ``interval`` steps."""
        self._signs += real_sign.detach().float()
        self._steps += 1
        if self._steps < self.settings.interval:
            return
        signs = self.share.mean(self._signs / self._steps)
        self.rt.copy_(signs)
        step = self.settings.interval * self.batch / self.settings.speed
        self.p.copy_((self.p + torch.sign(signs - self.settings.target) * step).clamp(0.0, 1.0))
        self._signs.zero_()
        self._steps = 0

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p.clone(), "rt": self.rt.clone(), "signs": self._signs.clone(),
                "steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p.copy_(state["p"])
        self.rt.copy_(state["rt"])
        self._signs.copy_(state["signs"])
        self._steps = int(state["steps"])

