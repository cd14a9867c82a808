"""Pre-norm transformer block, norms and activations used by both TransGAN networks."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils.checkpoint import checkpoint

from transgan.nn.attention import Attention, fused_attention
from transgan.nn.choices import ACTIVATIONS, NORMS


class PixelNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) over the channel (last) dimension; no parameters."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)


def make_norm(kind: str, dim: int) -> nn.Module:
    """LayerNorm, PixelNorm, RMSNorm (learned scale) over the last dimension, or none."""
    if kind == "layernorm":
        return nn.LayerNorm(dim)
    if kind == "pixelnorm":
        return PixelNorm()
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=1e-6)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; choose from {', '.join(NORMS)}")


def make_activation(kind: str) -> nn.Module:
    """GELU or LeakyReLU(0.2)."""
    if kind == "gelu":
        return nn.GELU()
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.2)
    raise ValueError(f"unknown activation '{kind}'; choose from {', '.join(ACTIVATIONS)}")


class MLP(nn.Module):
    """Two linear layers with an activation between them."""

    def __init__(self, dim: int, hidden: int, act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = make_activation(act)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """silu(x W1) * (x W2), then W3 (Shazeer 2020): a gated MLP whose hidden width is 2/3 of
    the plain MLP's, so that both have about the same parameters."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        gated = max(1, 2 * hidden // 3)
        self.fc1 = nn.Linear(dim, 2 * gated)
        self.fc2 = nn.Linear(gated, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(gate) * value)


