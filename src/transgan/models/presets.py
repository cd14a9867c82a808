"""Named model presets: one registry for the paper's sizes, v2 models, digits and CNN baselines,
each one record of its models, its training recipe, its data and its description.

Figures follow TransGAN v1 Table 4 (sizes S/M/L/XL) and the official v2 training scripts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from transgan.errors import ConfigError
from transgan.models.configs import (
    CNNDiscriminatorConfig,
    CNNGeneratorConfig,
    DiscriminatorConfig,
    GeneratorConfig,
)
from transgan.models.recipe import Recipe

AnyGeneratorConfig = GeneratorConfig | CNNGeneratorConfig
AnyDiscriminatorConfig = DiscriminatorConfig | CNNDiscriminatorConfig


@dataclass(frozen=True)
class Architecture:
    """A generator and a discriminator configuration that fit together (same images)."""

    generator: AnyGeneratorConfig
    discriminator: AnyDiscriminatorConfig

    def __post_init__(self) -> None:
        g, d = self.generator, self.discriminator
        if (g.img_size, g.channels) != (d.img_size, d.channels):
            raise ConfigError(
                f"generator makes {g.img_size} px x {g.channels} channels but the "
                f"discriminator expects {d.img_size} px x {d.channels}"
            )

    @property
    def img_size(self) -> int:
        return self.generator.img_size

    @property
    def channels(self) -> int:
        return self.generator.channels


@dataclass(frozen=True)
class Preset:
    """A named architecture, the training options it changes from the defaults and the data
    set it trains on by default: everything a preset is, so that adding one is one entry."""

    name: str
    description: str
    architecture: Architecture
    recipe: Recipe
    data: str


# The training defaults are the official CIFAR-10 recipe (D batch 64, n_critic 4, 500k G steps =
# 128M real images) except for G batch 128 and random flips. STL-10: batches 32/64, n_critic 5.
CIFAR_RECIPE = Recipe(g_batch=128, hflip=True)
# The v1 generators mask their last block by the official epoch schedule (v2 has no mask).
V1_CIFAR_RECIPE = CIFAR_RECIPE.but(locality="official")
STL_RECIPE = CIFAR_RECIPE.but(batch=32, g_batch=64, n_critic=5, images=80_000_000)
# The official v2 STL-10 script: its own erasing in place of cutout, EMA warm-up 0.05.
V2_STL_RECIPE = STL_RECIPE.but(augment="translation,stl_erase_ratio,color", ema_rampup=0.05)
# The official 256 px scripts: D batch 16 accumulated 4 times, n_critic 4, a fixed EMA beta
# 0.995 per G step (ema_warmup 0) = a half-life of 64 * ln 0.5 / ln 0.995 images of D batch.
HQ256_RECIPE = Recipe(
    batch=64, accum=4, g_batch=128, hflip=True, ema_rampup=None,
    ema_half_life=64 * math.log(0.5) / math.log(0.995),
    augment="translation,erase_ratio,color", images=128_000_000,
)
# The CPU demo: a higher learning rate and one D step per G step learn digits in minutes;
# its matrices are too small for bf16 to pay off on a CPU (measured 76 vs 123 img/s).
# --augment-p adaptive can take p from 0 to 1 within a third of the run (ada_speed).
DIGITS_RECIPE = Recipe(
    batch=32, n_critic=1, lr_g=2e-4, lr_d=2e-4, images=60_000, precision="fp32",
    log_every=1_000, sample_every=5_000, checkpoint_every=10_000, ada_speed=20_000,
)
# R3GAN's objective and schedules (its CIFAR-10 preset): relativistic pairing with R1 and R2
# at gamma 0.05 falling to 0.005, the learning rate to 1/4, beta2 from 0.9 up to 0.99 and the
# augmentation probability from 0 up to 0.55, cosines over the run.
R3GAN_RECIPE = Recipe(
    loss="rpgan", r1_gamma=0.05, r2_gamma=0.05, lr_schedule="cosine", beta2_schedule="cosine",
    gamma_schedule="cosine", augment_p_schedule="cosine", augment_p="0.55",
)
# The digits preset's (docs/results/discriminators.md): R3GAN's objective with the penalty
# weight held constant; decayed, the transformer D's input gradients grow tenfold. Its cycle is
# slower than WGAN-GP's (0.78x), so 50,000 images keep a run near 10 minutes on 2 cores.
DIGITS_GAMMA = 0.5
DIGITS_PAIRING_RECIPE = DIGITS_RECIPE.but(**R3GAN_RECIPE).but(
    r1_gamma=DIGITS_GAMMA, r2_gamma=DIGITS_GAMMA, gamma_schedule="constant", images=50_000
)
# The mode-seeking weight of class-conditional runs (the default demo's, and of a conditional
# run on a user's data unless --mode-seeking says otherwise): without it each class collapses.
CONDITIONAL_MODE_SEEKING = 0.25
# The default demo: one class embedding per digit, no augmentation, and a mode-seeking term
# that keeps each class from collapsing to one stroke (docs/results/conditional.md).
DIGITS_CONDITIONAL_RECIPE = DIGITS_RECIPE.but(conditional=True, augment="none",
                                              mode_seeking=CONDITIONAL_MODE_SEEKING)


V1_DISCRIMINATOR = DiscriminatorConfig(img_size=32, patch=4, width=384, depth=7)

# The official 256 px generators: PixelNorm, bicubic 8->16->32 at full width, then
# PixelShuffle stages with 16x16 grid attention, noise injection in every attention layer.
HQ256_G = GeneratorConfig(
    img_size=256, latent_dim=512, bottom=8, width=1024, depths=(5, 4, 4, 4, 4, 4),
    norm="pixelnorm", rel_pos_bias=True, bicubic_stages=2, grid_window=16, grid_stages=(3, 4, 5),
    noise=True,
)
# Generator width and stage depths of TransGAN-S/M/L/XL (v1 Table 4).
V1_SIZES: dict[str, tuple[int, tuple[int, ...]]] = {
    "S": (384, (5, 2, 2)), "M": (512, (5, 2, 2)), "L": (768, (5, 2, 2)), "XL": (1024, (5, 4, 2)),
}


def _v1(size: str, width: int, depths: tuple[int, ...]) -> Preset:
    return Preset(
        name=f"transgan-{size.lower()}",
        description=f"TransGAN-{size} (v1 Table 4), CIFAR-10 32 px",
        architecture=Architecture(
            GeneratorConfig(latent_dim=1024, width=width, depths=depths), V1_DISCRIMINATOR
        ),
        recipe=V1_CIFAR_RECIPE,
        data="cifar10",
    )


V2_CIFAR_D = DiscriminatorConfig(
    img_size=32, patch=2, width=384, depth=3, multiscale=True, rel_pos_bias=True, noise=True
)
# Sized for 2 CPU cores: the 16x16 stage uses 8x8 grid attention, D sees 4x4 patches.
# The digits models end in tanh (the official generators have no output activation).
DIGITS_G = GeneratorConfig(
    img_size=16, channels=1, latent_dim=64, bottom=8, width=128, depths=(3, 2), grid_window=8,
    output_act="tanh",
)
DIGITS_D = DiscriminatorConfig(img_size=16, channels=1, patch=4, width=128, depth=3)
DIGITS = Architecture(DIGITS_G, DIGITS_D)
# The digits preset's D turns queries and keys by 2-D RoPE (the discriminator screen's best).
DIGITS_ROPE = Architecture(DIGITS_G, dataclasses.replace(DIGITS_D, rope=True))
# The CPU family for colour pictures (tiny-32, tiny-64), sized so that a folder of pictures
# learns in minutes on 2 cores with the digits recipe: G is 96 wide at 8x8, its blocks stop at
# 16 px (tiny-32) or 32 px (tiny-64, with 8x8 grid attention there) and its last stage only
# pixel-shuffles; D is 2 blocks of 128 over 8 px patches. On 2 cores tiny-32 trains at about
# 100 img/s (benchmarks/own_pictures.py).
TINY_SIZES = (32, 64)


def tiny_architecture(resolution: int, channels: int = 3) -> Architecture:
    """The tiny family's G and D for ``resolution`` px (one of TINY_SIZES)."""
    if resolution not in TINY_SIZES:
        raise ConfigError(f"the tiny models are {' or '.join(map(str, TINY_SIZES))} px, "
                          f"not {resolution}")
    stages = {32: (2, 1, 0), 64: (2, 1, 1, 0)}[resolution]
    generator = GeneratorConfig(
        img_size=resolution, channels=channels, latent_dim=64, bottom=8, width=96,
        depths=stages, heads=2, grid_window=0 if resolution == 32 else 8,
        bicubic_stages=len(stages) - 3, output_act="tanh",
    )
    discriminator = DiscriminatorConfig(img_size=resolution, channels=channels, patch=8,
                                        width=128, depth=2)
    return Architecture(generator, discriminator)


