"""Generator, discriminator, presets and the public model API."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import transgan
from transgan.cli import main
from transgan.errors import ConfigError
from transgan.models import (
    DiscriminatorConfig,
    GeneratorConfig,
    TransformerDiscriminator,
    TransformerGenerator,
    config_from_dict,
    config_to_dict,
    count_parameters,
    get_preset,
)
from transgan.nn.attention import Attention
from transgan.nn.blocks import PixelNorm
from transgan.train.recipes import options_for
from transgan.train.training import build_run

EXPECTED_PRESETS = {
    "transgan-s", "transgan-m", "transgan-l", "transgan-xl", "transgan-v2-cifar10",
    "transgan-v2-stl10", "transgan-v2-celeba128", "digits", "digits-conditional", "cnn", "cnn-g",
    "cnn-d",
}


def test_the_listing_counts_the_parameters_a_run_of_the_preset_trains(tmp_path, capsys) -> None:
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for name in ("digits", "digits-conditional"):
        step = build_run(options_for(name)).step
        assert rows[name][4:6] == [f"{count_parameters(step.G) / 1e6:.2f}M",
                                   f"{count_parameters(step.D) / 1e6:.2f}M"]
    assert rows["digits-conditional"][4] != rows["digits"][4]  # the class embedding's inputs


def test_the_listings_table_holds_the_counts_of_every_presets_built_models() -> None:
    from transgan.cli.models import built_parameters
    from transgan.models.parameters import PRESET_PARAMETERS

    assert set(PRESET_PARAMETERS) == set(transgan.list_presets())
    for name in transgan.list_presets():
        assert PRESET_PARAMETERS[name] == built_parameters(get_preset(name)), name


def test_registry_has_the_named_presets() -> None:
    assert set(transgan.list_presets()) >= EXPECTED_PRESETS


@pytest.mark.parametrize("name", transgan.list_presets())
def test_every_preset_builds_and_runs(name: str) -> None:
    preset = get_preset(name)
    torch.manual_seed(0)
    g = transgan.build_generator(name)
    d = transgan.build_discriminator(name)
    print(f"{name}: G {count_parameters(g):,} D {count_parameters(d):,} parameters")
    assert g.img_size == preset.architecture.img_size and g.latent_dim > 0
    with torch.no_grad():
        img = g(torch.randn(1, g.latent_dim))
        logits = d(img)
    size = preset.architecture.img_size
    assert img.shape == (1, preset.architecture.channels, size, size)
    assert torch.isfinite(img).all() and img.std() > 0
    if getattr(preset.architecture.generator, "output_act", "tanh") == "tanh":
        assert img.abs().max() <= 1.0
    assert logits.shape == (1,) and torch.isfinite(logits).all()


@pytest.mark.parametrize(
    ("name", "depths", "width"),
    [("transgan-s", (5, 2, 2), 384), ("transgan-m", (5, 2, 2), 512),
     ("transgan-l", (5, 2, 2), 768), ("transgan-xl", (5, 4, 2), 1024)],
)
def test_v1_sizes_follow_table_4(name: str, depths: tuple[int, ...], width: int) -> None:
    g, d = get_preset(name).architecture.generator, get_preset(name).architecture.discriminator
    assert g.depths == depths and g.width == width
    assert (d.patch, d.depth, d.width) == (4, 7, 384)


def test_v2_presets_follow_the_official_scripts() -> None:
    preset = get_preset("transgan-v2-cifar10")
    g, d = preset.architecture.generator, preset.architecture.discriminator
    assert (g.latent_dim, g.width, g.depths, g.rel_pos_bias) == (256, 1024, (5, 4, 2), True)
    assert (d.width, d.depth, d.patch, d.multiscale, d.rel_pos_bias) == (384, 3, 2, True, True)
    stl = get_preset("transgan-v2-stl10").architecture.generator
    assert (stl.img_size, stl.latent_dim, stl.bottom, stl.depths, stl.norm) == (
        48, 512, 12, (7, 5, 3), "pixelnorm")


def test_generator_stages_shrink_width_by_pixel_shuffle() -> None:
    g = transgan.build_generator("transgan-s")
    assert [s.side for s in g.stages] == [8, 16, 32]
    assert [s.pos_embed.shape[-1] for s in g.stages] == [384, 96, 24]


def test_bicubic_stages_keep_width_and_grid_attention_is_used() -> None:
    cfg = get_preset("transgan-v2-celeba128").architecture.generator
    assert cfg.widths == (512, 512, 512, 128, 32)
    g = TransformerGenerator(cfg)
    windows = [b.attn.grid_window for s in g.stages for b in s.blocks]
    assert windows[: cfg.depths[0]] == [0] * cfg.depths[0]
    assert windows[-1] == 16


def _small_g(**kw: object) -> TransformerGenerator:
    fields: dict[str, object] = {"depths": (1, 1, 1), **kw}
    cfg = GeneratorConfig(img_size=16, channels=3, latent_dim=16, bottom=4, width=64, **fields)
    return TransformerGenerator(cfg)


def _small_d(**kw: object) -> TransformerDiscriminator:
    base = {"img_size": 16, "channels": 3, "patch": 2, "width": 64, "depth": 2}
    base.update(kw)
    return TransformerDiscriminator(DiscriminatorConfig(**base))


@pytest.mark.parametrize(
    "build",
    [
        lambda impl: _small_g(attention=impl),
        lambda impl: _small_g(attention=impl, rel_pos_bias=True, grid_window=8),
        lambda impl: _small_g(attention=impl, norm="pixelnorm", act="leakyrelu",
                              bicubic_stages=1),
        lambda impl: _small_d(attention=impl),
        lambda impl: _small_d(attention=impl, multiscale=True, rel_pos_bias=True, noise=True),
    ],
    ids=["g", "g-relbias-grid", "g-pixelnorm-bicubic", "d", "d-multiscale"],
)
@pytest.mark.parametrize("locality", [None, (1, "band"), (1, "square")])
def test_models_sdpa_equals_naive(build, locality) -> None:
    torch.manual_seed(0)
    fused = build("sdpa")
    naive = build("naive")
    naive.load_state_dict(fused.state_dict())
    for m in (fused, naive):
        m.eval()
        if locality:
            m.set_locality(*locality)
    x = torch.randn(2, 16) if isinstance(fused, TransformerGenerator) else torch.randn(2, 3, 16, 16)
    assert (fused(x) - naive(x)).abs().max().item() < 1e-5


def test_gradients_reach_every_parameter() -> None:
    g = _small_g(rel_pos_bias=True)
    d = _small_d(multiscale=True, rel_pos_bias=True, noise=True)
    with torch.no_grad():  # zero-initialised noise strengths get no gradient from noise at 0
        for name, p in d.named_parameters():
            if "noise_strength" in name:
                p.fill_(0.1)
    d(g(torch.randn(2, 16))).sum().backward()
    unused = {"image_to_tokens.weight", "image_to_tokens.bias"}
    for model in (g, d):
        for name, p in model.named_parameters():
            if name in unused:
                continue
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_super_resolution_entry_shape_and_gradient() -> None:
    g = _small_g()
    low = torch.rand(2, 3, 4, 4) * 2 - 1
    out = g.super_resolve(low)
    assert out.shape == (2, 3, 16, 16)
    out.square().mean().backward()
    assert g.image_to_tokens.weight.grad.abs().sum() > 0
    assert g.stages[0].blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert g.latent_to_tokens.weight.grad is None
    with pytest.raises(ValueError, match="4x4"):
        g.super_resolve(torch.zeros(1, 3, 8, 8))


def test_latent_projection_stays_full_precision_under_autocast() -> None:
    g = _small_g()
    seen: list[torch.dtype] = []
    for layer in (g.latent_to_tokens, g.stages[0].blocks[0].attn.qkv):
        layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    z = torch.randn(2, g.latent_dim)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(z)
    assert seen == [torch.float32, torch.bfloat16]  # the rest of G does run in bf16
    torch.testing.assert_close(out.float(), g(z), rtol=0.05, atol=0.05)


def _masked_blocks(g: TransformerGenerator) -> list[tuple[int, int]]:
    return [(i, j) for i, s in enumerate(g.stages) for j, b in enumerate(s.blocks)
            if b.attn.locality_mask is not None]


def test_set_locality_default_is_the_official_last_block_of_the_last_stage() -> None:
    g = _small_g(depths=(2, 2, 3))
    g.set_locality(2)
    assert _masked_blocks(g) == [(2, 2)]
    band = g.stages[2].blocks[2].attn.locality_mask
    assert band[0, 2] and not band[0, 3]  # |i - j| <= 2 in raster order


def test_set_locality_targets_stages_and_blocks_and_is_removable() -> None:
    g = _small_g(depths=(2, 2, 3))
    g.set_locality(2, "square", stages=[0, 2], blocks="all")
    assert _masked_blocks(g) == [(0, 0), (0, 1), (2, 0), (2, 1), (2, 2)]
    g.set_locality(2, stages=None, blocks="last")
    assert _masked_blocks(g) == [(0, 1), (1, 1), (2, 2)]
    g.set_locality(None)
    assert _masked_blocks(g) == []
    with pytest.raises(ValueError, match="last, all"):
        g.set_locality(2, blocks="first")
    d = _small_d()
    d.set_locality(1)
    assert all(m.locality_mask is not None for m in d.modules() if isinstance(m, Attention))


def test_discriminator_noise_only_in_training_mode() -> None:
    d = _small_d(noise=True)
    with torch.no_grad():
        for name, p in d.named_parameters():
            if "noise_strength" in name:
                p.fill_(1.0)
    x = torch.randn(2, 3, 16, 16)
    d.eval()
    assert torch.equal(d(x), d(x))
    d.train()
    assert not torch.equal(d(x), d(x))


def _fits(values: torch.Tensor, cdf: str, low: float, width: float) -> bool:
    """Kolmogorov-Smirnov at the 1% level: ``values`` plausibly come from U(low, low + width)
    (``cdf`` "uniform") or N(low, width) ("norm")."""
    x = values.detach().flatten()[:50_000].double().sort().values
    model = ((x - low) / width).clamp(0, 1) if cdf == "uniform" else torch.special.ndtr(
        (x - low) / width)
    n = x.numel()
    steps = torch.arange(n + 1, dtype=torch.float64) / n
    gap = torch.maximum((steps[1:] - model).abs(), (model - steps[:-1]).abs()).max()
    return gap.item() < 1.63 / n**0.5


def test_initialisation_follows_the_official_code() -> None:
    """Official: Conv2d Xavier-uniform (train_derived.weights_init); D's Linear trunc-normal
    0.02 with zero bias (its _init_weights); G's Linear left at PyTorch's default."""
    torch.manual_seed(0)
    g = transgan.build_generator("transgan-v2-cifar10")
    d = transgan.build_discriminator("transgan-v2-cifar10")
    d_linear = [m for m in d.modules() if isinstance(m, nn.Linear)]
    # Bounds +-2 at std 0.02 truncate nothing: a plain N(0, 0.02), zero biases.
    assert _fits(torch.cat([m.weight.flatten()[:5000] for m in d_linear]), "norm", 0, 0.02)
    assert all(m.bias is None or torch.count_nonzero(m.bias) == 0 for m in d_linear)
    for m in d.modules():
        if isinstance(m, nn.Conv2d):  # Xavier-uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out))
            fan_out, fan_in = m.weight.shape[0] * m.weight[0, 0].numel(), m.weight[0].numel()
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert _fits(m.weight, "uniform", -bound, 2 * bound)
        elif isinstance(m, nn.LayerNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    attn, mlp = g.stages[0].blocks[0].attn, g.stages[0].blocks[0].mlp
    # PyTorch's Linear default: weight and bias U(+-1/sqrt(fan_in)).
    assert _fits(attn.qkv.weight, "uniform", -(1024**-0.5), 2 * 1024**-0.5)
    assert _fits(mlp.fc1.bias, "uniform", -(1024**-0.5), 2 * 1024**-0.5)
    assert not _fits(attn.qkv.weight, "norm", 0, 0.02)  # the check tells the two apart
    out = g.to_image.weight  # the official 1x1 output convolution: Xavier-uniform
    assert _fits(out, "uniform", -((6 / (64 + 3)) ** 0.5), 2 * (6 / (64 + 3)) ** 0.5)
    assert _fits(torch.cat([s.pos_embed.flatten() for s in g.stages]), "norm", 0, 0.02)
    noise = [p for n, p in d.named_parameters() if "noise_strength" in n]
    assert len(noise) == 3 + 3 + 1 and all(p.shape == () and p.item() == 0 for p in noise)


def test_pixelnorm_normalises_channels() -> None:
    x = torch.randn(2, 5, 7) * 3
    y = PixelNorm()(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(2, 5), atol=1e-4)


def test_overrides_and_errors() -> None:
    g = transgan.build_generator("transgan-s", attention="naive", depths=(1, 1, 1))
    assert all(m.impl == "naive" for m in g.modules() if isinstance(m, Attention))
    assert len(g.stages[0].blocks) == 1
    transgan.build_generator("cnn", attention="naive")  # accepted, no attention to switch
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        transgan.build_generator("nope")
    with pytest.raises(ConfigError, match="unknown generator option 'colour'"):
        transgan.build_generator("digits", colour=3)
    with pytest.raises(ConfigError, match="img_size 64 does not match"):
        transgan.build_generator("transgan-s", img_size=64)
    with pytest.raises(ConfigError, match="sdpa, naive"):
        transgan.build_discriminator("digits", attention="flash")
    with pytest.raises(ConfigError, match="not divisible by patch"):
        transgan.build_discriminator("digits", patch=3)


@pytest.mark.parametrize("name", ["transgan-v2-stl10", "digits-cnn-g"])
def test_config_dict_round_trip(name: str) -> None:
    preset = get_preset(name)
    for cfg in (preset.architecture.generator, preset.architecture.discriminator):
        assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError):
        config_from_dict({"type": "vae"})
