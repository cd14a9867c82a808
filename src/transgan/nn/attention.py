"""Multi-head self-attention over a 2-D token grid, on scaled_dot_product_attention.

One module covers every variant the TransGAN models use: full attention, the
locality-aware masks (1-D band or 2-D square), learned relative position bias, and
grid (non-overlapping window) attention. Masks and biases reach SDPA as its
``attn_mask``; a naive softmax(QK^T)V path is kept for tests and benchmarks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.nn.choices import ATTENTION_IMPLS, LOCALITY_KINDS

# On the CPU, head dims below this are zero-padded up to it before the fused kernel.
CPU_MIN_HEAD_DIM = 16


def locality_mask(
    height: int,
    width: int,
    window: int,
    kind: str = "band",
    prefix_tokens: int = 0,
    device: torch.device | None = None,
) -> Tensor:
    """Boolean (L, L) mask, True where query i may attend to key j, L = prefix + height*width.

    ``band`` allows |i - j| <= window over raster order; ``square`` allows
    |row_i - row_j| <= window and |col_i - col_j| <= window. Prefix tokens ([CLS])
    see and are seen by every token.
    """
    if kind not in LOCALITY_KINDS:
        raise ValueError(f"unknown locality kind '{kind}'; choose from {', '.join(LOCALITY_KINDS)}")
    if window < 0:
        raise ValueError(f"locality window must be >= 0, got {window}")
    n = height * width
    idx = torch.arange(n, device=device)
    if kind == "band":
        grid_mask = (idx[:, None] - idx[None, :]).abs() <= window
    else:
        rows, cols = idx // width, idx % width
        grid_mask = ((rows[:, None] - rows[None, :]).abs() <= window) & (
            (cols[:, None] - cols[None, :]).abs() <= window
        )
    if prefix_tokens == 0:
        return grid_mask
    total = prefix_tokens + n
    mask = torch.ones(total, total, dtype=torch.bool, device=device)
    mask[prefix_tokens:, prefix_tokens:] = grid_mask
    return mask


def relative_position_index(height: int, width: int) -> Tensor:
    """(N, N) index into a (2H-1)*(2W-1) table of relative offsets between grid tokens."""
    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    d_row = rows[:, None] - rows[None, :] + height - 1
    d_col = cols[:, None] - cols[None, :] + width - 1
    return d_row * (2 * width - 1) + d_col


def to_windows(x: Tensor, height: int, width: int, window: int) -> Tensor:
    """(B, H*W, C) tokens -> (B * nW, window*window, C) non-overlapping windows."""
    b, _, c = x.shape
    x = x.view(b, height // window, window, width // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def from_windows(x: Tensor, height: int, width: int, window: int) -> Tensor:
    """Inverse of :func:`to_windows`."""
    c = x.shape[-1]
    x = x.view(-1, height // window, width // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height * width, c)


def rope_tables(height: int, width: int, head_dim: int, prefix_tokens: int = 0,
                base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin (L, head_dim) of 2-D rotary position embedding: the first half of each
    head's channels turns with the token's row, the second with its column; prefix tokens
    ([CLS]) do not turn."""
    if head_dim % 4:
        raise ValueError(f"2-D rotary embedding needs a head width divisible by 4, got {head_dim}")
    quarter = head_dim // 4
    freqs = base ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = torch.arange(height).repeat_interleave(width).double()
    cols = torch.arange(width).repeat(height).double()
    angles = torch.cat([rows[:, None] * freqs, rows[:, None] * freqs,
                        cols[:, None] * freqs, cols[:, None] * freqs], dim=1)
    angles = F.pad(angles, (0, 0, prefix_tokens, 0))
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``x`` (B, heads, L, d) turned by the tables of :func:`rope_tables`: each half of the
    channels (rows, columns) rotates its two quarters as one complex number per frequency."""
    rows, cols = x.chunk(2, dim=-1)
    turned = []
    for part in (rows, cols):
        a, b = part.chunk(2, dim=-1)
        turned.append(torch.cat([-b, a], dim=-1))
    return x * cos.to(x.dtype) + torch.cat(turned, dim=-1) * sin.to(x.dtype)


def naive_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None) -> Tensor:
    """Explicit softmax(QK^T / sqrt(d) + mask) V, the reference for the fused path."""
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1) @ v


def fused_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None) -> Tensor:
    """scaled_dot_product_attention; on the CPU in float32, head dims below 16 zero-padded.

    PyTorch's CPU flash kernel is faster in float32 than in bf16 at TransGAN's sizes, forward
    and backward, and faster on head dims padded to 16 than on 6 or 8
    (``benchmarks/attention_cpu.py``). Zero columns of q and k leave the scores unchanged;
    those of v give output columns that are dropped.
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    dtype, d = q.dtype, q.shape[-1]
    if dtype in (torch.bfloat16, torch.float16):
        q, k, v = q.float(), k.float(), v.float()
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    if d < CPU_MIN_HEAD_DIM:
        pad = (0, CPU_MIN_HEAD_DIM - d)
        q, k, v = F.pad(q, pad), F.pad(k, pad), F.pad(v, pad)
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=d**-0.5)
    return out[..., :d].to(dtype)


