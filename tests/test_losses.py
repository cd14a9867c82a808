"""Tests for the GAN losses against hand-computed values on linear and attention toy Ds."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.train.losses import (
    LOSSES,
    LossConfig,
    LossError,
    d_loss,
    g_loss,
    gradient_penalty,
    r1_penalty,
)


class LinearD(nn.Module):
    """D(x) = w . flatten(x) + b, so its input gradient is w everywhere."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.7, numel, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w + self.b


class AttentionD(nn.Module):
    """Tiny D with one fused-attention layer over pixels; records if flash SDPA was enabled."""

    def __init__(self, channels: int = 3, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(channels, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.head = nn.Linear(dim, 1)
        self.flash_enabled: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.flash_enabled.append(torch.backends.cuda.flash_sdp_enabled())
        tokens = self.embed(x.flatten(2).transpose(1, 2))
        q, k, v = self.qkv(tokens).unsqueeze(1).chunk(3, dim=-1)
        attended = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        return self.head(attended.mean(dim=1)).squeeze(-1)


SHAPE = (4, 2, 3, 3)


@pytest.fixture()
def setup() -> tuple[LinearD, Tensor, Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    D = LinearD(math.prod(SHAPE[1:]))
    real = torch.randn(SHAPE, dtype=torch.float64)
    fake = torch.randn(SHAPE, dtype=torch.float64)
    return D, real, fake, D(real).detach(), D(fake).detach()


def _close(a: Tensor, b: Tensor | float) -> bool:
    return torch.allclose(a, torch.as_tensor(b, dtype=a.dtype), rtol=1e-9, atol=1e-9)


def test_penalties_exact_on_linear_d(setup) -> None:
    D, real, fake, _, _ = setup
    w_norm = D.w.detach().norm()
    assert _close(gradient_penalty(D, real, fake), (w_norm - 1) ** 2)
    assert _close(r1_penalty(D, real), w_norm**2)


def test_wgangp_eps_d_loss_value(setup) -> None:
    D, real, fake, dr, df = setup
    cfg = LossConfig()
    loss, stats = d_loss(cfg, D, real, fake)
    gp = (D.w.detach().norm() - 1) ** 2
    drift = dr.mean() ** 2
    assert _close(loss, -dr.mean() + df.mean() + 10.0 * gp + 1e-3 * drift)
    assert _close(stats["d_real"], dr.mean()) and _close(stats["d_fake"], df.mean())
    assert _close(stats["gp"], gp) and _close(stats["drift"], drift)
    assert all(not v.requires_grad and v.dim() == 0 for v in stats.values())


def test_wgangp_eps_drift_is_squared_mean_real_logit() -> None:
    # Official TransGAN (functions.py, wgangp-eps): d_loss += (torch.mean(real_validity) ** 2)
    # * 1e-3. Real logits 1 and 3: (mean)^2 = 2^2 = 4, where the mean of squares would be 5.
    real = torch.tensor([[1.0], [3.0]])
    fake = torch.tensor([[0.5], [-1.5]])
    identity_d = lambda x: x.sum(dim=1)  # noqa: E731
    loss, stats = d_loss(LossConfig(gp_weight=0.0), identity_d, real, fake)
    assert stats["drift"].item() == 4.0
    assert loss.item() == pytest.approx(-2.0 + (-0.5) + 1e-3 * 4.0)
    unit, _ = d_loss(LossConfig(gp_weight=0.0, drift_weight=1.0), identity_d, real, fake)
    bare, _ = d_loss(LossConfig(gp_weight=0.0, drift_weight=0.0), identity_d, real, fake)
    assert (unit - bare).item() == pytest.approx(4.0)


def test_penalty_off_and_scaled(setup) -> None:
    D, real, fake, _, _ = setup
    for name, key, weight in (("wgangp-eps", "gp", 10.0), ("logistic-r1", "r1", 5.0)):
        cfg = LossConfig(name=name)
        full, stats = d_loss(cfg, D, real, fake)
        bare, bare_stats = d_loss(cfg, D, real, fake, penalty=False)
        scaled, _ = d_loss(cfg, D, real, fake, penalty_scale=4.0)
        assert key not in bare_stats
        assert _close(full - bare, weight * stats[key])
        assert _close(scaled - bare, 4.0 * weight * stats[key])


def test_hinge_values(setup) -> None:
    D, real, fake, dr, df = setup
    cfg = LossConfig(name="hinge")
    loss, stats = d_loss(cfg, D, real, fake)
    assert _close(loss, F.relu(1 - dr).mean() + F.relu(1 + df).mean())
    assert "gp" not in stats and "r1" not in stats
    g, _ = g_loss(cfg, D, fake)
    assert _close(g, -df.mean())


def test_hinge_on_known_logits() -> None:
    real = torch.tensor([2.0, 0.5, -1.0]).view(3, 1)
    fake = torch.tensor([-2.0, 0.0, 1.0]).view(3, 1)
    loss, _ = d_loss(LossConfig(name="hinge"), lambda x: x.sum(dim=1), real, fake)
    # real: relu(1 - [2, 0.5, -1]) = [0, 0.5, 2]; fake: relu(1 + [-2, 0, 1]) = [0, 1, 2]
    assert torch.allclose(loss, torch.tensor(2.5 / 3 + 3.0 / 3))


def test_logistic_r1_values(setup) -> None:
    D, real, fake, dr, df = setup
    cfg = LossConfig(name="logistic-r1", r1_gamma=2.0)
    loss, stats = d_loss(cfg, D, real, fake)
    r1 = D.w.detach().norm() ** 2
    assert _close(loss, F.softplus(df).mean() + F.softplus(-dr).mean() + 1.0 * r1)
    assert _close(stats["r1"], r1)
    g, _ = g_loss(cfg, D, fake)
    assert _close(g, F.softplus(-df).mean())


def test_g_loss_sign_and_gradient(setup) -> None:
    D, _, fake, _, df = setup
    fake = fake.clone().requires_grad_(True)
    g, stats = g_loss(LossConfig(), D, fake)
    assert _close(g, -df.mean())
    g.backward()
    # Lowering the loss means raising D(fake): the step -grad points along +w.
    expected = -D.w.detach().expand(SHAPE[0], -1) / SHAPE[0]
    assert torch.allclose(fake.grad.flatten(1), expected)
    assert _close(stats["g_d_fake"], df.mean())


def test_d_loss_detaches_fake(setup) -> None:
    D, real, fake, _, _ = setup
    fake = fake.clone().requires_grad_(True)
    for name in LOSSES:
        loss, _ = d_loss(LossConfig(name=name), D, real, fake)
        loss.backward()
        assert fake.grad is None
        assert D.w.grad is not None and torch.isfinite(D.w.grad).all()


def test_augment_applied_to_every_d_input(setup) -> None:
    D, real, fake, _, _ = setup
    calls: list[int] = []

    def augment(x: Tensor) -> Tensor:
        calls.append(x.shape[0])
        return x

    expected = {"wgangp-eps": 3, "hinge": 2, "logistic-r1": 3}
    for name in LOSSES:
        calls.clear()
        d_loss(LossConfig(name=name), D, real, fake, augment)
        assert len(calls) == expected[name]
        calls.clear()
        g_loss(LossConfig(name=name), D, fake, augment)
        assert len(calls) == 1


def test_penalties_augment_raw_images_once(setup) -> None:
    D, real, fake, _, _ = setup
    seen: list[Tensor] = []

    def augment(x: Tensor) -> Tensor:
        seen.append(x.detach())
        return x + 100.0

    for name in ("wgangp-eps", "logistic-r1"):
        seen.clear()
        d_loss(LossConfig(name=name), D, real, fake, augment)
        assert len(seen) == 3
        # Raw images lie within [-10, 10]; an augmented one would be shifted by 100.
        assert all(x.abs().max() < 50 for x in seen), name


@pytest.mark.parametrize("name", ["wgangp-eps", "logistic-r1"])
def test_attention_d_double_backward(name: str) -> None:
    torch.manual_seed(0)
    D = AttentionD()
    real, fake = torch.randn(2, 2, 3, 4, 4)
    loss, stats = d_loss(LossConfig(name=name), D, real, fake)
    loss.backward()
    grads = [p.grad for p in D.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(stats["gp" if name == "wgangp-eps" else "r1"])
    # One D pass over real and fake together, then the penalty's pass on the math backend.
    assert D.flash_enabled == [True, False]
    assert torch.backends.cuda.flash_sdp_enabled()


def test_unknown_loss_name() -> None:
    with pytest.raises(LossError, match="unknown loss 'x'; choose from wgangp-eps, hinge"):
        LossConfig(name="x")
    cfg = LossConfig()
    cfg.name = "x"
    with pytest.raises(LossError, match="logistic-r1"):
        d_loss(cfg, nn.Identity(), torch.zeros(1), torch.zeros(1))
    with pytest.raises(LossError):
        LossConfig(gp_weight=-1.0)
