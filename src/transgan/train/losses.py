"""GAN losses as objects: D's main term, D's regulariser (gradient penalty, R1, R1 + R2 or
none) and G's term, one class per loss, chosen by name from ``train.choices.LOSS_REGISTRY``.

WGAN-GP with drift is the official TransGAN loss; hinge and logistic + R1 are the common
alternatives, and the relativistic pairing loss with R1 and R2 is R3GAN's (Huang et al. 2024).
The zero-centred penalties (R1, R2) are taken exactly, through a double backward, or by
finite differences of D along random directions inside D's main pass (no double backward).
The multi-task super-resolution term of MT-CT is a G-side term beside them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import record_function

from transgan.errors import LossError
from transgan.lazy import load
from transgan.train.choices import LOSS_REGISTRY, LOSSES, PENALTIES
from transgan.train.defaults import DRIFT_WEIGHT, GP_WEIGHT, PENALTY_SIGMA, R1_GAMMA, R2_GAMMA
from transgan.train.distributed import WHOLE_BATCH, BatchShare

Augment = Callable[[Tensor], Tensor]
Stats = dict[str, Tensor]


def logits(D: nn.Module, x: Tensor, augment: Augment | None = None) -> Tensor:
    """D's logits for x, augmented first when an augmentation is given, flattened to (B,)."""
    if augment is not None:
        x = augment(x)
    return D(x).reshape(-1)


def _input_gradient(D: nn.Module, x: Tensor, augment: Augment | None) -> Tensor:
    """Gradient of sum(D(aug(x))) w.r.t. x, kept in the graph for the penalty's double backward."""
    x = x.detach().requires_grad_(True)
    # Fused SDPA kernels have no double backward; the math backend is composed of ordinary ops.
    with record_function("transgan.penalty_forward"), sdpa_kernel(SDPBackend.MATH):
        out = logits(D, x, augment)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(
    D: nn.Module, real: Tensor, fake: Tensor, augment: Augment | None = None,
    share: BatchShare = WHOLE_BATCH,
) -> Tensor:
    """WGAN-GP term E[(||grad D(aug(x_hat))|| - 1)^2] on random real/fake interpolates."""
    eps = share.rand(real.shape[0], *(1,) * (real.dim() - 1), dtype=real.dtype,
                     device=real.device)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    grad = _input_gradient(D, x_hat, augment)
    return (torch.linalg.vector_norm(grad, dim=1) - 1.0).square().mean()


def r1_penalty(D: nn.Module, real: Tensor, augment: Augment | None = None) -> Tensor:
    """R1 term E[||grad_x D(aug(x))||^2] on real images; the loss adds r1_gamma / 2 times it."""
    grad = _input_gradient(D, real, augment)
    return grad.square().sum(dim=1).mean()


def r1_r2_penalties(D: nn.Module, real: Tensor, fake: Tensor,
                    augment: Augment | None = None) -> tuple[Tensor, Tensor]:
    """The zero-centred penalties E||grad D(aug(x))||^2 on reals (R1) and on fakes (R2), from
    one pass over both: D scores each image on its own, so each gradient is its image's."""
    grad = _input_gradient(D, torch.cat([real.detach(), fake.detach()]), augment)
    r1, r2 = grad.square().sum(dim=1).split([real.shape[0], fake.shape[0]])
    return r1.mean(), r2.mean()


def super_resolution_loss(G: nn.Module, real: Tensor) -> Tensor:
    """MT-CT's G-side task: the MSE of G's reconstruction of ``real`` from its bilinear
    downsampling to G's lowest resolution."""
    low = F.interpolate(real, size=(G.bottom,) * 2, mode="bilinear", antialias=True,
                        align_corners=False)
    return F.mse_loss(G.super_resolve(low).float(), real.float())


def mode_seeking_loss(fake: Tensor, z: Tensor) -> Tensor:
    """The mode-seeking term (Mao et al. 2019) of samples paired first half with second half:
    1 / (mean |G(z1) - G(z2)| / mean |z1 - z2|), small when different latents give different
    images, large when G draws one image whatever its latent."""
    a, b = fake.float().chunk(2)
    za, zb = z.float().chunk(2)
    ratio = (a - b).abs().mean() / (za - zb).abs().mean()
    return 1.0 / (ratio + 1e-5)


