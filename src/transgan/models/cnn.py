"""ResNet-style CNN generator and discriminator (SNGAN / AutoGAN family) for the G/D swap study.

They share call signatures with the transformer models, so any generator pairs with any
discriminator: ``G(z)`` maps ``(B, latent_dim)`` to images in ``[-1, 1]`` and ``D(x)`` maps
``(B, channels, img_size, img_size)`` to logits of shape ``(B,)``. With ``num_classes`` > 0
both take class indices too, ``G(z, labels)`` and ``D(x, labels)``, conditioned as the
transformer models are (class embedding joined to the latent; projection discriminator).

Initialization: Xavier-uniform with gain sqrt(2) for the 3x3 convolutions inside residual
branches (each is followed by a ReLU somewhere downstream), gain 1 for shortcut 1x1
convolutions, linear layers and the generator's output convolution; all biases start at zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from transgan.models.conditioning import class_embed_dim, join_class, project_class
from transgan.models.configs import (
    CNNDiscriminatorConfig,
    CNNGeneratorConfig,
    num_down_blocks,
    num_up_blocks,
)
from transgan.models.pretrained import PretrainedMixin
from transgan.sampling import generator_class_names

__all__ = [
    "CNNDiscriminator",
    "CNNDiscriminatorConfig",
    "CNNGenerator",
    "CNNGeneratorConfig",
]

_RESIDUAL_GAIN = math.sqrt(2.0)


def _init_layer(layer: nn.Conv2d | nn.Linear, gain: float) -> None:
    """Xavier-uniform weights with ``gain`` and zero bias."""
    nn.init.xavier_uniform_(layer.weight, gain=gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _conv(c_in: int, c_out: int, kernel: int, gain: float, sn: bool = False) -> nn.Module:
    """Same-padding convolution, initialized, optionally spectrally normalized."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    _init_layer(conv, gain)
    # Wrap after init so the power-iteration vectors are estimated for the final weight.
    return spectral_norm(conv) if sn else conv


def _upsample(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GeneratorBlock(nn.Module):
    """Residual up-block: BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, shortcut up-conv1x1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = _conv(c_in, c_out, 3, _RESIDUAL_GAIN)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv(c_out, c_out, 3, _RESIDUAL_GAIN)
        self.shortcut = _conv(c_in, c_out, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(_upsample(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_upsample(x))


class DiscriminatorBlock(nn.Module):
    """Residual block: ReLU-conv3x3-ReLU-conv3x3[-avgpool]; shortcut conv1x1[-avgpool] or identity.

    With ``optimized=True`` (the first block) there is no leading ReLU and the shortcut pools
    before its 1x1 convolution, as in SNGAN.
    """

    def __init__(self, c_in: int, c_out: int, downsample: bool, optimized: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.optimized = optimized
        self.conv1 = _conv(c_in, c_out, 3, _RESIDUAL_GAIN, sn=True)
        self.conv2 = _conv(c_out, c_out, 3, _RESIDUAL_GAIN, sn=True)
        learnable = optimized or downsample or c_in != c_out
        self.shortcut: nn.Module = (
            _conv(c_in, c_out, 1, 1.0, sn=True) if learnable else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.optimized else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.optimized:
            skip = self.shortcut(F.avg_pool2d(x, 2))
        else:
            skip = self.shortcut(x)
            if self.downsample:
                skip = F.avg_pool2d(skip, 2)
        return h + skip


class CNNGenerator(PretrainedMixin, nn.Module):
    """ResNet generator: linear to a ``bottom`` grid, x2 up-blocks, BN-ReLU-conv3x3-tanh."""

    config_class = CNNGeneratorConfig

    def __init__(self, cfg: CNNGeneratorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.latent_dim = cfg.latent_dim
        self.img_size = cfg.img_size
        self.channels = cfg.channels
        self.num_classes = cfg.num_classes
        self.class_names = tuple(generator_class_names(cfg))
        embed_dim = class_embed_dim(cfg.latent_dim, cfg.num_classes)
        self.fc = nn.Linear(cfg.latent_dim + embed_dim, cfg.bottom * cfg.bottom * cfg.width)
        _init_layer(self.fc, 1.0)
        n_up = num_up_blocks(cfg.img_size, cfg.bottom)
        self.blocks = nn.Sequential(*(GeneratorBlock(cfg.width, cfg.width) for _ in range(n_up)))
        self.bn_out = nn.BatchNorm2d(cfg.width)
        self.conv_out = _conv(cfg.width, cfg.channels, 3, 1.0)
        # Last, so an unconditional generator draws the same initial weights.
        self.class_embed = nn.Embedding(cfg.num_classes, embed_dim) if embed_dim else None

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map latents ``(B, latent_dim)`` (and, when conditional, class indices ``(B,)``) to
        images ``(B, channels, img_size, img_size)``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        bottom = self.config.bottom
        z = join_class(z, labels, self.class_embed)
        h = self.fc(z).view(z.shape[0], self.config.width, bottom, bottom)
        h = self.blocks(h)
        return torch.tanh(self.conv_out(F.relu(self.bn_out(h))))


class CNNDiscriminator(nn.Module):
    """Spectrally normalized ResNet discriminator with global sum pooling; returns logits (B,).

    Layout: an optimized down-block, then down-blocks until the side is <= 8 (32 px: 16 -> 8;
    48 px: 24 -> 12 -> 6; 64 px: 32 -> 16 -> 8; 16 px: none), then two blocks without pooling.
    """

    def __init__(self, cfg: CNNDiscriminatorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.img_size = cfg.img_size
        self.channels = cfg.channels
        self.num_classes = cfg.num_classes
        width = cfg.width
        blocks = [DiscriminatorBlock(cfg.channels, width, downsample=True, optimized=True)]
        blocks += [
            DiscriminatorBlock(width, width, downsample=True)
            for _ in range(num_down_blocks(cfg.img_size))
        ]
        blocks += [DiscriminatorBlock(width, width, downsample=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        fc = nn.Linear(width, 1)
        _init_layer(fc, 1.0)
        self.fc = spectral_norm(fc)
        # Projection embedding, spectrally normalized like the head; last, so an
        # unconditional discriminator draws the same initial weights.
        self.class_embed: nn.Module | None = None
        if cfg.num_classes:
            embed = nn.Embedding(cfg.num_classes, width)
            nn.init.xavier_uniform_(embed.weight)
            self.class_embed = spectral_norm(embed)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map images ``(B, channels, img_size, img_size)`` (and, when conditional, class
        indices ``(B,)``) to logits ``(B,)``."""
        expected = (self.channels, self.img_size, self.img_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected x of shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return project_class(self.fc(h).squeeze(1), h, labels, self.class_embed)
