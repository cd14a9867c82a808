"""Dataclasses that fully describe the transformer generator and discriminator.

Every architectural default lives here; presets override fields, models read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from transgan.nn.attention import ATTENTION_IMPLS
from transgan.nn.blocks import ACTIVATIONS, NORMS

# "none" is the official generators' output: the last 1x1 convolution, clamped only when
# images are saved or evaluated.
OUTPUT_ACTIVATIONS = ("none", "tanh")


class ConfigError(ValueError):
    """An invalid model option; its message is one line meant for the user."""


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} '{value}'; choose from {', '.join(choices)}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class GeneratorConfig:
    """Transformer generator: latent -> bottom grid -> stages joined by 2x up-scaling -> image.

    ``depths`` has one entry per stage; the image side is ``bottom * 2**(len(depths)-1)``.
    The first ``bicubic_stages`` up-scalings interpolate at constant width; the rest use
    PixelShuffle(2), dividing the width by 4. ``grid_window`` > 0 gives every stage whose
    side exceeds it grid (windowed) attention. ``output_act`` is applied to the last 1x1
    projection: ``none`` as the official code, or ``tanh``.
    """

    img_size: int = 32
    channels: int = 3
    latent_dim: int = 1024
    bottom: int = 8
    width: int = 384
    depths: tuple[int, ...] = (5, 2, 2)
    heads: int = 4
    mlp_ratio: float = 4.0
    norm: str = "layernorm"
    act: str = "gelu"
    qkv_bias: bool = False
    rel_pos_bias: bool = False
    grid_window: int = 0
    bicubic_stages: int = 0
    output_act: str = "none"
    attention: str = "sdpa"

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        _check_positive(
            img_size=self.img_size, latent_dim=self.latent_dim, bottom=self.bottom,
            width=self.width, heads=self.heads, mlp_ratio=self.mlp_ratio,
        )
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.act, ACTIVATIONS)
        _check_choice("output activation", self.output_act, OUTPUT_ACTIVATIONS)
        _check_choice("attention", self.attention, ATTENTION_IMPLS)
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if not self.depths or min(self.depths) < 1:
            raise ConfigError(f"depths must be one or more positive integers, got {self.depths}")
        expected = self.bottom * 2 ** (len(self.depths) - 1)
        if self.img_size != expected:
            raise ConfigError(
                f"img_size {self.img_size} does not match bottom {self.bottom} with "
                f"{len(self.depths)} stages (gives {expected}); change depths or bottom"
            )
        if not 0 <= self.bicubic_stages < len(self.depths):
            raise ConfigError(f"bicubic_stages must be in [0, {len(self.depths) - 1}]")
        for stage, (side, width) in enumerate(zip(self.sides, self.widths, strict=True)):
            if width < self.heads or width % self.heads:
                raise ConfigError(
                    f"stage {stage} width {width} is not divisible by {self.heads} heads"
                )
            if self.grid_window and side > self.grid_window and side % self.grid_window:
                raise ConfigError(f"stage {stage} side {side} is not divisible by grid_window")
        for width in self.widths[self.bicubic_stages : -1]:
            if width % 4:
                raise ConfigError(f"width {width} cannot be pixel-shuffled (needs a multiple of 4)")

    @property
    def sides(self) -> tuple[int, ...]:
        """Token grid side of each stage."""
        return tuple(self.bottom * 2**i for i in range(len(self.depths)))

    @property
    def widths(self) -> tuple[int, ...]:
        """Token width of each stage."""
        widths = [self.width]
        for stage in range(1, len(self.depths)):
            shrink = 1 if stage <= self.bicubic_stages else 4
            widths.append(widths[-1] // shrink)
        return tuple(widths)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """ViT discriminator: patch tokens + [CLS] + position embedding -> blocks -> head on [CLS].

    ``multiscale`` (TransGAN v2) adds a branch of patch ``patch`` and 3/4 of the width whose
    tokens are pooled 2x and concatenated with a branch of patch ``2 * patch`` and 1/4 of the
    width, as the official ``ViT_custom_scale2_rp_noise`` discriminator.
    """

    img_size: int = 32
    channels: int = 3
    patch: int = 4
    width: int = 384
    depth: int = 7
    heads: int = 4
    mlp_ratio: float = 4.0
    norm: str = "layernorm"
    act: str = "gelu"
    qkv_bias: bool = False
    multiscale: bool = False
    rel_pos_bias: bool = False
    noise: bool = False
    attention: str = "sdpa"

    def __post_init__(self) -> None:
        _check_positive(
            img_size=self.img_size, patch=self.patch, width=self.width, depth=self.depth,
            heads=self.heads, mlp_ratio=self.mlp_ratio,
        )
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.act, ACTIVATIONS)
        _check_choice("attention", self.attention, ATTENTION_IMPLS)
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        coarsest = 2 * self.patch if self.multiscale else self.patch
        if self.img_size % coarsest:
            raise ConfigError(f"img_size {self.img_size} is not divisible by patch size {coarsest}")
        if self.multiscale and self.width % 4:
            raise ConfigError(f"multi-scale width {self.width} is not a multiple of 4")
        for width in {self.width, self.branch_widths[0]}:
            if width % self.heads:
                raise ConfigError(f"width {width} does not split into {self.heads} heads")

    @property
    def branch_widths(self) -> tuple[int, ...]:
        """Token widths: (fine, coarse) branches when multi-scale, else (width,)."""
        if self.multiscale:
            return (self.width // 4 * 3, self.width // 4)
        return (self.width,)
