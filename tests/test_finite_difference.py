"""The finite-difference penalty (--penalty finite-difference) against the exact R1 / R2:
closed forms on linear and quadratic Ds, D's parameter gradient in expectation, the tied
augmentation of an image and its twin, and the training step's paths (one fused D pass,
accumulation, lazy regularisation, classes, the exact path left bit for bit as it was)."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from conftest import tiny_step, weights_after_cycles
from test_losses import AttentionD, LinearD
from torch import Tensor, nn

from transgan.bench import update_disagreement
from transgan.errors import LossError
from transgan.train.augment import DiffAugment
from transgan.train.losses import (
    finite_difference_pass,
    make_loss,
    r1_penalty,
    r1_r2_penalties,
    twin_noise,
)

SHAPE = (2, 3, 3)
NUMEL = math.prod(SHAPE)
SIGMA = 0.01


class QuadraticD(nn.Module):
    """D(x) = 1/2 x'Ax + b'x with A symmetric: its input gradient is Ax + b."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        m = torch.randn(NUMEL, NUMEL, generator=generator, dtype=torch.float64) / NUMEL
        self.A = nn.Parameter(m + m.T)
        self.b = nn.Parameter(torch.randn(NUMEL, generator=generator, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        v = x.flatten(1)
        return 0.5 * ((v @ self.A) * v).sum(dim=1) + v @ self.b

    def gradient(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.A + self.b


class SmallMLP(nn.Module):
    """A non-linear D of a few parameters, for gradients with respect to them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(NUMEL, 16), nn.Tanh(),
                                 nn.Linear(16, 1)).double()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


def _images(n: int, seed: int = 0) -> Tensor:
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _estimate(D: nn.Module, x: Tensor, augment: DiffAugment | None = None) -> Tensor:
    """Per image, (D(x + sigma e) - D(x))^2 / sigma^2 for one direction e each."""
    _, _, (squares,) = finite_difference_pass(D, (x, x[:0]), (twin_noise(x), None), SIGMA,
                                              augment)
    return squares


def _mean_and_error(values: Tensor) -> tuple[float, float]:
    """The mean and its standard error."""
    return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


def test_on_a_linear_d_each_draw_is_the_squared_directional_derivative() -> None:
    torch.manual_seed(0)
    D, x = LinearD(NUMEL), _images(20_000)
    noise = twin_noise(x)
    _, _, (squares,) = finite_difference_pass(D, (x, x[:0]), (noise, None), SIGMA)
    # Exact for a linear D: (w'(x + sigma e) - w'x)^2 / sigma^2 = (w'e)^2, draw by draw (up
    # to the rounding of sigma e, a float32 step).
    torch.testing.assert_close(squares, (noise.double().flatten(1) @ D.w).square(),
                               rtol=1e-4, atol=1e-9)
    # So its mean is R1 = ||w||^2, within the sampling error (std of (w'e)^2 is sqrt2 ||w||^2).
    mean, error = _mean_and_error(squares)
    r1 = float(r1_penalty(D, x))
    assert r1 == pytest.approx(float(D.w.square().sum()))
    assert abs(mean - r1) < 4 * error and error < 0.015 * r1


def test_on_a_quadratic_d_the_estimate_is_r1_up_to_sigma_squared() -> None:
    torch.manual_seed(1)
    D, x = QuadraticD(), _images(64, seed=2).repeat(400, 1, 1, 1)
    noise = twin_noise(x)
    _, _, (squares,) = finite_difference_pass(D, (x, x[:0]), (noise, None), SIGMA)
    g, e = D.gradient(x), noise.double().flatten(1)
    # D(x + s e) - D(x) = s g'e + s^2/2 e'Ae, so the estimate is (g'e + s/2 e'Ae)^2.
    curvature = ((e @ D.A) * e).sum(dim=1)
    torch.testing.assert_close(squares, ((g * e).sum(dim=1) + SIGMA / 2 * curvature).square(),
                               rtol=1e-4, atol=1e-8)
    exact = r1_penalty(D, x)
    torch.testing.assert_close(exact, g.square().sum(dim=1).mean())
    mean, error = _mean_and_error(squares)
    assert abs(mean - float(exact)) < 4 * error and error < 0.02 * float(exact)


def _gradient(D: nn.Module) -> Tensor:
    """D's parameter gradient as one vector (zero for a parameter the penalty ignores)."""
    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in D.parameters()]
    D.zero_grad(set_to_none=True)
    return torch.cat([g.flatten() for g in grads])


def test_its_gradient_in_d_is_the_exact_penalty_gradient_in_expectation() -> None:
    D = SmallMLP()
    x = _images(8, seed=4)
    r1_penalty(D, x).backward()
    exact = _gradient(D)
    torch.manual_seed(6)
    _estimate(D, x.repeat(20_000, 1, 1, 1)).mean().backward()
    estimate = _gradient(D)
    cosine = torch.nn.functional.cosine_similarity(estimate, exact, dim=0)
    assert cosine > 0.995
    assert float(estimate.norm() / exact.norm()) == pytest.approx(1.0, abs=0.03)


def test_an_image_and_its_twin_are_augmented_with_the_same_draws() -> None:
    augment = DiffAugment("translation,cutout,color", "diffaugment", p=0.5)
    x = torch.rand(6, 3, 8, 8) * 2 - 1
    a, b = augment(torch.cat([x, x]), copies=2).chunk(2)
    assert torch.equal(a, b)
    torch.manual_seed(0)
    a, b = augment(torch.cat([x, x])).chunk(2)  # without copies, each row its own draws
    assert not torch.equal(a, b)


def test_through_the_augmentation_it_estimates_the_exact_penalty_through_it() -> None:
    torch.manual_seed(0)
    D, x = LinearD(3 * 8 * 8), torch.rand(64, 3, 8, 8, dtype=torch.float64) * 2 - 1
    augment = DiffAugment("translation,cutout,color", "diffaugment")
    exact = torch.stack([r1_penalty(D, x, augment).detach() for _ in range(200)])
    estimate = torch.cat([_estimate(D, x, augment).detach() for _ in range(200)])
    # The augmentation changes the gradient (cut-out pixels have none): R1 < ||w||^2.
    assert float(exact.mean()) < 0.97 * float(D.w.detach().square().sum())
    mean, error = _mean_and_error(estimate)
    assert abs(mean - float(exact.mean())) < 4 * math.hypot(error, float(exact.std()) / 14)


@pytest.mark.parametrize(("name", "keys"), [("logistic-r1", {"r1"}), ("rpgan", {"r1", "r2"})])
def test_the_penalty_rides_on_one_d_pass_with_fused_attention(name: str, keys: set[str]) -> None:
    torch.manual_seed(0)
    D = AttentionD()
    real, fake = torch.randn(2, 2, 3, 4, 4)
    loss = make_loss(name, penalty="finite-difference")
    assert loss.penalty_in_main_pass
    total, stats = loss.d_main(D, real, fake, penalty_scale=2.0)
    total.backward()
    assert D.flash_enabled == [True]  # one pass, fused kernels allowed
    assert keys <= set(stats) and all(torch.isfinite(stats[k]) for k in keys)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    plain, plain_stats = loss.d_main(D, real, fake)  # off a penalty step: no twins, no terms
    assert not keys & set(plain_stats)


def test_its_weight_and_scale_are_the_exact_penalty_ones() -> None:
    torch.manual_seed(0)
    D, real, fake = LinearD(NUMEL), _images(4, 1), _images(4, 2)
    noise = (twin_noise(real), twin_noise(fake))
    fd = make_loss("rpgan", r1_gamma=3.0, r2_gamma=5.0, penalty="finite-difference")
    main, _ = fd.d_main(D, real, fake)
    total, stats = fd.d_main(D, real, fake, penalty_scale=2.0, noise=noise)
    expected = 2.0 * (3.0 / 2 * stats["r1"] + 5.0 / 2 * stats["r2"])
    torch.testing.assert_close(total - main, expected)
    for key, e in zip(("r1", "r2"), noise, strict=True):
        torch.testing.assert_close(stats[key], (e.double().flatten(1) @ D.w).square().mean())
    r1, r2 = r1_r2_penalties(D, real, fake)  # what they estimate: ||w||^2 each
    torch.testing.assert_close(r1, r2)


def test_a_finite_difference_for_a_loss_without_zero_centred_penalties_is_refused() -> None:
    for name in ("wgangp-eps", "hinge"):
        with pytest.raises(LossError, match="no zero-centred penalty"):
            make_loss(name, penalty="finite-difference")
    with pytest.raises(LossError, match="penalty_sigma must be positive"):
        make_loss("rpgan", penalty="finite-difference", penalty_sigma=0.0)
    with pytest.raises(LossError, match="unknown penalty"):
        make_loss("logistic-r1", penalty="numeric")


REAL = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1

# Weights after two cycles of the exact penalties' tiny runs (one thread), as they were before
# the finite-difference penalty existed: its code paths must leave the exact ones bit for bit.
EXACT_DIGESTS = {
    "rpgan": "f6584e81886b01db",
    "logistic-r1": "fd324f5517ee97e5",
    "wgangp-eps": "c36df00d1e80b30d",
}


def _digest(weights: dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode())
        digest.update(weights[key].detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def test_the_exact_penalties_train_bit_for_bit_as_before() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the digests are of one thread's float sums
    try:
        digests = {}
        for loss, extra in (("rpgan", {}), ("logistic-r1", {"lazy_reg": 2}), ("wgangp-eps", {})):
            torch.manual_seed(0)
            step = tiny_step(loss=loss, **extra)
            real = torch.rand(16, 1, 16, 16) * 2 - 1
            digests[loss] = _digest(weights_after_cycles(step, real))
    finally:
        torch.set_num_threads(threads)
    assert digests == EXACT_DIGESTS


def test_accumulation_gives_the_weights_of_one_batch() -> None:
    # No augmentation (its draws depend on the chunking); the directions are the batch's.
    # (Not rpgan: its logits' offset has no gradient, so Adam turns rounding into steps.)
    common = {"loss": "logistic-r1", "penalty": "finite-difference", "augment": "none",
              "r1_gamma": 1.0}
    one = weights_after_cycles(tiny_step(**common), REAL, cycles=3)
    four = weights_after_cycles(tiny_step(**common, accum=4), REAL, cycles=3)
    exact = weights_after_cycles(tiny_step(**{**common, "penalty": "exact"}), REAL, cycles=3)
    for key, value in one.items():
        torch.testing.assert_close(four[key], value, rtol=1e-4, atol=1e-6, msg=key)
    assert any(not torch.equal(exact[key], value) for key, value in one.items())


def test_lazy_regularisation_takes_the_twins_on_penalty_steps_only() -> None:
    step = tiny_step(loss="logistic-r1", penalty="finite-difference", lazy_reg=2, n_critic=1)
    batches = []
    original = step.D_fwd.forward

    def recording(x: Tensor, *args: Tensor) -> Tensor:
        batches.append(x.shape[0])
        return original(x, *args)

    step.D_fwd.forward = recording  # type: ignore[method-assign]
    with_penalty = [("r1" in step.cycle(lambda: REAL)[0]) for _ in range(4)]
    assert with_penalty == [True, False, True, False]
    # D steps: reals, fakes and the reals' twins (48), or reals and fakes (32); G steps: 16.
    assert batches == [48, 16, 32, 16, 48, 16, 32, 16]


def test_a_conditional_d_scores_each_twin_with_its_images_class() -> None:
    step = tiny_step(loss="rpgan", penalty="finite-difference", conditional=True)
    seen: list[tuple[int, Tensor]] = []
    original = step.D_fwd.forward

    def recording(x: Tensor, labels: Tensor) -> Tensor:
        seen.append((x.shape[0], labels))
        return original(x, labels)

    step.D_fwd.forward = recording  # type: ignore[method-assign]
    labels = torch.arange(16) % 10
    stats = step.cycle(lambda: (REAL, labels))
    size, given = seen[0]
    assert size == 64 and torch.equal(given, labels.repeat(4))  # real, fake and both twins
    assert {"r1", "r2"} <= set(stats[0]) and torch.isfinite(stats[0]["d_loss"])


def test_compiled_twins_match_eager_within_the_difference_s_rounding() -> None:
    common = {"loss": "rpgan", "penalty": "finite-difference"}
    start = {f"{name}.{key}": value.clone() for name in ("G", "D", "G_ema")
             for key, value in getattr(tiny_step(**common), name).state_dict().items()}
    eager = weights_after_cycles(tiny_step(**common), REAL)
    step = tiny_step(**common, compile=True)
    compiled = weights_after_cycles(step, REAL)
    assert step.D_fwd is not step.D  # the twin pass ran through the compiled D
    # The difference of two logits over sigma^2 scales their rounding by 1 / sigma: the
    # compiled kernels' rounding moves the weights by about 1% of their training move
    # (0.1% with the exact penalty), where a wrong twin pass would move them as far again.
    assert update_disagreement(start, eager, compiled) < 0.03


def test_under_bf16_autocast_the_twins_are_scored_in_float32() -> None:
    torch.manual_seed(0)
    step = tiny_step(loss="rpgan", penalty="finite-difference")
    fake = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    noise = (twin_noise(REAL), twin_noise(fake))
    _, fp32 = step.loss.d_main(step.D, REAL, fake, penalty_scale=1.0, noise=noise)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, amp = step.loss.d_main(step.D, REAL, fake, penalty_scale=1.0, noise=noise)
        # What a bf16 pass would give: its rounding swamps the difference sigma makes.
        _, _, (raw, _) = finite_difference_pass(step.D, (REAL, fake), noise, SIGMA)
    for key in ("r1", "r2"):
        torch.testing.assert_close(amp[key], fp32[key], rtol=1e-5, atol=0)
    assert float(raw.mean()) > 1.5 * float(fp32["r1"])
