"""Attention: fused vs naive equality, locality masks, relative bias, grid windows."""

from __future__ import annotations

import itertools

import pytest
import torch

from transgan.nn.attention import (
    Attention,
    from_windows,
    fused_attention,
    locality_mask,
    naive_attention,
    relative_position_index,
    to_windows,
)


def _pair(**kwargs: object) -> tuple[Attention, Attention]:
    torch.manual_seed(0)
    fused = Attention(32, 4, (8, 8), impl="sdpa", **kwargs)
    naive = Attention(32, 4, (8, 8), impl="naive", **kwargs)
    naive.load_state_dict(fused.state_dict())
    return fused, naive


CASES = [
    {"locality": None},
    {"locality": (1, "band")},
    {"locality": (3, "square")},
    {"rel_pos_bias": True},
    {"rel_pos_bias": True, "locality": (2, "square")},
    {"grid_window": 4},
    {"grid_window": 4, "rel_pos_bias": True, "locality": (1, "band")},
    {"prefix_tokens": 1, "rel_pos_bias": True, "locality": (2, "band")},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sdpa_matches_naive_and_gradients_flow(case: dict) -> None:
    case = dict(case)
    locality = case.pop("locality", None)
    fused, naive = _pair(**case)
    if locality is not None:
        fused.set_locality(*locality)
        naive.set_locality(*locality)
    tokens = case.get("prefix_tokens", 0) + 64
    x = torch.randn(3, tokens, 32, requires_grad=True)
    out_fused, out_naive = fused(x), naive(x)
    assert out_fused.shape == x.shape
    assert (out_fused - out_naive).abs().max().item() < 1e-5
    out_fused.square().sum().backward()
    for name, param in fused.named_parameters():
        if name == "qkv.bias":
            continue
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("head_dim", [6, 16, 24])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_attention_pads_small_heads_exactly(head_dim: int, masked: bool) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 20, head_dim, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    mask = torch.randn(3, 20, 20, dtype=torch.float64) if masked else None
    out = fused_attention(q, k, v, mask)
    assert out.shape == q.shape and out.dtype == torch.float64
    want = naive_attention(q, k, v, mask)
    torch.testing.assert_close(out, want, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    want_grads = torch.autograd.grad(want.square().sum(), (q, k, v))
    for got, expected in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)


def test_fused_attention_under_bf16_autocast_keeps_bf16_io() -> None:
    torch.manual_seed(0)
    fused, naive = _pair(rel_pos_bias=True)
    x = torch.randn(2, 64, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fused(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), naive(x), rtol=0.05, atol=0.02)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_band_mask_is_exactly_the_band(window: int) -> None:
    height, width = 3, 4
    mask = locality_mask(height, width, window, "band")
    n = height * width
    for i, j in itertools.product(range(n), range(n)):
        assert bool(mask[i, j]) == (abs(i - j) <= window)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_square_mask_is_exactly_the_square(window: int) -> None:
    height, width = 4, 5
    mask = locality_mask(height, width, window, "square")
    for i, j in itertools.product(range(height * width), range(height * width)):
        ri, ci, rj, cj = i // width, i % width, j // width, j % width
        assert bool(mask[i, j]) == (abs(ri - rj) <= window and abs(ci - cj) <= window)


def test_prefix_tokens_see_and_are_seen_by_all() -> None:
    mask = locality_mask(3, 3, 0, "square", prefix_tokens=1)
    assert mask[0].all() and mask[:, 0].all()
    assert torch.equal(mask[1:, 1:], torch.eye(9, dtype=torch.bool))


def test_unknown_locality_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="band, square"):
        locality_mask(2, 2, 1, "circle")


def _influence(attn: Attention, tokens: int, query: int) -> torch.Tensor:
    """Which input tokens change the output at ``query`` (non-zero input gradient)."""
    x = torch.randn(1, tokens, 32, requires_grad=True)
    attn(x)[0, query].sum().backward()
    return x.grad[0].abs().sum(dim=-1) > 0


def test_locality_restricts_keys_and_removal_restores_full_attention() -> None:
    attn = Attention(32, 4, (8, 8))
    attn.set_locality(1, "square")
    seen = _influence(attn, 64, query=9)
    expected = locality_mask(8, 8, 1, "square")[9]
    assert torch.equal(seen, expected)
    attn.set_locality(None)
    assert attn.attn_mask() is None
    assert _influence(attn, 64, query=9).all()


def test_grid_attention_output_depends_only_on_its_window() -> None:
    attn = Attention(32, 4, (8, 8), grid_window=4)
    seen = _influence(attn, 64, query=0).view(8, 8)
    assert seen[:4, :4].all()
    assert not seen[4:, :].any() and not seen[:, 4:].any()


def test_windows_round_trip() -> None:
    x = torch.randn(2, 64, 5)
    windows = to_windows(x, 8, 8, 4)
    assert windows.shape == (8, 16, 5)
    assert torch.equal(from_windows(windows, 8, 8, 4), x)
    assert torch.equal(windows[0, 5], x[0, 1 * 8 + 1])


def test_relative_position_index_is_translation_invariant() -> None:
    idx = relative_position_index(3, 3)
    assert idx.shape == (9, 9)
    assert idx.min() == 0 and idx.max() == 24
    assert idx[0, 4] == idx[4, 8]  # same offset (-1, -1)
    assert idx[0, 0] == idx[8, 8]  # zero offset


def test_relative_bias_changes_output() -> None:
    attn = Attention(32, 4, (4, 4), rel_pos_bias=True)
    x = torch.randn(1, 16, 32)
    before = attn(x)
    with torch.no_grad():
        attn.rel_bias_table.add_(torch.randn_like(attn.rel_bias_table))
    assert not torch.allclose(before, attn(x))


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="divisible"):
        Attention(30, 4, (4, 4))
    with pytest.raises(ValueError, match="sdpa, naive"):
        Attention(32, 4, (4, 4), impl="flash")
    with pytest.raises(ValueError, match="prefix"):
        Attention(32, 4, (8, 8), prefix_tokens=1, grid_window=4)
