"""The TransGAN transformer generator."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.models.conditioning import class_embed_dim, join_class
from transgan.models.configs import LOCALITY_BLOCKS, GeneratorConfig
from transgan.models.pretrained import PretrainedMixin
from transgan.nn.attention import set_attention_impl
from transgan.nn.blocks import init_official_weights, transformer_blocks
from transgan.sampling import generator_class_names


def tokens_to_image(x: Tensor, side: int) -> Tensor:
    """(B, side*side, C) -> (B, C, side, side)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)


def image_to_tokens(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


class Stage(nn.Module):
    """Transformer blocks at one resolution, with that resolution's position embedding."""

    def __init__(self, cfg: GeneratorConfig, index: int, depth: int) -> None:
        super().__init__()
        self.side = side = cfg.sides[index]
        width = cfg.widths[index]
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side, width))
        self.blocks = transformer_blocks(
            cfg, width, side, depth, grid_window=cfg.stage_window(index), noise=cfg.noise,
            context_dim=cfg.width if cfg.latent_modulation else 0,
        )

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x, context)
        return x


def _without_autocast(device_type: str) -> AbstractContextManager[object]:
    """A region where autocast (CPU or CUDA) is off; elsewhere nothing changes."""
    if device_type in ("cpu", "cuda"):
        return torch.autocast(device_type, enabled=False)
    return nullcontext()


class TransformerGenerator(PretrainedMixin, nn.Module):
    """z -> bottom grid of tokens -> stages with 2x up-scaling between them -> image.

    The image is the last 1x1 projection, through ``tanh`` when the config asks for it.

    :meth:`super_resolve` is the multi-task co-training entry: a low-resolution image at
    the bottom-grid size replaces the latent tokens and the same stages up-scale it; it takes
    no labels, since the low-resolution image already fixes the content, class included.
    A latent-modulated generator has no such entry: its blocks need the latent.

    With ``num_classes`` > 0 a learned class embedding is concatenated to the latent before
    the first linear layer: the latent's own path keeps its maths and that layer learns how
    much the class matters for every token.
    """

    config_class = GeneratorConfig

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.latent_dim = cfg.latent_dim
        self.img_size = cfg.img_size
        self.channels = cfg.channels
        self.bottom = cfg.bottom
        self.num_classes = cfg.num_classes
        self.class_names = tuple(generator_class_names(cfg))
        widths = cfg.widths
        joined = cfg.latent_dim + class_embed_dim(cfg.latent_dim, cfg.num_classes)
        self.latent_to_tokens = nn.Linear(joined, cfg.bottom * cfg.bottom * cfg.width)
        self.image_to_tokens = nn.Linear(cfg.channels, cfg.width)
        self.stages = nn.ModuleList(Stage(cfg, i, depth) for i, depth in enumerate(cfg.depths))
        self.to_image = nn.Linear(widths[-1], cfg.channels)
        if cfg.latent_modulation:
            tokens = cfg.bottom * cfg.bottom
            self.latent_to_context = nn.Linear(joined, tokens * cfg.width)
            self.context_pos = nn.Parameter(torch.zeros(1, tokens, cfg.width))  # official: zeros
        init_official_weights(self, linear=False)
        # The official output layer is a 1x1 Conv2d, initialised Xavier-uniform.
        nn.init.xavier_uniform_(self.to_image.weight)
        for stage in self.stages:
            nn.init.trunc_normal_(stage.pos_embed, std=0.02)
        # Created last so that an unconditional generator draws the same initial weights.
        # Its default N(0, 1) initialisation matches the scale of the latent beside it.
        self.class_embed = (
            nn.Embedding(cfg.num_classes, joined - cfg.latent_dim) if cfg.num_classes else None
        )

    def _upscale(self, x: Tensor, stage: int) -> Tensor:
        """2x up-scaling from ``stage - 1`` to ``stage``: bicubic early, PixelShuffle after."""
        img = tokens_to_image(x, self.stages[stage - 1].side)
        if stage in self.config.smooth_upscales:
            img = F.avg_pool2d(F.interpolate(img, scale_factor=4, mode="bicubic"), 4)
        if stage <= self.config.bicubic_stages:
            img = F.interpolate(img, scale_factor=2, mode="bicubic", align_corners=False)
        else:
            img = F.pixel_shuffle(img, 2)
        return image_to_tokens(img)

    def synthesize(self, tokens: Tensor, context: Tensor | None = None) -> Tensor:
        """Run bottom-grid tokens (B, bottom^2, width) through every stage to an image;
        ``context`` is the latent embedding of a latent-modulated generator."""
        x = tokens
        for i, stage in enumerate(self.stages):
            if i:
                x = self._upscale(x, i)
            x = stage(x, context)
        image = tokens_to_image(self.to_image(x), self.img_size)
        return torch.tanh(image) if self.config.output_act == "tanh" else image

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, latent_dim) -> (B, channels, img_size, img_size), about [-1, 1].

        ``labels`` (B,) are the class indices of a class-conditional generator, else None.
        """
        z = join_class(z, labels, self.class_embed)
        # Most of G's weights (25M of transgan-s's 34M) but little compute per image: under
        # autocast, casting this weight to bf16 on every call costs more time and memory than
        # the full-precision product itself, so it runs in the weight's own dtype.
        with _without_autocast(z.device.type):
            tokens = self.latent_to_tokens(z.to(self.latent_to_tokens.weight.dtype))
        tokens = tokens.view(z.shape[0], self.bottom * self.bottom, -1)
        context = None
        if self.config.latent_modulation:
            context = self.latent_to_context(z).view_as(tokens) + self.context_pos
        return self.synthesize(tokens, context)

    def super_resolve(self, low: Tensor) -> Tensor:
        """(B, channels, bottom, bottom) -> (B, channels, img_size, img_size)."""
        if self.config.latent_modulation:
            raise ValueError("a latent-modulated generator has no super-resolution entry")
        if low.shape[-2:] != (self.bottom, self.bottom):
            raise ValueError(f"super_resolve expects {self.bottom}x{self.bottom} input")
        return self.synthesize(self.image_to_tokens(image_to_tokens(low)))

    def set_locality(
        self,
        window: int | None,
        kind: str = "band",
        stages: Sequence[int] | None = (-1,),
        blocks: str = "last",
    ) -> None:
        """Set (or with ``None`` remove) the locality window of attention layers.

        The default is the official one: only the last block of the highest-resolution
        stage. ``stages`` lists stage indices (``None``: all); ``blocks`` is ``last`` or
        ``all`` blocks of each chosen stage. Removing a window clears every layer.
        """
        if blocks not in LOCALITY_BLOCKS:
            raise ValueError(
                f"unknown locality blocks '{blocks}'; choose from {', '.join(LOCALITY_BLOCKS)}"
            )
        for stage in self.stages:
            for block in stage.blocks:
                block.attn.set_locality(None)
        if window is None:
            return
        chosen = range(len(self.stages)) if stages is None else stages
        for index in chosen:
            stage_blocks = list(self.stages[index].blocks)
            for block in stage_blocks[-1:] if blocks == "last" else stage_blocks:
                block.attn.set_locality(window, kind)

    def set_attention(self, impl: str) -> None:
        """Switch every attention layer between the ``sdpa`` and ``naive`` paths."""
        set_attention_impl(self, impl)