@dataclass(frozen=True)
class GANLoss:
    """A GAN loss; subclasses give the terms on logits and, where they have one, the
    regulariser. Weights are checked once, when the loss is made."""

    name: ClassVar[str]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise LossError(f"{f.name} must be >= 0, got {value}")

    @property
    def regularised(self) -> bool:
        """Whether D's loss has a regulariser (a non-zero penalty weight)."""
        return False

    @property
    def penalty_in_main_pass(self) -> bool:
        """Whether the regulariser rides on :meth:`d_main`'s D pass (``penalty_scale``)
        rather than taking passes of its own in :meth:`d_regulariser`."""
        return False

    def d_main(self, D: nn.Module, real: Tensor, fake: Tensor,
               augment: Augment | None = None, *, penalty_scale: float = 0.0,
               noise: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Stats]:
        """D's loss (no gradient into ``fake``) and detached stats: without its regulariser,
        or with it times ``penalty_scale`` where it rides on this pass (a finite-difference
        penalty, along ``noise``: directions for the reals and the fakes, drawn if not given).
        """
        fake = fake.detach()
        # One D pass over both halves: larger matrix products, half the kernel launches.
        both = torch.cat([real, fake]) if augment is None else torch.cat([augment(real),
                                                                         augment(fake)])
        real_logits, fake_logits = D(both).reshape(-1).split([real.shape[0], fake.shape[0]])
        return self.scored(real_logits, fake_logits)

    def scored(self, real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Stats]:
        """D's main term of the logits of one D pass, and the stats of both halves."""
        stats = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean(),
                 "d_real_sign": self.real_sign(real_logits.detach(), fake_logits.detach())}
        return self.d_term(real_logits, fake_logits, stats), stats

    def real_sign(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The over-fitting heuristic of adaptive augmentation, E[sign(D(x_real))]."""
        return real_logits.sign().mean()

    def d_term(self, real_logits: Tensor, fake_logits: Tensor, stats: Stats) -> Tensor:
        """D's main term from the logits; may add stats of its parts."""
        raise NotImplementedError

    def d_regulariser(self, D: nn.Module, real: Tensor, fake: Tensor,
                      augment: Augment | None = None, *,
                      scale: float = 1.0) -> tuple[Tensor, Stats]:
        """The weighted regulariser times ``scale`` (lazy regularisation), and its stats.

        Apart from :meth:`d_main` so a step can run the two backward passes one after the
        other and never hold both graphs. Takes the raw images and augments them once.
        """
        raise NotImplementedError(f"the {self.name} loss has no regulariser")

    #: Whether G's term also scores real images (passed to :meth:`g_main` as ``real_D``).
    g_needs_reals: ClassVar[bool] = False

    def g_main(self, D: nn.Module, fake: Tensor, augment: Augment | None = None,
               real_D: Callable[[], Tensor] | None = None) -> tuple[Tensor, Stats]:
        """G's loss (gradients flow into ``fake``) and detached stats. ``real_D`` gives D's
        logits of a real batch, for a loss that needs them (:attr:`g_needs_reals`)."""
        fake_logits = logits(D, fake, augment)
        loss = self.g_term(fake_logits)
        return loss, {"g_loss": loss.detach(), "g_d_fake": fake_logits.detach().mean()}

    def g_term(self, fake_logits: Tensor) -> Tensor:
        """The Wasserstein G term, -E[D(G(z))]; the logistic loss overrides it."""
        return -fake_logits.mean()


@dataclass(frozen=True)
class WGANGPEps(GANLoss):
    """Official TransGAN: Wasserstein loss, gradient penalty and the drift (E[D(x)])^2.

    ``share`` makes the drift's mean and the interpolation draws global over processes.
    """

    name: ClassVar[str] = "wgangp-eps"
    gp_weight: float = GP_WEIGHT
    drift_weight: float = DRIFT_WEIGHT
    share: BatchShare = field(default=WHOLE_BATCH, compare=False)

    @property
    def regularised(self) -> bool:
        return self.gp_weight > 0

    def real_sign(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """E[sign(D(x_real) - E[D(G(z))])]: a critic's logits have no fixed zero (the drift holds
        the mean real logit near 0, where the plain sign averages ~0 whatever D has learned),
        so real logits are read against the mean fake logit."""
        return (real_logits - self.share.mean(fake_logits)).sign().mean()

    def d_term(self, real_logits: Tensor, fake_logits: Tensor, stats: Stats) -> Tensor:
        # Official: the square of the mean real logit, not the mean of the squares.
        drift = self.share.mean(real_logits).square()
        stats["drift"] = drift.detach()
        return fake_logits.mean() - real_logits.mean() + self.drift_weight * drift

    def d_regulariser(self, D: nn.Module, real: Tensor, fake: Tensor,
                      augment: Augment | None = None, *,
                      scale: float = 1.0) -> tuple[Tensor, Stats]:
        gp = gradient_penalty(D, real, fake, augment, self.share)
        return scale * self.gp_weight * gp, {"gp": gp.detach()}


@dataclass(frozen=True)
class Hinge(GANLoss):
    """Hinge loss: relu(1 - D(x)) + relu(1 + D(G(z))) for D, -D(G(z)) for G; no regulariser."""

    name: ClassVar[str] = "hinge"

    def d_term(self, real_logits: Tensor, fake_logits: Tensor, stats: Stats) -> Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def twin_noise(images: Tensor, share: BatchShare = WHOLE_BATCH) -> Tensor:
    """Standard normal directions e, one per image, drawn for the global batch (float32)."""
    return share.randn(images.shape[0], *images.shape[1:], device=images.device,
                       dtype=torch.float32)


def finite_difference_pass(
    D: nn.Module, halves: tuple[Tensor, Tensor], noise: tuple[Tensor | None, Tensor | None],
    sigma: float, augment: Augment | None = None,
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """One D pass over the real and fake halves and, for each half given noise e, its twins
    x + sigma e: D's logits of the two halves and, per half with noise,
    (D(aug(x + sigma e)) - D(aug(x)))^2 / sigma^2 per image.

    A twin is augmented with its image's own draws, so the difference is taken along the
    same augmentation as the exact penalty's gradient: its mean over e is
    ||grad_x D(aug(x))||^2 up to O(sigma), exactly for a D linear in x.
    """
    clean, twins = [], []
    for x, e in zip(halves, noise, strict=True):
        if e is None:
            clean.append(x if augment is None else augment(x))
            continue
        x = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 would round the step away
        pair = torch.cat([x, x + sigma * e])
        a, b = (pair if augment is None else augment(pair, copies=2)).chunk(2)
        clean.append(a)
        twins.append(b)
    sizes = [x.shape[0] for x in clean + twins]
    real_logits, fake_logits, *twin_logits = D(torch.cat(clean + twins)).reshape(-1).split(sizes)
    nudged = [logit for logit, e in zip((real_logits, fake_logits), noise, strict=True)
              if e is not None]
    wide = torch.promote_types(real_logits.dtype, torch.float32)  # bf16 logits differ coarsely
    squares = [(twin.to(wide) - logit.to(wide)).square() / sigma**2
               for twin, logit in zip(twin_logits, nudged, strict=True)]
    return real_logits, fake_logits, squares


@dataclass(frozen=True)
class ZeroCentredLoss(GANLoss):
    """A loss regularised by zero-centred penalties, (r1_gamma / 2) E||grad D(x_real)||^2 and
    (r2_gamma / 2) E||grad D(x_fake)||^2, taken through the augmentation: exactly, by a double
    backward in passes of their own, or (``penalty`` finite-difference) estimated by
    (D(x + sigma e) - D(x))^2 / sigma^2 inside D's main pass, which needs no double backward.
    """

    r1_gamma: float = R1_GAMMA
    penalty: str = "exact"
    penalty_sigma: float = PENALTY_SIGMA
    share: BatchShare = field(default=WHOLE_BATCH, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.penalty not in PENALTIES:
            raise LossError(f"unknown penalty {self.penalty!r}; choose from "
                            f"{', '.join(PENALTIES)}")
        if not self.penalty_sigma > 0:
            raise LossError(f"penalty_sigma must be positive, got {self.penalty_sigma}")

    @property
    def gammas(self) -> tuple[float, float]:
        """The weights of R1 (reals) and R2 (fakes)."""
        return self.r1_gamma, 0.0

    @property
    def regularised(self) -> bool:
        return any(gamma > 0 for gamma in self.gammas)

    @property
    def penalty_in_main_pass(self) -> bool:
        return self.penalty == "finite-difference"

    def d_main(self, D: nn.Module, real: Tensor, fake: Tensor,
               augment: Augment | None = None, *, penalty_scale: float = 0.0,
               noise: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Stats]:
        if not (penalty_scale and self.penalty_in_main_pass):
            return super().d_main(D, real, fake, augment)
        if noise is None:
            noise = (twin_noise(real, self.share), twin_noise(fake, self.share))
        nudged = (self.gammas[0] > 0, self.gammas[1] > 0)
        # In float32 even under bf16 autocast: bf16 activations round each logit by far more
        # than sigma moves it (benchmarks/penalty_accuracy.py: R1 overestimated 3.6x for a
        # trained digits D and 31x for transgan-s's at sigma 0.01).
        with torch.autocast(real.device.type, enabled=False):
            real_logits, fake_logits, squares = finite_difference_pass(
                D, (real, fake.detach()), (noise[0] if nudged[0] else None,
                                           noise[1] if nudged[1] else None),
                self.penalty_sigma, augment)
        loss, stats = self.scored(real_logits, fake_logits)
        estimates = iter(squares)
        for name, gamma, nudge in zip(("r1", "r2"), self.gammas, nudged, strict=True):
            if nudge:
                value = next(estimates).mean()
                loss = loss + penalty_scale * gamma / 2 * value
                stats[name] = value.detach()
        return loss, stats


@dataclass(frozen=True)
class LogisticR1(ZeroCentredLoss):
    """Non-saturating logistic loss with the R1 penalty (gamma / 2) E[||grad D(x)||^2]."""

    name: ClassVar[str] = "logistic-r1"

    def d_term(self, real_logits: Tensor, fake_logits: Tensor, stats: Stats) -> Tensor:
        return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()

    def d_regulariser(self, D: nn.Module, real: Tensor, fake: Tensor,
                      augment: Augment | None = None, *,
                      scale: float = 1.0) -> tuple[Tensor, Stats]:
        r1 = r1_penalty(D, real, augment)
        return scale * (self.r1_gamma / 2) * r1, {"r1": r1.detach()}

    def g_term(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(-fake_logits).mean()


@dataclass(frozen=True)
class RelativisticPairing(ZeroCentredLoss):
    """R3GAN's loss: each real image paired with a fake one, D: softplus(-(D(x_r) - D(x_f))),
    G: softplus(-(D(x_f) - D(x_r))) on a real batch of its own, and the zero-centred penalties
    (r1_gamma / 2) R1 + (r2_gamma / 2) R2, taken through the augmentation."""

    name: ClassVar[str] = "rpgan"
    g_needs_reals: ClassVar[bool] = True
    r2_gamma: float = R2_GAMMA

    @property
    def gammas(self) -> tuple[float, float]:
        return self.r1_gamma, self.r2_gamma

    def real_sign(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """E[sign(D(x_r) - D(x_f))] over the pairs: only differences of logits mean anything."""
        return (real_logits - fake_logits).sign().mean()

    def d_term(self, real_logits: Tensor, fake_logits: Tensor, stats: Stats) -> Tensor:
        return F.softplus(-(real_logits - fake_logits)).mean()

    def d_regulariser(self, D: nn.Module, real: Tensor, fake: Tensor,
                      augment: Augment | None = None, *,
                      scale: float = 1.0) -> tuple[Tensor, Stats]:
        r1, r2 = r1_r2_penalties(D, real, fake, augment)
        term = scale * (self.r1_gamma / 2 * r1 + self.r2_gamma / 2 * r2)
        return term, {"r1": r1.detach(), "r2": r2.detach()}

    def g_main(self, D: nn.Module, fake: Tensor, augment: Augment | None = None,
               real_D: Callable[[], Tensor] | None = None) -> tuple[Tensor, Stats]:
        if real_D is None:
            raise LossError("the rpgan loss scores G's samples against real images; none given")
        fake_logits = logits(D, fake, augment)
        with torch.no_grad():
            real_logits = real_D()
        loss = F.softplus(-(fake_logits - paired(real_logits, fake_logits.shape[0]))).mean()
        return loss, {"g_loss": loss.detach(), "g_d_fake": fake_logits.detach().mean()}


def paired(real_logits: Tensor, count: int) -> Tensor:
    """``count`` real logits to pair with as many fakes: the real batch repeated or cut (G's
    batch may differ from D's)."""
    repeats = -(-count // real_logits.shape[0])
    return real_logits.repeat(repeats)[:count]


def make_loss(name: str, **settings: float | str | BatchShare) -> GANLoss:
    """The loss called ``name`` (its class loaded from ``train.choices.LOSS_REGISTRY``), given
    those of ``settings`` it takes (gp_weight, drift_weight, r1_gamma, r2_gamma, penalty,
    penalty_sigma, share); the others are ignored, but a finite-difference penalty for a loss
    without zero-centred penalties is an error."""
    if name not in LOSS_REGISTRY:
        raise LossError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    entry = LOSS_REGISTRY[name]
    if settings.get("penalty", "exact") != "exact" and not entry.zero_centred:
        raise LossError(f"the {name} loss has no zero-centred penalty for a "
                        f"{settings['penalty']} estimate to stand for")
    cls: type[GANLoss] = load(entry.target)
    taken = {f.name: settings[f.name] for f in dataclasses.fields(cls) if f.name in settings}
    return cls(**taken)  # type: ignore[arg-type]