class LatentCrossAttention(nn.Module):
    """x + Proj(Attn(Q x, K c, V c)) from tokens x to a context c, with no norm: the official
    CelebA-HQ 256 generator's "self-modulation" by an embedding of the latent."""

    def __init__(self, dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(context_dim, dim, bias=False)
        self.v = nn.Linear(context_dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, n, c = x.shape
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.k(context).view(b, context.shape[1], self.heads, -1).transpose(1, 2)
        v = self.v(context).view(b, context.shape[1], self.heads, -1).transpose(1, 2)
        out = fused_attention(q, k, v, None).transpose(1, 2).reshape(b, n, c)
        return x + self.proj(out)


# SDPA backends and how to ask whether each is enabled (what ``sdpa_kernel`` sets).
_SDPA_BACKENDS: tuple[tuple[SDPBackend, Callable[[], bool]], ...] = (
    (SDPBackend.MATH, torch.backends.cuda.math_sdp_enabled),
    (SDPBackend.FLASH_ATTENTION, torch.backends.cuda.flash_sdp_enabled),
    (SDPBackend.EFFICIENT_ATTENTION, torch.backends.cuda.mem_efficient_sdp_enabled),
    (SDPBackend.CUDNN_ATTENTION, torch.backends.cuda.cudnn_sdp_enabled),
)


class SdpaBackends:
    """A reusable context of the given SDPA backends (a double backward recomputes twice)."""

    def __init__(self, backends: list[SDPBackend]) -> None:
        self.backends = backends
        self._entered: list[AbstractContextManager[Any]] = []

    def __enter__(self) -> None:
        context = sdpa_kernel(self.backends)
        context.__enter__()
        self._entered.append(context)

    def __exit__(self, *exc: Any) -> None:
        self._entered.pop().__exit__(*exc)


def recompute_as_forward() -> tuple[AbstractContextManager[Any], AbstractContextManager[Any]]:
    """Checkpoint contexts that recompute a block with the SDPA backends its forward pass had.

    The gradient penalty runs D on the math backend (the fused kernels have no double
    backward); its recomputation, which may come after that setting is left, must use it too.
    """
    return nullcontext(), SdpaBackends([b for b, enabled in _SDPA_BACKENDS if enabled()])


class TransformerBlock(nn.Module):
    """x + Attn(Norm(x)), then x + MLP(Norm(x)); ``noise`` is the attention's noise injection.

    With ``context_dim`` the block first applies :class:`LatentCrossAttention` to the context
    passed to :meth:`forward`. With ``checkpointing`` (state set by
    :func:`set_activation_checkpointing`) a pass that records gradients keeps only the block's
    input and recomputes the rest in the backward pass: less memory for more compute, same
    gradients.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        grid: tuple[int, int],
        *,
        mlp_ratio: float = 4.0,
        norm: str = "layernorm",
        act: str = "gelu",
        prefix_tokens: int = 0,
        qkv_bias: bool = False,
        rel_pos_bias: bool = False,
        grid_window: int = 0,
        noise: bool = False,
        context_dim: int = 0,
        impl: str = "sdpa",
        layer_scale: float = 0.0,
        swiglu: bool = False,
        rope: bool = False,
        l2_attention: bool = False,
    ) -> None:
        super().__init__()
        self.cross_attn = LatentCrossAttention(dim, context_dim, heads) if context_dim else None
        self.norm1 = make_norm(norm, dim)
        self.attn = Attention(
            dim,
            heads,
            grid,
            prefix_tokens=prefix_tokens,
            qkv_bias=qkv_bias,
            rel_pos_bias=rel_pos_bias,
            grid_window=grid_window,
            noise=noise,
            impl=impl,
            rope=rope,
            l2=l2_attention,
        )
        self.norm2 = make_norm(norm, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = SwiGLU(dim, hidden) if swiglu else MLP(dim, hidden, act)
        # LayerScale (CaiT): each branch's output times a learned per-channel factor.
        self.scale1 = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale else None
        self.scale2 = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale else None
        self.checkpointing = False

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.checkpointing and torch.is_grad_enabled():
            # Non-reentrant: restores the RNG (noise injection) and autocast state, and
            # supports the gradient penalty's double backward.
            if torch.compiler.is_compiling():
                # A compiled pass is never the penalty's, so it needs no SDPA backends back.
                return checkpoint(self._forward, x, context, use_reentrant=False)
            return checkpoint(self._forward, x, context, use_reentrant=False,
                              context_fn=recompute_as_forward)
        return self._forward(x, context)

    def _forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("this block cross-attends to a latent context; none was given")
            x = self.cross_attn(x, context)
        attended = self.attn(self.norm1(x))
        x = x + (attended if self.scale1 is None else self.scale1 * attended)
        mixed = self.mlp(self.norm2(x))
        return x + (mixed if self.scale2 is None else self.scale2 * mixed)


def set_activation_checkpointing(model: nn.Module, enabled: bool) -> int:
    """Turn activation checkpointing of every :class:`TransformerBlock` in ``model`` on or
    off; returns how many blocks there are (0 for a CNN)."""
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
    for block in blocks:
        block.checkpointing = enabled
    return len(blocks)


# Block options a config may carry (DiscriminatorConfig does), passed on by name.
BLOCK_OPTIONS = ("layer_scale", "swiglu", "rope", "l2_attention")


def transformer_blocks(
    cfg: Any, width: int, side: int, depth: int, **options: Any
) -> nn.ModuleList:
    """``depth`` blocks on a side x side grid; attention and MLP options come from ``cfg``.

    ``cfg`` is a generator or discriminator config (heads, mlp_ratio, norm, act, qkv_bias,
    rel_pos_bias, attention); ``options`` add or override block arguments.
    """
    common: dict[str, Any] = {
        "mlp_ratio": cfg.mlp_ratio, "norm": cfg.norm, "act": cfg.act, "qkv_bias": cfg.qkv_bias,
        "rel_pos_bias": cfg.rel_pos_bias, "impl": cfg.attention,
    }
    for name in BLOCK_OPTIONS:  # the discriminator's options; generators keep the defaults
        if hasattr(cfg, name):
            common[name] = getattr(cfg, name)
    common.update(options)
    return nn.ModuleList(
        TransformerBlock(width, cfg.heads, (side, side), **common) for _ in range(depth)
    )


class _Rescale(nn.Module):
    """A weight parametrisation: times a fixed scale."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale))

    def forward(self, weight: Tensor) -> Tensor:
        return weight * self.scale


def improved_spectral_norm(module: nn.Module) -> int:
    """ViTGAN's improved spectral normalisation of every Linear layer in ``module``: the weight
    over its spectral norm (power iteration, updated in training mode), times its spectral
    norm at this moment, so that training starts from the weights as initialised. Returns how
    many layers it parametrised."""
    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    for layer in layers:
        sigma = float(torch.linalg.matrix_norm(layer.weight.detach().float(), ord=2))
        spectral_norm(layer)
        parametrize.register_parametrization(layer, "weight", _Rescale(sigma))
    return len(layers)


def init_official_weights(module: nn.Module, *, linear: bool) -> None:
    """The official TransGAN initialisation of ``module``'s layers.

    Every Conv2d weight is Xavier-uniform (gain 1), as the official training script's
    ``weights_init`` does. With ``linear`` (the discriminators' own ``_init_weights``) Linear
    weights are truncated normal (std 0.02, bounds +-2) with zero biases; the generators
    leave their Linear layers at PyTorch's default. LayerNorm starts at weight 1, bias 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, nn.Linear) and linear:
            nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
