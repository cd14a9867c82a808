"""The transformer discriminator's later ingredients (RMSNorm or no norm, LayerScale, SwiGLU,
2-D RoPE, L2 attention, improved spectral norm, overlapping patches): each does what it says,
trains through the gradient penalty's double backward, and is off by default."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from transgan.errors import ConfigError
from transgan.models import DiscriminatorConfig, discriminator_from_config
from transgan.nn.attention import Attention, apply_rope, rope_tables
from transgan.nn.blocks import TransformerBlock, improved_spectral_norm

BASE = {"img_size": 16, "channels": 1, "patch": 4, "width": 32, "depth": 2, "heads": 2}
OPTIONS = [{"norm": "rmsnorm"}, {"norm": "none"}, {"layer_scale": 0.1}, {"swiglu": True},
           {"rope": True}, {"l2_attention": True}, {"spectral_norm": True},
           {"overlap_embed": True},
           {"norm": "rmsnorm", "layer_scale": 0.1, "swiglu": True, "rope": True,
            "l2_attention": True, "spectral_norm": True, "overlap_embed": True}]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o))
def test_each_option_scores_images_and_takes_the_double_backward(options: dict) -> None:
    torch.manual_seed(0)
    D = discriminator_from_config(DiscriminatorConfig(**BASE, **options))
    x = torch.randn(3, 1, 16, 16, requires_grad=True)
    with sdpa_kernel([SDPBackend.MATH]):
        logits = D(x)
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        (logits.mean() + grad.pow(2).sum()).backward()
    assert logits.shape == (3,)
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad)
    D.eval()
    fused = D(x)
    D.set_attention("naive")
    torch.testing.assert_close(D(x), fused, rtol=1e-4, atol=1e-5)


def test_the_defaults_are_the_official_discriminator() -> None:
    default = DiscriminatorConfig(**BASE)
    assert not (default.layer_scale or default.swiglu or default.rope or default.l2_attention
                or default.spectral_norm or default.overlap_embed)
    assert default.norm == "layernorm"


def test_rope_scores_depend_on_the_offset_only_and_leave_cls_alone() -> None:
    torch.manual_seed(0)
    cos, sin = rope_tables(4, 4, 8, prefix_tokens=1)
    q, k = torch.randn(8), torch.randn(8)

    def score(i: int, j: int) -> torch.Tensor:  # grid tokens i and j (after [CLS])
        tokens = torch.zeros(1, 1, 17, 8)
        tokens[0, 0, 1 + i], tokens[0, 0, 1 + j] = q, k
        turned = apply_rope(tokens, cos, sin)[0, 0]
        return turned[1 + i] @ turned[1 + j]

    # (row, col) = (0, 0) -> (1, 2) equals (2, 1) -> (3, 3): the same offset.
    torch.testing.assert_close(score(0, 6), score(9, 15))
    assert not torch.allclose(score(0, 6), score(0, 9))
    cls = torch.randn(1, 1, 17, 8)
    torch.testing.assert_close(apply_rope(cls, cos, sin)[0, 0, 0], cls[0, 0, 0])
    with pytest.raises(ValueError, match="divisible by 4"):
        rope_tables(2, 2, 6)


def test_l2_attention_is_softmax_of_minus_squared_distances() -> None:
    torch.manual_seed(0)
    attn = Attention(8, 2, (2, 2), prefix_tokens=1, l2=True)
    x = torch.randn(2, 5, 8)
    q, v = attn.qkv(x).view(2, 5, 2, 2, 4).permute(2, 0, 3, 1, 4)
    scores = -torch.cdist(q, q).pow(2) / math.sqrt(4)
    expected = attn.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)
    assert attn.qkv.out_features == 16  # keys are the queries


def test_layer_scale_multiplies_each_branch() -> None:
    torch.manual_seed(0)
    plain = TransformerBlock(8, 2, (2, 2))
    scaled = TransformerBlock(8, 2, (2, 2), layer_scale=1.0)
    scaled.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 4, 8)
    torch.testing.assert_close(scaled(x), plain(x))  # a scale of 1 is no scale
    with torch.no_grad():
        scaled.scale1.zero_()
        scaled.scale2.zero_()
    torch.testing.assert_close(scaled(x), x)  # a scale of 0 leaves the residual stream


def test_improved_spectral_norm_starts_from_the_weights_and_keeps_their_norm() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 8)
    before = layer.weight.detach().clone()
    sigma = torch.linalg.matrix_norm(before, ord=2)
    assert improved_spectral_norm(torch.nn.Sequential(layer)) == 1
    torch.testing.assert_close(layer.weight, before, rtol=1e-3, atol=1e-4)
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(5)  # training makes the weight larger...
    for _ in range(20):  # (power iteration runs in training mode)
        layer(torch.randn(1, 16))
    after = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    torch.testing.assert_close(after, sigma, rtol=1e-3, atol=1e-4)  # ...its norm stays put


def test_overlapping_patches_keep_the_token_grid() -> None:
    D = discriminator_from_config(DiscriminatorConfig(**BASE, overlap_embed=True))
    assert D.patch_embed.kernel_size == (8, 8) and D.patch_embed.padding == (2, 2)
    assert D.patch_embed(torch.randn(1, 1, 16, 16)).shape[-2:] == (4, 4)


@pytest.mark.parametrize(("options", "message"), [
    ({"rope": True, "width": 24, "heads": 4}, "divisible by 4"),
    ({"layer_scale": -0.1}, "layer_scale must be >= 0"),
    ({"overlap_embed": True, "patch": 1, "img_size": 15}, "even patch"),
    ({"norm": "batchnorm"}, "unknown norm"),
])
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DiscriminatorConfig(**{**BASE, **options})
