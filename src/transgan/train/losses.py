"""GAN losses selectable by name: WGAN-GP with drift (official TransGAN), hinge, logistic + R1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import record_function

LOSSES: tuple[str, ...] = ("wgangp-eps", "hinge", "logistic-r1")

Augment = Callable[[Tensor], Tensor]


class LossError(ValueError):
    """Unknown loss name or invalid loss weight."""


@dataclass
class LossConfig:
    """Which GAN loss to use and the weights of its regularisers."""

    name: str = "wgangp-eps"
    gp_weight: float = 10.0
    drift_weight: float = 1e-3
    r1_gamma: float = 10.0

    def __post_init__(self) -> None:
        _check_config(self)


def _check_config(cfg: LossConfig) -> None:
    if cfg.name not in LOSSES:
        raise LossError(f"unknown loss {cfg.name!r}; choose from {', '.join(LOSSES)}")
    for field in ("gp_weight", "drift_weight", "r1_gamma"):
        if getattr(cfg, field) < 0:
            raise LossError(f"{field} must be >= 0, got {getattr(cfg, field)}")


def _logits(D: nn.Module, x: Tensor, augment: Augment | None) -> Tensor:
    """D's logits for x, augmented first when an augmentation is given, flattened to (B,)."""
    if augment is not None:
        x = augment(x)
    return D(x).reshape(-1)


def _input_gradient(D: nn.Module, x: Tensor, augment: Augment | None) -> Tensor:
    """Gradient of sum(D(aug(x))) w.r.t. x, kept in the graph for the penalty's double backward."""
    x = x.detach().requires_grad_(True)
    # Fused SDPA kernels have no double backward; the math backend is composed of ordinary ops.
    with record_function("transgan.penalty_forward"), sdpa_kernel(SDPBackend.MATH):
        out = _logits(D, x, augment)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(
    D: nn.Module, real: Tensor, fake: Tensor, augment: Augment | None = None
) -> Tensor:
    """WGAN-GP term E[(||grad D(aug(x_hat))|| - 1)^2] on random real/fake interpolates."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, dtype=real.dtype, device=real.device)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    grad = _input_gradient(D, x_hat, augment)
    return (torch.linalg.vector_norm(grad, dim=1) - 1.0).square().mean()


def r1_penalty(D: nn.Module, real: Tensor, augment: Augment | None = None) -> Tensor:
    """R1 term E[||grad_x D(aug(x))||^2] on real images; the loss adds r1_gamma / 2 times it."""
    grad = _input_gradient(D, real, augment)
    return grad.square().sum(dim=1).mean()


def d_loss(
    cfg: LossConfig,
    D: nn.Module,
    real: Tensor,
    fake: Tensor,
    augment: Augment | None = None,
    *,
    penalty: bool = True,
    penalty_scale: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Discriminator loss and detached scalar stats.

    penalty=False skips GP/R1 for lazy regularisation; penalty_scale multiplies the penalty term.
    """
    loss, stats = d_main_loss(cfg, D, real, fake, augment)
    if penalty:
        term, penalty_stats = d_penalty(cfg, D, real, fake, augment, scale=penalty_scale)
        if term is not None:
            loss = loss + term
            stats.update(penalty_stats)
    stats["d_loss"] = loss.detach()
    return loss, stats


def d_main_loss(
    cfg: LossConfig, D: nn.Module, real: Tensor, fake: Tensor, augment: Augment | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """The discriminator loss without its gradient penalty, and detached scalar stats."""
    _check_config(cfg)
    fake = fake.detach()
    # One D pass over both halves: larger matrix products, half the kernel launches.
    both = torch.cat([real, fake]) if augment is None else torch.cat([augment(real),
                                                                     augment(fake)])
    real_logits, fake_logits = D(both).reshape(-1).split([real.shape[0], fake.shape[0]])
    stats = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
    if cfg.name == "wgangp-eps":
        # Official TransGAN: the square of the mean real logit, not the mean of the squares.
        drift = real_logits.mean().square()
        loss = fake_logits.mean() - real_logits.mean() + cfg.drift_weight * drift
        stats["drift"] = drift.detach()
    elif cfg.name == "hinge":
        loss = F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    else:
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    return loss, stats


def d_penalty(
    cfg: LossConfig,
    D: nn.Module,
    real: Tensor,
    fake: Tensor,
    augment: Augment | None = None,
    *,
    scale: float = 1.0,
) -> tuple[Tensor | None, dict[str, Tensor]]:
    """The loss's weighted gradient penalty (times ``scale``), or None if it has none.

    Kept apart from :func:`d_main_loss` so a trainer can run the two backward passes one
    after the other and never hold both graphs. Takes the raw images and augments them once.
    """
    _check_config(cfg)
    if cfg.name == "wgangp-eps" and cfg.gp_weight > 0:
        gp = gradient_penalty(D, real, fake, augment)
        return scale * cfg.gp_weight * gp, {"gp": gp.detach()}
    if cfg.name == "logistic-r1" and cfg.r1_gamma > 0:
        r1 = r1_penalty(D, real, augment)
        return scale * (cfg.r1_gamma / 2) * r1, {"r1": r1.detach()}
    return None, {}


def g_loss(
    cfg: LossConfig, D: nn.Module, fake: Tensor, augment: Augment | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Generator loss (gradients flow into fake) and detached scalar stats."""
    _check_config(cfg)
    fake_logits = _logits(D, fake, augment)
    non_saturating = cfg.name == "logistic-r1"
    loss = F.softplus(-fake_logits).mean() if non_saturating else -fake_logits.mean()
    return loss, {"g_loss": loss.detach(), "g_d_fake": fake_logits.detach().mean()}
