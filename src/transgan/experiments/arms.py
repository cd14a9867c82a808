"""The registered experiments (v1 Tables 1, 3 and 4) as arms: each arm is a preset and option
updates, made into the options of one run per seed. Free of torch, so that the command line
can list the experiments without loading it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transgan.data.specs import is_digits_spec
from transgan.errors import OptionsError
from transgan.metrics.defaults import TRAINING_NUM, TRAINING_NUM_DIGITS
from transgan.models.configs import GeneratorConfig
from transgan.models.presets import DIGITS_GAMMA, R3GAN_RECIPE, V1_SIZES, get_preset
from transgan.train.options import OPTION_NAMES
from transgan.train.recipes import options_for

# The digits' transformer pair as the paper has it (v1 ViT D, WGAN-GP-eps): the base of every
# digits experiment, which the digits preset's D and objective came from.
DIGITS_PAIR = "digits-vit"
# The heads every generator stage splits its width into (the config's default).
HEADS = GeneratorConfig.heads


@dataclass(frozen=True)
class Arm:
    """One setting of an experiment: a run-directory name, a display label, option updates."""

    name: str
    label: str
    updates: dict[str, Any] = field(default_factory=dict)


def _gd_combos(data: str, width_scale: float) -> list[Arm]:
    presets = ((DIGITS_PAIR, "digits-cnn-d", "digits-cnn-g", "digits-cnn") if is_digits_spec(data)
               else ("transgan-s", "cnn-d", "cnn-g", "cnn"))
    names = (("transG-transD", "Transformer G + Transformer D"),
             ("transG-cnnD", "Transformer G + CNN D"),
             ("cnnG-transD", "CNN G + Transformer D"),
             ("cnnG-cnnD", "CNN G + CNN D"))
    return [Arm(name, label, {"preset": preset})
            for (name, label), preset in zip(names, presets, strict=True)]


def _tricks(data: str, width_scale: float) -> list[Arm]:
    preset = DIGITS_PAIR if is_digits_spec(data) else "transgan-s"
    steps = (("baseline", "Baseline (no augmentation)", {"augment": "none"}),
             ("diffaug", "+ DiffAugment", {"augment": "translation,cutout,color"}),
             ("mtct", "+ MT-CT", {"mtct": True}),
             ("locality", "+ locality-aware init", {"locality": "official"}))
    arms, updates = [], {"preset": preset}
    for name, label, change in steps:
        updates = {**updates, **change}
        arms.append(Arm(name, label, dict(updates)))
    return arms


def _augment(data: str, width_scale: float) -> list[Arm]:
    preset = DIGITS_PAIR if is_digits_spec(data) else "transgan-s"
    return [Arm("fixed", "DiffAugment on every sample (official)", {"preset": preset}),
            Arm("adaptive", "DiffAugment with adaptive p (ADA heuristic)",
                {"preset": preset, "augment_p": "adaptive"})]


def _objectives(data: str, width_scale: float) -> list[Arm]:
    pairs = ((("transformer", "Transformer G + D"), DIGITS_PAIR if is_digits_spec(data)
              else "transgan-s"),
             (("cnn", "CNN G + D"), "digits-cnn" if is_digits_spec(data) else "cnn"))
    arms = []
    for (pair, pair_label), preset in pairs:
        arms.append(Arm(f"wgangp-{pair}", f"{pair_label}, WGAN-GP-eps (official)",
                        {"preset": preset}))
        arms.append(Arm(f"rpgan-{pair}", f"{pair_label}, relativistic pairing + R1 + R2",
                        {"preset": preset, **R3GAN_RECIPE}))
        arms.append(Arm(f"rpgan-fd-{pair}",
                        f"{pair_label}, relativistic pairing + finite-difference R1 + R2",
                        {"preset": preset, **R3GAN_RECIPE, "penalty": "finite-difference"}))
    return arms


# The discriminator's ingredients, each added alone to today's ViT D, then all together.
D_INGREDIENTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("rmsnorm", "+ RMSNorm", {"norm": "rmsnorm"}),
    ("no-norm", "no normalisation (R3GAN)", {"norm": "none"}),
    ("layer-scale", "+ LayerScale 0.1", {"layer_scale": 0.1}),
    ("swiglu", "+ SwiGLU MLP", {"swiglu": True}),
    ("rope", "+ 2-D RoPE", {"rope": True}),
    ("l2-sn", "+ L2 attention, improved spectral norm (ViTGAN)",
     {"l2_attention": True, "spectral_norm": True}),
    ("overlap", "+ overlapping patches", {"overlap_embed": True}),
)
# The penalty weights of the sweep, held constant over the run: decayed from 0.05 to 0.005,
# the transformer D's input gradients grow tenfold (docs/results/README.md, objectives).
D_GAMMAS = (0.2, 0.5, 2.0)
# The ingredient the one-seed screen ranked first, swept with the weights above, and the pair
# of the screen's two best, tried together at the digits preset's weight.
D_SWEPT = "rope"
D_BEST_TWO = ("rope", "rmsnorm")


def _constant_gamma(gamma: float) -> dict[str, Any]:
    return {"r1_gamma": gamma, "r2_gamma": gamma, "gamma_schedule": "constant"}


def _discriminators(data: str, width_scale: float) -> list[Arm]:
    preset = DIGITS_PAIR if is_digits_spec(data) else "transgan-s"
    cnn_d = "digits-cnn-d" if is_digits_spec(data) else "cnn-d"
    objective = {"preset": preset, **R3GAN_RECIPE}
    arms = [Arm("vit", "ViT D (today's)", dict(objective))]
    combined: dict[str, Any] = {}
    changes = {name: (label, change) for name, label, change in D_INGREDIENTS}
    for name, (label, change) in changes.items():
        arms.append(Arm(name, label, {**objective, "discriminator": dict(change)}))
        if name != "no-norm":
            combined.update(change)
    arms.append(Arm("combined", "all of them (RMSNorm)", {**objective,
                                                          "discriminator": combined}))
    swept_label, swept = changes[D_SWEPT]
    for gamma in D_GAMMAS:
        constant = _constant_gamma(gamma)
        arms.append(Arm(f"vit-gamma{gamma:g}", f"ViT D, constant gamma {gamma:g}",
                        {**objective, **constant}))
        arms.append(Arm(f"{D_SWEPT}-gamma{gamma:g}", f"{swept_label}, constant gamma {gamma:g}",
                        {**objective, **constant, "discriminator": dict(swept)}))
        arms.append(Arm(f"{D_SWEPT}-fd-gamma{gamma:g}",
                        f"{swept_label}, finite-difference penalty, constant gamma {gamma:g}",
                        {**objective, **constant, "discriminator": dict(swept),
                         "penalty": "finite-difference"}))
    both = [changes[name] for name in D_BEST_TWO]
    arms.append(Arm(f"{'-'.join(D_BEST_TWO)}-gamma{DIGITS_GAMMA:g}",
                    f"{' '.join(label for label, _ in both)}, constant gamma {DIGITS_GAMMA:g}",
                    {**objective, **_constant_gamma(DIGITS_GAMMA),
                     "discriminator": {k: v for _, change in both for k, v in change.items()}}))
    arms.append(Arm("cnn-d", "CNN D (reference)", {**R3GAN_RECIPE, "preset": cnn_d}))
    return arms


def scaled_width(width: int, scale: float, stages: int) -> int:
    """``width * scale`` rounded to a multiple that every stage's heads can split."""
    quantum = HEADS * 4 ** (stages - 1)
    return max(quantum, round(width * scale / quantum) * quantum)


