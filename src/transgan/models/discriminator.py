"""The TransGAN ViT discriminator, single-scale (v1) or multi-scale (v2)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.models.configs import DiscriminatorConfig
from transgan.models.generator import image_to_tokens, tokens_to_image
from transgan.nn.attention import Attention, set_attention_impl
from transgan.nn.blocks import init_official_weights, make_norm, transformer_blocks


def _blocks(
    cfg: DiscriminatorConfig, width: int, side: int, depth: int, **options: Any
) -> nn.ModuleList:
    return transformer_blocks(cfg, width, side, depth, noise=cfg.noise, **options)


class TransformerDiscriminator(nn.Module):
    """Image -> patch tokens (+ [CLS]) -> transformer blocks -> final norm -> logit per image.

    Single-scale: [CLS] joins the patch tokens before ``depth`` blocks. Multi-scale: a
    fine branch (patch p, ``depth`` blocks, 3/4 of the width) is average-pooled 2x and
    concatenated with a coarse branch (patch 2p, 1/4 of the width); ``depth`` blocks run on
    the result, then [CLS] joins for one last block without relative position bias.
    """

    supports_locality = True

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.img_size = cfg.img_size
        self.channels = cfg.channels
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        if cfg.multiscale:
            fine_width, coarse_width = cfg.branch_widths
            self.fine_side = cfg.img_size // cfg.patch
            self.side = self.fine_side // 2
            self.fine_embed = nn.Conv2d(cfg.channels, fine_width, cfg.patch, stride=cfg.patch)
            self.fine_pos = nn.Parameter(torch.zeros(1, self.fine_side**2, fine_width))
            self.fine_blocks = _blocks(cfg, fine_width, self.fine_side, cfg.depth)
            self.coarse_embed = nn.Conv2d(
                cfg.channels, coarse_width, 2 * cfg.patch, stride=2 * cfg.patch
            )
            self.pos_embed = nn.Parameter(torch.zeros(1, self.side**2, cfg.width))
            self.blocks = _blocks(cfg, cfg.width, self.side, cfg.depth)
            # Only the [CLS] output of this block is read, and [CLS] has no grid offset.
            self.cls_blocks = _blocks(
                cfg, cfg.width, self.side, 1, prefix_tokens=1, rel_pos_bias=False
            )
        else:
            self.side = cfg.img_size // cfg.patch
            self.patch_embed = nn.Conv2d(cfg.channels, cfg.width, cfg.patch, stride=cfg.patch)
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.side**2, cfg.width))
            self.blocks = _blocks(cfg, cfg.width, self.side, cfg.depth, prefix_tokens=1)
        self.norm = make_norm(cfg.norm, cfg.width)
        self.head = nn.Linear(cfg.width, 1)
        init_official_weights(self, linear=True)
        for name, param in self.named_parameters():
            if name in ("cls_token", "pos_embed", "fine_pos"):
                nn.init.trunc_normal_(param, std=0.02)

    def _with_cls(self, x: Tensor) -> Tensor:
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, channels, img_size, img_size) -> logits (B,)."""
        if self.config.multiscale:
            fine = image_to_tokens(self.fine_embed(x)) + self.fine_pos
            for block in self.fine_blocks:
                fine = block(fine)
            fine = F.avg_pool2d(tokens_to_image(fine, self.fine_side), 2)
            coarse = self.coarse_embed(x)
            h = image_to_tokens(torch.cat([fine, coarse], dim=1)) + self.pos_embed
            for block in self.blocks:
                h = block(h)
            h = self._with_cls(h)
            for block in self.cls_blocks:
                h = block(h)
        else:
            h = self._with_cls(image_to_tokens(self.patch_embed(x))) + self.pos_embed
            for block in self.blocks:
                h = block(h)
        return self.head(self.norm(h[:, 0])).squeeze(1)

    def set_locality(self, window: int | None, kind: str = "band") -> None:
        """Set (or with ``None`` remove) a locality window on every attention layer.

        Not part of the official recipe (its discriminators attend fully); for experiments.
        """
        for module in self.modules():
            if isinstance(module, Attention):
                module.set_locality(window, kind)

    def set_attention(self, impl: str) -> None:
        """Switch every attention layer between the ``sdpa`` and ``naive`` paths."""
        set_attention_impl(self, impl)
