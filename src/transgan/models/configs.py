"""Dataclasses that fully describe the transformer generator and discriminator.

Every architectural default lives here; presets override fields, models read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from transgan.errors import ConfigError
from transgan.nn.choices import ACTIVATIONS, ATTENTION_IMPLS, NORMS

# "none" is the official generators' output: the last 1x1 convolution, clamped only when
# images are saved or evaluated.
OUTPUT_ACTIVATIONS = ("none", "tanh")
# Generator blocks of the chosen stages that get a locality mask.
LOCALITY_BLOCKS = ("last", "all")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} '{value}'; choose from {', '.join(choices)}")


def check_num_classes(num_classes: int) -> None:
    """ConfigError unless ``num_classes`` is an integer >= 0 (0: unconditional)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"num_classes must be an integer >= 0 (0: unconditional), "
                          f"got {num_classes!r}")


def check_class_names(names: tuple[str, ...], num_classes: int) -> None:
    """ConfigError unless ``names`` is empty (classes known by index) or names each of the
    ``num_classes`` classes once, in label order."""
    if not names:
        return
    if len(names) != num_classes:
        raise ConfigError(f"class_names gives {len(names)} names for {num_classes} classes")
    if any(not isinstance(name, str) or not name.strip() for name in names):
        raise ConfigError(f"class names must be non-empty strings, got {list(names)!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"class name {repeated[0]!r} is given twice")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class GeneratorConfig:
    """Transformer generator: latent -> bottom grid -> stages joined by 2x up-scaling -> image.

    ``depths`` has one entry per stage; the image side is ``bottom * 2**(len(depths)-1)``.
    The first ``bicubic_stages`` up-scalings interpolate at constant width; the rest use
    PixelShuffle(2), dividing the width by 4. ``grid_window`` > 0 gives grid (windowed)
    attention to the stages listed in ``grid_stages``, or when that is empty to every stage
    whose side exceeds the window. ``noise`` adds the official v2 noise injection to every
    attention layer. ``latent_modulation`` (the official CelebA-HQ 256 generator's
    "self-modulation") starts every block with cross-attention from its tokens to a learned
    embedding of the latent; ``smooth_upscales`` lists the stages whose incoming up-scaling
    first low-passes the tokens (bicubic 4x up, 4x4 average down). A stage may have depth 0.
    ``output_act`` is applied to the last 1x1 projection: ``none`` as the official code, or
    ``tanh``. ``num_classes`` > 0 makes it class-conditional: a learned class embedding is
    concatenated to the latent (0: unconditional); ``class_names`` names the classes in label
    order (the training data's class folders), empty when they are known by index alone.
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
    grid_stages: tuple[int, ...] = ()
    bicubic_stages: int = 0
    noise: bool = False
    latent_modulation: bool = False
    smooth_upscales: tuple[int, ...] = ()
    output_act: str = "none"
    attention: str = "sdpa"
    num_classes: int = 0
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("depths", "grid_stages", "smooth_upscales"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        check_num_classes(self.num_classes)
        check_class_names(self.class_names, self.num_classes)
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
        if not self.depths or min(self.depths) < 0 or not any(self.depths):
            raise ConfigError(f"depths must be one or more integers >= 0 with at least one "
                              f"block, got {self.depths}")
        expected = self.bottom * 2 ** (len(self.depths) - 1)
        if self.img_size != expected:
            raise ConfigError(
                f"img_size {self.img_size} does not match bottom {self.bottom} with "
                f"{len(self.depths)} stages (gives {expected}); change depths or bottom"
            )
        if not 0 <= self.bicubic_stages < len(self.depths):
            raise ConfigError(f"bicubic_stages must be in [0, {len(self.depths) - 1}]")
        if any(not 0 <= s < len(self.depths) for s in self.grid_stages):
            raise ConfigError(f"grid_stages {self.grid_stages} name stages that do not exist")
        if any(not 0 < s < len(self.depths) for s in self.smooth_upscales):
            raise ConfigError(f"smooth_upscales {self.smooth_upscales} must name stages 1 to "
                              f"{len(self.depths) - 1}")
        for stage, (side, width) in enumerate(zip(self.sides, self.widths, strict=True)):
            if width < self.heads or width % self.heads:
                raise ConfigError(
                    f"stage {stage} width {width} is not divisible by {self.heads} heads"
                )
            window = self.stage_window(stage)
            if window and side > window and side % window:
                raise ConfigError(f"stage {stage} side {side} is not divisible by grid_window")
        for width in self.widths[self.bicubic_stages : -1]:
            if width % 4:
                raise ConfigError(f"width {width} cannot be pixel-shuffled (needs a multiple of 4)")

    def stage_window(self, stage: int) -> int:
        """The grid-attention window of ``stage`` (0: full attention over the stage)."""
        if not self.grid_window or (self.grid_stages and stage not in self.grid_stages):
            return 0
        return self.grid_window if self.sides[stage] > self.grid_window else 0

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

    ``multiscale`` (TransGAN v2) embeds the image at patch ``patch * 2**i`` for each scale i
    with width ``scale_widths[i]`` (default: 3/4 and 1/4 of ``width``, the official
    ``ViT_custom_scale2_rp_noise``); each scale's tokens run through ``scale_depths[i]`` blocks
    (default ``depth``), are average-pooled 2x and concatenated with the next scale's; [CLS]
    joins for one last block. The first ``grid_blocks[i]`` blocks of scale i use grid attention
    of side ``grid_window``; ``overlap_embed`` embeds the finest scale with kernel 2·patch,
    stride patch and padding patch/2 (the official CelebA-HQ 256 discriminator; the only
    patches of a single-scale one). ``num_classes`` > 0 adds a class projection to the logit
    (0: unconditional).

    Options from later transformer discriminators, all off by default (the official models):
    ``norm`` ``rmsnorm`` or ``none``; ``layer_scale`` > 0, each residual branch times a
    learned per-channel factor starting there (CaiT; GAT uses 0.1); ``swiglu``, a gated MLP;
    ``rope``, 2-D rotary position embedding in every attention; ``l2_attention``, ViTGAN's
    L2-distance attention with tied queries and keys; ``spectral_norm``, ViTGAN's improved
    spectral normalisation of every linear layer of the blocks (each weight over its spectral
    norm, times that norm at initialisation).
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
    scale_widths: tuple[int, ...] = ()
    scale_depths: tuple[int, ...] = ()
    grid_window: int = 0
    grid_blocks: tuple[int, ...] = ()
    overlap_embed: bool = False
    rel_pos_bias: bool = False
    noise: bool = False
    attention: str = "sdpa"
    num_classes: int = 0
    layer_scale: float = 0.0
    swiglu: bool = False
    rope: bool = False
    l2_attention: bool = False
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("scale_widths", "scale_depths", "grid_blocks"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        check_num_classes(self.num_classes)
        _check_positive(
            img_size=self.img_size, patch=self.patch, width=self.width, depth=self.depth,
            heads=self.heads, mlp_ratio=self.mlp_ratio,
        )
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.act, ACTIVATIONS)
        _check_choice("attention", self.attention, ATTENTION_IMPLS)
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if not self.multiscale and (self.scale_widths or self.scale_depths or self.grid_blocks):
            raise ConfigError("scale_widths, scale_depths and grid_blocks need multiscale")
        if self.overlap_embed and self.patch % 2:
            raise ConfigError(f"overlap_embed needs an even patch, got {self.patch}")
        if self.layer_scale < 0:
            raise ConfigError(f"layer_scale must be >= 0 (0: off), got {self.layer_scale}")
        if self.rope and (self.multiscale or (self.width // self.heads) % 4):
            raise ConfigError("rope needs a single-scale discriminator whose head width "
                              f"(width / heads = {self.width / self.heads:g}) is divisible by 4")
        coarsest = self.patch * 2 ** (len(self.branch_widths) - 1)
        if self.img_size % coarsest:
            raise ConfigError(f"img_size {self.img_size} is not divisible by patch size {coarsest}")
        if self.multiscale and not self.scale_widths and self.width % 4:
            raise ConfigError(f"multi-scale width {self.width} is not a multiple of 4")
        scales = len(self.branch_widths)
        if sum(self.branch_widths) != self.width or min(self.branch_widths) < 1:
            raise ConfigError(f"scale_widths {self.scale_widths} must be positive and add up "
                              f"to width {self.width}")
        for name in ("scale_depths", "grid_blocks"):
            if getattr(self, name) and len(getattr(self, name)) != scales:
                raise ConfigError(f"{name} needs one entry per scale ({scales})")
        depths = self.stage_depths
        if min(depths) < 1 or any(g < 0 or g > d for g, d in zip(self.grid_blocks, depths,
                                                                  strict=False)):
            raise ConfigError("every scale needs a block; grid_blocks must be in [0, depth]")
        for width in self.stage_widths:
            if width % self.heads:
                raise ConfigError(f"width {width} does not split into {self.heads} heads")
        if any(self.grid_blocks):
            if self.grid_window < 1:
                raise ConfigError("grid_blocks need a positive grid_window")
            for stage, side in enumerate(self.stage_sides):
                if self.grid_blocks[stage] and side % self.grid_window:
                    raise ConfigError(f"scale {stage} side {side} is not divisible by "
                                      f"grid_window {self.grid_window}")

    @property
    def branch_widths(self) -> tuple[int, ...]:
        """Embedding width of each scale: (width,) when single-scale."""
        if not self.multiscale:
            return (self.width,)
        return self.scale_widths or (self.width // 4 * 3, self.width // 4)

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Token width of each scale's blocks: the running sum of the embedding widths."""
        widths, total = [], 0
        for width in self.branch_widths:
            total += width
            widths.append(total)
        return tuple(widths)

    @property
    def stage_depths(self) -> tuple[int, ...]:
        """Blocks of each scale."""
        return self.scale_depths or (self.depth,) * len(self.branch_widths)

    @property
    def stage_sides(self) -> tuple[int, ...]:
        """Token grid side of each scale."""
        first = self.img_size // self.patch
        return tuple(first // 2**i for i in range(len(self.branch_widths)))


# The discriminator keeps down-sampling until the feature map side is at most this.
_D_TARGET_SIDE = 8
_D_MIN_IMG_SIZE = 8


def num_up_blocks(img_size: int, bottom: int) -> int:
    """Number of x2 up-blocks taking a ``bottom`` grid to ``img_size``; raises ConfigError."""
    ratio = img_size // bottom if bottom >= 1 else 0
    if ratio < 2 or ratio * bottom != img_size or ratio & (ratio - 1) != 0:
        raise ConfigError(
            f"CNN generator needs img_size = bottom * 2**n with n >= 1; got img_size={img_size}, "
            f"bottom={bottom} (e.g. bottom=4 for 16/32/64 px, bottom=6 for 48 px)"
        )
    return ratio.bit_length() - 1


def num_down_blocks(img_size: int) -> int:
    """Down-blocks after the optimized block: halve (floor) until the side is <= 8."""
    side = img_size // 2
    count = 0
    while side > _D_TARGET_SIDE:
        side //= 2
        count += 1
    return count


@dataclass(frozen=True)
class CNNGeneratorConfig:
    """Hyper-parameters of the ResNet generator (defaults: SNGAN CIFAR-10, 32 px);
    ``num_classes`` and ``class_names`` as for :class:`GeneratorConfig`."""

    img_size: int = 32
    channels: int = 3
    latent_dim: int = 128
    width: int = 256
    bottom: int = 4
    num_classes: int = 0
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        check_num_classes(self.num_classes)
        check_class_names(self.class_names, self.num_classes)
        for name in ("channels", "latent_dim", "width"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"CNNGeneratorConfig.{name} must be >= 1, got {getattr(self, name)}"
                )
        num_up_blocks(self.img_size, self.bottom)


@dataclass(frozen=True)
class CNNDiscriminatorConfig:
    """Hyper-parameters of the ResNet discriminator (defaults: SNGAN CIFAR-10, 32 px)."""

    img_size: int = 32
    channels: int = 3
    width: int = 128
    num_classes: int = 0

    def __post_init__(self) -> None:
        check_num_classes(self.num_classes)
        if self.img_size < _D_MIN_IMG_SIZE:
            raise ConfigError(
                f"CNN discriminator needs img_size >= {_D_MIN_IMG_SIZE}, got {self.img_size}"
            )
        for name in ("channels", "width"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"CNNDiscriminatorConfig.{name} must be >= 1, got {getattr(self, name)}"
                )