def _sizes(data: str, width_scale: float) -> list[Arm]:
    arms = []
    for size, (width, depths) in V1_SIZES.items():
        if is_digits_spec(data):  # digits keep two stages
            depths = depths[:2]
            preset = DIGITS_PAIR
        else:
            preset = f"transgan-{size.lower()}"
        generator: dict[str, Any] = {"depths": list(depths)}
        if is_digits_spec(data) or width_scale != 1.0:
            generator["width"] = scaled_width(width, width_scale, len(depths))
        arms.append(Arm(size, f"TransGAN-{size} (G width {generator.get('width', width)})",
                        {"preset": preset, "generator": generator}))
    return arms


EXPERIMENTS: dict[str, tuple[str, Callable[[str, float], list[Arm]]]] = {
    "gd-combos": ("transformer / CNN generator and discriminator combinations (v1 Table 1)",
                  _gd_combos),
    "tricks": ("cumulative training tricks: DiffAugment, MT-CT, locality init (v1 Table 3)",
               _tricks),
    "sizes": ("generator sizes S, M, L, XL (v1 Table 4)", _sizes),
    "augment": ("DiffAugment on every sample against adaptive augmentation", _augment),
    "objectives": ("WGAN-GP-eps against R3GAN's relativistic pairing with R1 + R2 (exact and "
                   "finite-difference), for the transformer pair and the CNN pair", _objectives),
    "discriminators": ("the transformer discriminator's later ingredients (RMSNorm, LayerScale, "
                       "SwiGLU, RoPE, L2 attention with spectral norm, overlapping patches), "
                       "alone and together, with a penalty-weight sweep, against the CNN D",
                       _discriminators),
}


