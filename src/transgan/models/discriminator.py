"""The TransGAN ViT discriminator, single-scale (v1) or multi-scale (v2)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.models.conditioning import project_class
from transgan.models.configs import DiscriminatorConfig
from transgan.models.generator import image_to_tokens, tokens_to_image
from transgan.nn.attention import Attention, set_attention_impl
from transgan.nn.blocks import (
    improved_spectral_norm,
    init_official_weights,
    make_norm,
    transformer_blocks,
)


def _blocks(
    cfg: DiscriminatorConfig, width: int, side: int, depth: int, grid_blocks: int = 0,
    **options: Any,
) -> nn.ModuleList:
    """``depth`` blocks; the first ``grid_blocks`` attend within ``cfg.grid_window`` windows."""
    blocks = list(transformer_blocks(cfg, width, side, grid_blocks, noise=cfg.noise,
                                     grid_window=cfg.grid_window, **options))
    blocks += transformer_blocks(cfg, width, side, depth - grid_blocks, noise=cfg.noise,
                                 **options)
    return nn.ModuleList(blocks)


class TransformerDiscriminator(nn.Module):
    """Image -> patch tokens (+ [CLS]) -> transformer blocks -> final norm -> logit per image.

    Single-scale: [CLS] joins the patch tokens before ``depth`` blocks. Multi-scale: scale i
    embeds patches of ``patch * 2**i``; the running tokens are average-pooled 2x and
    concatenated with each next scale's before its blocks; then [CLS] joins for one last
    block without relative position bias.

    With ``num_classes`` > 0 it is a projection discriminator (Miyato & Koyama 2018): the
    logit of an image of class y is ``head(h) + <embed(y), h>``, h its normed [CLS] output.
    """

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.img_size = cfg.img_size
        self.channels = cfg.channels
        self.num_classes = cfg.num_classes
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        if cfg.multiscale:
            self.sides = cfg.stage_sides
            self.embeds = nn.ModuleList()
            for i, width in enumerate(cfg.branch_widths):
                patch = cfg.patch * 2**i
                if i == 0 and cfg.overlap_embed:
                    embed = nn.Conv2d(cfg.channels, width, 2 * patch, stride=patch,
                                      padding=patch // 2)
                else:
                    embed = nn.Conv2d(cfg.channels, width, patch, stride=patch)
                self.embeds.append(embed)
            self.stage_pos = nn.ParameterList(
                nn.Parameter(torch.zeros(1, side**2, width))
                for side, width in zip(self.sides, cfg.stage_widths, strict=True)
            )
            grid = cfg.grid_blocks or (0,) * len(self.sides)
            self.stages = nn.ModuleList(
                _blocks(cfg, width, side, depth, grid_blocks)
                for width, side, depth, grid_blocks in zip(
                    cfg.stage_widths, self.sides, cfg.stage_depths, grid, strict=True)
            )
            # Only the [CLS] output of this block is read, and [CLS] has no grid offset.
            self.cls_blocks = _blocks(
                cfg, cfg.width, self.sides[-1], 1, prefix_tokens=1, rel_pos_bias=False
            )
        else:
            self.side = cfg.img_size // cfg.patch
            kernel, padding = ((2 * cfg.patch, cfg.patch // 2) if cfg.overlap_embed
                               else (cfg.patch, 0))
            self.patch_embed = nn.Conv2d(cfg.channels, cfg.width, kernel, stride=cfg.patch,
                                         padding=padding)
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.side**2, cfg.width))
            self.blocks = _blocks(cfg, cfg.width, self.side, cfg.depth, prefix_tokens=1)
        self.norm = make_norm(cfg.norm, cfg.width)
        self.head = nn.Linear(cfg.width, 1)
        init_official_weights(self, linear=True)
        for name, param in self.named_parameters():
            if name in ("cls_token", "pos_embed") or name.startswith("stage_pos."):
                nn.init.trunc_normal_(param, std=0.02)
        if cfg.spectral_norm:
            for blocks in (self.stages, self.cls_blocks) if cfg.multiscale else (self.blocks,):
                improved_spectral_norm(blocks)
        # Created last so that an unconditional discriminator draws the same initial weights;
        # initialised as the head's weights, so the projection starts as small as the head.
        self.class_embed: nn.Embedding | None = None
        if cfg.num_classes:
            self.class_embed = nn.Embedding(cfg.num_classes, cfg.width)
            nn.init.trunc_normal_(self.class_embed.weight, std=0.02, a=-2.0, b=2.0)

    def _with_cls(self, x: Tensor) -> Tensor:
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, channels, img_size, img_size) -> logits (B,); ``labels`` (B,) are the class
        indices of a class-conditional discriminator, else None."""
        if self.config.multiscale:
            h = x
            for i, (embed, pos, blocks) in enumerate(
                zip(self.embeds, self.stage_pos, self.stages, strict=True)
            ):
                tokens = embed(x)
                if i:
                    pooled = F.avg_pool2d(tokens_to_image(h, self.sides[i - 1]), 2)
                    tokens = torch.cat([pooled, tokens], dim=1)
                h = image_to_tokens(tokens) + pos
                for block in blocks:
                    h = block(h)
            h = self._with_cls(h)
            for block in self.cls_blocks:
                h = block(h)
        else:
            h = self._with_cls(image_to_tokens(self.patch_embed(x))) + self.pos_embed
            for block in self.blocks:
                h = block(h)
        features = self.norm(h[:, 0])
        return project_class(self.head(features).squeeze(1), features, labels, self.class_embed)

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