DIGITS_CNN_G = CNNGeneratorConfig(img_size=16, channels=1, latent_dim=64, width=128)
DIGITS_CNN_D = CNNDiscriminatorConfig(img_size=16, channels=1, width=64)

_PRESETS: tuple[Preset, ...] = (
    *(_v1(size, width, depths) for size, (width, depths) in V1_SIZES.items()),
    Preset(
        name="transgan-stl10",
        description="TransGAN v1 STL-10 48 px (official TransGAN_8_8_G2_1 + ViT_8_8)",
        architecture=Architecture(
            generator=GeneratorConfig(img_size=48, latent_dim=1024, bottom=12, width=768,
                                      depths=(5, 2, 2)),
            discriminator=DiscriminatorConfig(img_size=48, patch=4, width=384, depth=7),
        ),
        recipe=STL_RECIPE.but(locality="official"),
        data="stl10",
    ),
    Preset(
        name="transgan-celeba64",
        description="TransGAN v1 CelebA 64 px (official Celeba64_TransGAN + ViT_8_8)",
        architecture=Architecture(
            generator=GeneratorConfig(img_size=64, latent_dim=1024, bottom=8, width=1024,
                                      depths=(5, 3, 3, 2)),
            discriminator=DiscriminatorConfig(img_size=64, patch=4, width=384, depth=7),
        ),
        recipe=STL_RECIPE.but(images=40_000_000, locality="official-celeba64"),
        data="folder:celeba",
    ),
    Preset(
        name="transgan-v2-cifar10",
        description="TransGAN v2 CIFAR-10 32 px: relative bias, multi-scale D",
        architecture=Architecture(
            generator=GeneratorConfig(latent_dim=256, width=1024, depths=(5, 4, 2),
                                      rel_pos_bias=True),
            discriminator=V2_CIFAR_D,
        ),
        recipe=CIFAR_RECIPE,
        data="cifar10",
    ),
    Preset(
        name="transgan-v2-stl10",
        description="TransGAN v2 STL-10 48 px: bottom 12, PixelNorm, multi-scale D",
        architecture=Architecture(
            generator=GeneratorConfig(
                img_size=48, latent_dim=512, bottom=12, width=1024, depths=(7, 5, 3),
                norm="pixelnorm", rel_pos_bias=True,
            ),
            discriminator=DiscriminatorConfig(
                img_size=48, patch=2, width=384, depth=3, norm="pixelnorm", multiscale=True,
                rel_pos_bias=True, noise=True,
            ),
        ),
        recipe=V2_STL_RECIPE,
        data="stl10",
    ),
    Preset(
        name="transgan-v2-celeba128",
        description="TransGAN v2-style CelebA 128 px: bicubic early stages, 16x16 grid attention",
        architecture=Architecture(
            generator=GeneratorConfig(
                img_size=128, latent_dim=512, bottom=8, width=512, depths=(4, 3, 3, 2, 2),
                bicubic_stages=2, grid_window=16, rel_pos_bias=True,
            ),
            discriminator=DiscriminatorConfig(
                img_size=128, patch=4, width=384, depth=3, multiscale=True, rel_pos_bias=True,
                noise=True,
            ),
        ),
        recipe=CIFAR_RECIPE.but(batch=32, g_batch=64, images=32_000_000),
        data="folder:celeba",
    ),
    Preset(
        name="transgan-v2-church256",
        description="TransGAN v2 LSUN church 256 px (official ViT_custom_local544444_256_rp_noise"
                    " + ViT_scale3_local_new_rp)",
        architecture=Architecture(
            generator=HQ256_G,
            discriminator=DiscriminatorConfig(
                img_size=256, patch=4, width=384, depth=3, multiscale=True,
                scale_widths=(288, 48, 48), scale_depths=(3, 3, 4), grid_window=16,
                grid_blocks=(2, 0, 0), rel_pos_bias=True,
            ),
        ),
        recipe=HQ256_RECIPE,
        data="folder:lsun-church",
    ),
    Preset(
        name="transgan-v2-celebahq256",
        description="TransGAN v2 CelebA-HQ 256 px (official Celeba256_gen + Celeba256_dis)",
        architecture=Architecture(
            generator=dataclasses.replace(
                HQ256_G, depths=(0, 4, 4, 4, 4, 4), latent_modulation=True, smooth_upscales=(4, 5)
            ),
            discriminator=DiscriminatorConfig(
                img_size=256, patch=2, width=384, depth=3, multiscale=True,
                scale_widths=(96, 96, 192), scale_depths=(3, 3, 4), grid_window=4,
                grid_blocks=(3, 2, 0), overlap_embed=True,
            ),
        ),
        recipe=HQ256_RECIPE,
        data="folder:celeba-hq",
    ),
    Preset(
        name="digits",
        description="small transformer GAN for scikit-learn digits, 16 px gray: D with 2-D "
                    "RoPE, relativistic pairing + R1 + R2",
        architecture=DIGITS_ROPE,
        recipe=DIGITS_PAIRING_RECIPE,
        data="digits",
    ),
    Preset(
        name="digits-vit",
        description="the digits models with the v1 ViT D and WGAN-GP-eps (the experiments' "
                    "transformer pair)",
        architecture=DIGITS,
        recipe=DIGITS_RECIPE,
        data="digits",
    ),
    Preset(
        name="digits-conditional",
        description="the digits-vit models drawing a requested digit (CPU demo, the default)",
        architecture=DIGITS,
        recipe=DIGITS_CONDITIONAL_RECIPE,
        data="digits",
    ),
    Preset(
        name="digits-32",
        description="larger transformer GAN for scikit-learn digits, 32 px gray",
        architecture=Architecture(
            generator=GeneratorConfig(
                img_size=32, channels=1, latent_dim=128, bottom=8, width=256, depths=(3, 2, 2),
                output_act="tanh",
            ),
            discriminator=DiscriminatorConfig(img_size=32, channels=1, patch=4, width=192,
                                              depth=4),
        ),
        recipe=DIGITS_RECIPE,
        data="digits",
    ),
    *(Preset(
        name=f"tiny-{size}",
        description=f"small transformer GAN for colour pictures on a CPU, {size} px",
        architecture=tiny_architecture(size),
        recipe=DIGITS_RECIPE,
        data="cifar10" if size == 32 else "folder:celeba",
    ) for size in TINY_SIZES),
    Preset(
        name="digits-cnn",
        description="CNN G + CNN D on digits 16 px (G/D swap baseline)",
        architecture=Architecture(
            generator=DIGITS_CNN_G,
            discriminator=DIGITS_CNN_D,
        ),
        recipe=DIGITS_RECIPE,
        data="digits",
    ),
    Preset(
        name="digits-cnn-g",
        description="CNN G + transformer D on digits 16 px (G/D swap)",
        architecture=Architecture(
            generator=DIGITS_CNN_G,
            discriminator=DIGITS_D,
        ),
        recipe=DIGITS_RECIPE,
        data="digits",
    ),
    Preset(
        name="digits-cnn-d",
        description="transformer G + CNN D on digits 16 px (G/D swap)",
        architecture=Architecture(
            generator=DIGITS_G,
            discriminator=DIGITS_CNN_D,
        ),
        recipe=DIGITS_RECIPE,
        data="digits",
    ),
    Preset(
        name="cnn",
        description="ResNet CNN G + CNN D (SNGAN/AutoGAN family), CIFAR-10 32 px",
        architecture=Architecture(
            generator=CNNGeneratorConfig(),
            discriminator=CNNDiscriminatorConfig(),
        ),
        recipe=CIFAR_RECIPE,
        data="cifar10",
    ),
    Preset(
        name="cnn-g",
        description="CNN G + TransGAN D, CIFAR-10 32 px (v1 Table 1 swap)",
        architecture=Architecture(
            generator=CNNGeneratorConfig(),
            discriminator=V1_DISCRIMINATOR,
        ),
        recipe=CIFAR_RECIPE,
        data="cifar10",
    ),
    Preset(
        name="cnn-d",
        description="TransGAN-S G + CNN D, CIFAR-10 32 px (v1 Table 1 swap)",
        architecture=Architecture(
            generator=GeneratorConfig(latent_dim=1024, width=384, depths=(5, 2, 2)),
            discriminator=CNNDiscriminatorConfig(),
        ),
        recipe=CIFAR_RECIPE,
        data="cifar10",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}
DEFAULT_PRESET = "digits-conditional"


def list_presets() -> list[str]:
    """Names of every registered preset, in registry order."""
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a one-line ConfigError listing the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset '{name}'; choose from {', '.join(PRESETS)}"
        ) from None