def experiment_arms(name: str, data: str, width_scale: float = 1.0) -> list[Arm]:
    """The arms of experiment ``name`` on ``data``; OptionsError for an unknown name."""
    if name not in EXPERIMENTS:
        raise OptionsError(f"unknown experiment '{name}'; choose from {', '.join(EXPERIMENTS)}")
    if width_scale <= 0:
        raise OptionsError(f"--width-scale must be positive, got {width_scale}")
    return EXPERIMENTS[name][1](data, width_scale)


def _config_fields(preset: str, part: str) -> set[str]:
    return {f.name for f in dataclasses.fields(getattr(get_preset(preset).architecture, part))}


def arm_updates(arm: Arm, extra: dict[str, Any]) -> dict[str, Any]:
    """Arm updates <- ``extra``; extra model overrides apply only where the config has the field."""
    unknown = sorted(set(extra) - set(OPTION_NAMES))
    if unknown:
        raise OptionsError(f"experiment options: unknown option '{unknown[0]}'")
    updates = {**arm.updates, **{k: v for k, v in extra.items()
                                 if k not in ("generator", "discriminator")}}
    preset = updates.get("preset", DIGITS_PAIR)
    for part in ("generator", "discriminator"):
        fields = _config_fields(preset, part)
        merged = {**arm.updates.get(part, {}),
                  **{k: v for k, v in extra.get(part, {}).items() if k in fields}}
        if merged:
            updates[part] = merged
    return updates


def run_options(arm: Arm, data: str, budget: int, seed: int, run_dir: Path,
                extra: dict[str, Any]) -> Any:
    """The TrainOptions of one arm x seed: the preset recipe, the budget, periodic evaluation."""
    updates = arm_updates(arm, extra)
    base = options_for(updates["preset"], {}, f"experiment arm {arm.name}")
    every = max(1, budget // 4)
    schedule = {
        "data": data, "images": budget, "seed": seed, "out": str(run_dir), "progress": False,
        "eval_every": every,
        "eval_num": TRAINING_NUM_DIGITS if is_digits_spec(data) else TRAINING_NUM,
        "log_every": max(1, min(base.outputs.log_every, budget // 20)),
        "sample_every": min(base.outputs.sample_every, every),
        "checkpoint_every": min(base.outputs.checkpoint_every, every),
    }
    return options_for(updates["preset"], {**schedule, **updates}, f"experiment arm {arm.name}")
