"""Tests for the CNN baseline generator and discriminator."""

from __future__ import annotations

import pytest
import torch

from transgan.models.cnn import (
    CNNDiscriminator,
    CNNDiscriminatorConfig,
    CNNGenerator,
    CNNGeneratorConfig,
)

# (img_size, bottom) pairs the generator supports; 48 px needs a 6x6 bottom grid.
SIZES = [(16, 4), (32, 4), (48, 6)]


def _small_g(img_size: int = 32, channels: int = 3, bottom: int = 4) -> CNNGenerator:
    cfg = CNNGeneratorConfig(
        img_size=img_size, channels=channels, latent_dim=16, width=16, bottom=bottom
    )
    return CNNGenerator(cfg)


def _small_d(img_size: int = 32, channels: int = 3) -> CNNDiscriminator:
    return CNNDiscriminator(CNNDiscriminatorConfig(img_size=img_size, channels=channels, width=16))


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("img_size", "bottom"), SIZES)
def test_generator_shape_and_range(img_size: int, bottom: int, channels: int) -> None:
    torch.manual_seed(0)
    g = _small_g(img_size, channels, bottom)
    assert (g.img_size, g.channels, g.latent_dim) == (img_size, channels, 16)
    out = g(torch.randn(3, 16))
    assert out.shape == (3, channels, img_size, img_size)
    assert out.min() >= -1.0 and out.max() <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("img_size", [16, 32, 48, 64])
def test_discriminator_shape(img_size: int, channels: int) -> None:
    torch.manual_seed(0)
    d = _small_d(img_size, channels)
    out = d(torch.randn(2, channels, img_size, img_size))
    assert out.shape == (2,)
    assert torch.isfinite(out).all()
    assert d(torch.randn(1, channels, img_size, img_size)).shape == (1,)


@pytest.mark.parametrize(("img_size", "n_blocks"), [(16, 3), (32, 4), (48, 5), (64, 5)])
def test_discriminator_depth_follows_img_size(img_size: int, n_blocks: int) -> None:
    assert len(_small_d(img_size).blocks) == n_blocks


def test_any_generator_pairs_with_any_discriminator() -> None:
    g = _small_g(32, 1)
    d = _small_d(32, 1)
    assert d(g(torch.randn(2, g.latent_dim))).shape == (2,)


@pytest.mark.parametrize(("img_size", "bottom"), [(48, 4), (24, 4), (4, 4), (30, 4), (32, 0)])
def test_generator_rejects_bad_img_size(img_size: int, bottom: int) -> None:
    with pytest.raises(ValueError, match="img_size"):
        CNNGeneratorConfig(img_size=img_size, bottom=bottom)


def test_discriminator_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="img_size"):
        CNNDiscriminatorConfig(img_size=4)
    with pytest.raises(ValueError, match="channels"):
        CNNDiscriminatorConfig(channels=0)


def test_wrong_input_shapes_raise() -> None:
    with pytest.raises(ValueError):
        _small_g()(torch.randn(2, 17))
    with pytest.raises(ValueError):
        _small_d(32, 3)(torch.randn(2, 1, 32, 32))


def test_gradients_reach_all_parameters() -> None:
    torch.manual_seed(0)
    g = _small_g()
    d = _small_d()
    d(g(torch.randn(4, g.latent_dim))).mean().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_gradient_penalty_double_backward() -> None:
    torch.manual_seed(0)
    d = _small_d()
    real = torch.randn(4, 3, 32, 32)
    fake = torch.randn(4, 3, 32, 32)
    alpha = torch.rand(4, 1, 1, 1)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
    penalty.backward()
    # With piecewise-linear ReLUs, dD/dx does not depend on the biases (zero or no gradient).
    for name, p in d.named_parameters():
        if name.endswith("bias"):
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # A second training step must still work after the power-iteration buffers were updated.
    x2 = fake.clone().requires_grad_(True)
    (grad2,) = torch.autograd.grad(d(x2).sum(), x2, create_graph=True)
    grad2.square().sum().backward()


def test_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    g, d = _small_g(), _small_d()
    # Train-mode passes update BN running stats and the spectral-norm power-iteration vectors.
    for _ in range(3):
        d(g(torch.randn(4, g.latent_dim)))
    g_state, d_state = g.state_dict(), d.state_dict()
    assert any(key.endswith("_u") for key in d_state)
    assert any(key.endswith("_v") for key in d_state)

    torch.manual_seed(1)
    g2, d2 = _small_g(), _small_d()
    g2.load_state_dict(g_state)
    d2.load_state_dict(d_state)
    for model in (g, d, g2, d2):
        model.eval()
    z = torch.randn(4, g.latent_dim)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(g(z), g2(z))
        assert torch.equal(d(x), d2(x))
        assert torch.equal(d(g(z)), d2(g2(z)))


def test_default_parameter_counts() -> None:
    g = CNNGenerator(CNNGeneratorConfig())
    d = CNNDiscriminator(CNNDiscriminatorConfig())
    n_g, n_d = _n_params(g), _n_params(d)
    print(f"CNN 32 px defaults: G {n_g:,} params, D {n_d:,} params")
    assert 1e6 < n_g < 1e7
    assert 5e5 < n_d < 5e6
    out = d(g(torch.randn(2, g.latent_dim)))
    assert out.shape == (2,)


def test_discriminator_spectral_norm_everywhere() -> None:
    d = _small_d(48)
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers
    for layer in layers:
        assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
    g = _small_g()
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in g.modules())