class Attention(nn.Module):
    """Multi-head self-attention over ``prefix_tokens`` + a (height, width) token grid.

    ``grid_window`` > 0 splits the grid into non-overlapping windows of that side and
    attends within each (cost linear in the number of tokens); it needs no prefix tokens.
    With ``noise`` (TransGAN v2's discriminator) a learned scalar strength, zero at first,
    scales one N(0, 1) draw per sample and token added to the input in training mode.
    ``rope`` turns queries and keys by their grid position (2-D rotary embedding). ``l2``
    (ViTGAN) scores -||q - k||^2 / sqrt(d) with keys tied to queries, which keeps the
    attention Lipschitz; on SDPA as 2q.k / sqrt(d) plus a per-key bias -|k|^2 / sqrt(d).
    The locality window is state set from outside with :meth:`set_locality`.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        grid: tuple[int, int],
        *,
        prefix_tokens: int = 0,
        qkv_bias: bool = False,
        rel_pos_bias: bool = False,
        grid_window: int = 0,
        noise: bool = False,
        impl: str = "sdpa",
        rope: bool = False,
        l2: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        if impl not in ATTENTION_IMPLS:
            raise ValueError(
                f"unknown attention '{impl}'; choose from {', '.join(ATTENTION_IMPLS)}"
            )
        height, width = grid
        self.heads = heads
        self.grid = (height, width)
        self.prefix_tokens = prefix_tokens
        self.impl = impl
        self.grid_window = 0
        if grid_window and (height > grid_window or width > grid_window):
            if prefix_tokens:
                raise ValueError("grid attention does not support prefix tokens such as [CLS]")
            if height % grid_window or width % grid_window:
                raise ValueError(f"grid {height}x{width} is not divisible by window {grid_window}")
            self.grid_window = grid_window
        self.attn_grid = (self.grid_window, self.grid_window) if self.grid_window else self.grid
        self.l2 = l2
        self.qkv = nn.Linear(dim, (2 if l2 else 3) * dim, bias=qkv_bias)
        self.rope = rope
        if rope:
            if self.grid_window:
                raise ValueError("rotary embedding is not offered with grid attention")
            cos, sin = rope_tables(height, width, dim // heads, prefix_tokens)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.proj = nn.Linear(dim, dim)
        self.noise_strength = nn.Parameter(torch.zeros(())) if noise else None
        self.rel_bias_table: nn.Parameter | None = None
        if rel_pos_bias:
            ah, aw = self.attn_grid
            self.rel_bias_table = nn.Parameter(torch.zeros(heads, (2 * ah - 1) * (2 * aw - 1)))
            nn.init.trunc_normal_(self.rel_bias_table, std=0.02)
            self.register_buffer("rel_index", relative_position_index(ah, aw), persistent=False)
        self.register_buffer("locality_mask", None, persistent=False)

    def set_locality(self, window: int | None, kind: str = "band") -> None:
        """Restrict each query to keys within ``window`` (band or square); ``None`` = full."""
        if window is None:
            self.locality_mask = None
            return
        ah, aw = self.attn_grid
        self.locality_mask = locality_mask(
            ah, aw, window, kind, self.prefix_tokens, device=self.qkv.weight.device
        )

    def attn_mask(self) -> Tensor | None:
        """The mask or additive bias passed to attention: bool, float (heads, L, L), or None."""
        if self.rel_bias_table is None:
            return self.locality_mask
        n = self.rel_index.shape[0]
        grid_bias = self.rel_bias_table[:, self.rel_index.view(-1)].view(self.heads, n, n)
        if self.prefix_tokens:
            grid_bias = F.pad(grid_bias, (self.prefix_tokens, 0, self.prefix_tokens, 0))
        if self.locality_mask is not None:
            grid_bias = grid_bias.masked_fill(~self.locality_mask, float("-inf"))
        return grid_bias

    def forward(self, x: Tensor) -> Tensor:
        """(B, prefix + H*W, C) -> same shape."""
        height, width = self.grid
        if self.noise_strength is not None and self.training:
            x = x + self.noise_strength * torch.randn(x.shape[0], x.shape[1], 1, device=x.device,
                                                      dtype=x.dtype)
        if self.grid_window:
            x = to_windows(x, height, width, self.grid_window)
        b, n, c = x.shape
        parts = 2 if self.l2 else 3
        qkv = self.qkv(x).view(b, n, parts, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = (qkv[0], qkv[0], qkv[1]) if self.l2 else qkv
        if self.rope:
            q = apply_rope(q, self.rope_cos, self.rope_sin)
            k = q if self.l2 else apply_rope(k, self.rope_cos, self.rope_sin)
        mask = self.attn_mask()
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        if self.l2:
            q, mask = 2 * q, _with_key_norms(mask, k)
        if self.impl == "sdpa":
            out = fused_attention(q, k, v, mask)
        else:
            out = naive_attention(q, k, v, mask)
        out = self.proj(out.transpose(1, 2).reshape(b, n, c))
        if self.grid_window:
            out = from_windows(out, height, width, self.grid_window)
        return out


def _with_key_norms(mask: Tensor | None, k: Tensor) -> Tensor:
    """``mask`` (bool, float or None) as an additive float mask plus -|k_j|^2 / sqrt(d) for
    every key j: with queries doubled, the scores of L2 attention."""
    bias = -(k.pow(2).sum(-1) * k.shape[-1] ** -0.5)[:, :, None, :]
    if mask is None:
        return bias
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=k.dtype, device=k.device).masked_fill(
            ~mask, float("-inf"))
    return mask + bias


def set_attention_impl(model: nn.Module, impl: str) -> None:
    """Switch every :class:`Attention` in ``model`` to the ``sdpa`` or ``naive`` path."""
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"unknown attention '{impl}'; choose from {', '.join(ATTENTION_IMPLS)}")
    for module in model.modules():
        if isinstance(module, Attention):
            module.impl = impl
