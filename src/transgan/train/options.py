"""Training options: the one table of defaults shared by the CLI, YAML files and the trainer.

The options come in groups, each handed whole to the part of the run it configures (the loss,
the optimiser, the augmentation, ...); an option's name is unique over all groups, so the
command line and YAML files name options flat (``--lr-g``, ``lr_g:``) while the code reads
``opts.optim.lr_g``. The defaults are the official TransGAN CIFAR-10 recipe; a preset's recipe
overrides some of them (see :mod:`transgan.models.presets`). Each field's ``help`` metadata
becomes the command-line help; ``train.validation.validate`` checks every option before any
work starts. Free of torch, so that the command line can show its help without loading it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from transgan.errors import OptionsError
from transgan.metrics.defaults import TRAINING_NUM
from transgan.metrics.registry import METRICS
from transgan.models.presets import DEFAULT_PRESET
from transgan.train.choices import DEVICE_HELP, LOSSES, PENALTIES, SCHEDULES, ZERO_CENTRED_LOSSES
from transgan.train.defaults import (
    ADA_INTERVAL,
    ADA_SPEED,
    ADA_TARGET,
    BETA2_START,
    DRIFT_WEIGHT,
    GAMMA_END_RATIO,
    GP_WEIGHT,
    LR_END_RATIO,
    PENALTY_SIGMA,
    R1_GAMMA,
    R2_GAMMA,
)


def _opt(default: Any, help: str, **extra: Any) -> Any:
    if isinstance(default, dict | list):
        return field(
            default_factory=lambda: type(default)(default), metadata={"help": help, **extra}
        )
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class LossOptions:
    """The loss, its penalties and the extra terms of G's loss (mode seeking, MT-CT)."""

    TITLE: ClassVar[str] = "loss and regularisation"

    loss: str = _opt("wgangp-eps", " | ".join(LOSSES))
    gp_weight: float = _opt(GP_WEIGHT, "WGAN-GP penalty weight")
    drift_weight: float = _opt(DRIFT_WEIGHT, "weight of the drift term (E[D(x)])^2, the "
                                             "squared mean real logit (wgangp-eps)")
    r1_gamma: float = _opt(R1_GAMMA, "R1 weight gamma (logistic-r1, rpgan): the loss adds "
                                     "gamma / 2 x E||grad D(x_real)||^2")
    r2_gamma: float = _opt(R2_GAMMA, "R2 weight gamma (rpgan): the loss adds gamma / 2 x "
                                     "E||grad D(x_fake)||^2")
    penalty: str = _opt("exact", f"{' | '.join(PENALTIES)}: how the R1 / R2 penalties of "
                                 f"{' and '.join(ZERO_CENTRED_LOSSES)} are taken: the input "
                                 "gradient by a double backward, or (D(x + sigma e) - D(x))^2 "
                                 "/ sigma^2 with e ~ N(0, I) in D's main pass (the same gamma "
                                 "means the same; no double backward)")
    penalty_sigma: float = _opt(PENALTY_SIGMA, "step sigma of the finite-difference penalty, "
                                               "on images in [-1, 1]")
    lazy_reg: int = _opt(1, "apply the gradient penalty every k D steps, scaled by k")
    mode_seeking: float = _opt(0.0, "weight of the mode-seeking term (Mao et al. 2019): G's "
                                    "loss adds weight / (mean |G(z1) - G(z2)| / mean |z1 - z2|) "
                                    "over pairs of its samples, of one class when conditional "
                                    "(0 = off)")
    mtct: bool = _opt(False, "multi-task co-training with super-resolution")
    mtct_weight: float = _opt(50.0, "MT-CT loss weight lambda")
    mtct_until: int | None = _opt(None, "switch MT-CT off after this many images (default never)")


@dataclass
class OptimOptions:
    """Adam's settings, gradient clipping and the schedules of the learning rates, beta2 and the
    regulariser's weights."""

    TITLE: ClassVar[str] = "optimiser and schedules"

    lr_g: float = _opt(1e-4, "generator learning rate")
    lr_d: float = _opt(1e-4, "discriminator learning rate")
    beta1: float = _opt(0.0, "Adam beta1")
    beta2: float = _opt(0.99, "Adam beta2")
    grad_clip: float = _opt(5.0, "gradient-norm clipping (0 = off)")
    lr_schedule: str = _opt("constant", f"{' | '.join(SCHEDULES)}: linear or cosine takes both "
                                        "learning rates to --lr-end-ratio x theirs over "
                                        "--schedule-images (cosine: R3GAN; linear with "
                                        "--lr-end-ratio 0: the official lr_decay)")
    lr_end_ratio: float = _opt(LR_END_RATIO, "where the scheduled learning rates end, as a "
                                             "fraction of --lr-g / --lr-d")
    beta2_schedule: str = _opt("constant", f"{' | '.join(SCHEDULES)}: linear or cosine takes "
                                           "Adam's beta2 from --beta2-start to --beta2 (R3GAN)")
    beta2_start: float = _opt(BETA2_START, "where the scheduled beta2 starts")
    gamma_schedule: str = _opt("constant", f"{' | '.join(SCHEDULES)}: linear or cosine takes the "
                                           "regulariser's weights (--gp-weight, --r1-gamma, "
                                           "--r2-gamma) to --gamma-end-ratio x theirs (R3GAN)")
    gamma_end_ratio: float = _opt(GAMMA_END_RATIO, "where the scheduled regulariser weights end, "
                                                   "as a fraction of theirs")
    schedule_images: int | None = _opt(None, "length of the schedules in real images; "
                                             "they hold their end values after it (default: "
                                             "--images)")


@dataclass
class AugmentOptions:
    """DiffAugment, its probability (fixed, scheduled or adaptive) and flips of the real images."""

    TITLE: ClassVar[str] = "augmentation"

    augment: str = _opt("translation,cutout,color", "DiffAugment policy ('none' = off)")
    augment_params: str = _opt("transgan", "transgan (translation 0.2, cutout p=0.3) | "
                                           "diffaugment (1/8, always)")
    augment_p: str | None = _opt(None, "adaptive | FLOAT: apply each DiffAugment transform to a "
                                       "sample with probability p, fixed or steered by the "
                                       "over-fitting heuristic E[sign(D(x_real))] (StyleGAN2-ADA) "
                                       "(default: every transform on every sample)")
    augment_p_schedule: str = _opt("constant", f"{' | '.join(SCHEDULES)}: linear or cosine "
                                               "ramps the augmentation probability from 0 to "
                                               "--augment-p (R3GAN)")
    ada_target: float = _opt(ADA_TARGET, "adaptive p: target of E[sign(D(x_real))]")
    ada_interval: int = _opt(ADA_INTERVAL, "adaptive p: D steps between adjustments")
    ada_speed: int = _opt(ADA_SPEED, "adaptive p: real images for p to go from 0 to 1")
    hflip: bool = _opt(False, "random horizontal flips of the real images")


@dataclass
class LocalityOptions:
    """The attention window schedule of G's self-attention."""

    TITLE: ClassVar[str] = "locality-aware initialisation"

    locality: str = _opt("none", "locality-aware init schedule: none | official (v1 CIFAR/STL: "
                                 "w 4,6,8,10 until epochs 22,32,42,60 of the data set) | "
                                 "official-celeba64 (w 8,12,16,20 until 5,10,15,20) | "
                                 "'IMAGES:WINDOW,...'")
    locality_kind: str = _opt("band", "band (|i-j|<=w in raster order, official) | square "
                                      "(2-D window)")
    locality_stages: str = _opt("last", "generator stages that get the mask: last (official: "
                                        "the highest resolution) | all | comma list, e.g. 0,-1")
    locality_blocks: str = _opt("last", "blocks of those stages that get it: last (official) "
                                        "| all")


@dataclass
class EMAOptions:
    """The half-life and warm-up of G's exponential moving average."""

    TITLE: ClassVar[str] = "EMA of the generator"

    ema_half_life: float = _opt(500_000.0, "EMA half-life of G in images of D batch per G "
                                           "step (each G step counts one D batch; D sees "
                                           "n_critic times as many real images meanwhile; "
                                           "official ema_kimg 500)")
    ema_rampup: float | None = _opt(0.1, "EMA warm-up (empty: none): the half-life is at most "
                                         "this ratio x the real images D saw before the "
                                         "current G step's D steps (official ema_warmup)")


@dataclass
class EvalOptions:
    """What is evaluated during training, how often and against what."""

    TITLE: ClassVar[str] = "evaluation during training"

    eval_every: int = _opt(0, "images between evaluations during training (0 = off)")
    eval_metrics: str = _opt("auto", "metrics to evaluate: auto (digits-fid,digits-is on digits, "
                                     f"else fid,is) or a comma list of {','.join(METRICS)}")
    eval_num: int = _opt(TRAINING_NUM, "samples per evaluation during training")
    eval_ref: str = _opt("auto", "reference set (auto: the training data's standard one)")
    inception_weights: str | None = _opt(None, "Inception weights file for FID/IS/KID "
                                               "(default $TRANSGAN_INCEPTION_WEIGHTS or cache)")


@dataclass
class OutputOptions:
    """The run directory and what is written to it, how often."""

    TITLE: ClassVar[str] = "outputs"

    out: str | None = _opt(None, "run directory (default runs/PRESET); re-running it resumes")
    log_every: int = _opt(64_000, "images between stats lines")
    sample_every: int = _opt(640_000, "images between sample grids")
    num_samples: int = _opt(64, "images in each sample grid")
    checkpoint_every: int = _opt(1_280_000, "images between checkpoints (see also "
                                            "--checkpoint-minutes)")
    checkpoint_minutes: float = _opt(10.0, "besides --checkpoint-every, a checkpoint whenever "
                                           "this many minutes of wall time passed since the "
                                           "last one (0 = off)")
    keep_checkpoints: int = _opt(3, "numbered checkpoints to keep besides latest.pt")
    progress: bool = _opt(True, "show progress: a bar on a terminal, else (stderr a file or "
                                "pipe) one line per --log-every with img/s, losses and ETA")


@dataclass
class RuntimeOptions:
    """Where and how the run executes; none of it changes what is trained (up to rounding)."""

    TITLE: ClassVar[str] = "runtime"

    device: str = _opt("auto", DEVICE_HELP)
    precision: str = _opt("auto", "auto (bf16 autocast where the device multiplies bf16 "
                                  "natively: CUDA, CPUs with AVX512-BF16/AMX) | fp32 | bf16")
    compile: bool = _opt(False, "torch.compile G's passes and D's main passes (an exact "
                                "penalty stays eager; a finite-difference one is part of D's "
                                "main pass); pays on CUDA")
    cuda_graphs: bool = _opt(False, "as --compile, and replay the compiled passes as CUDA "
                                    "graphs (fewer kernel launches; CUDA only)")
    activation_checkpointing: bool = _opt(False, "recompute each transformer block of G and D "
                                                  "in the backward pass instead of keeping its "
                                                  "activations: less memory, more compute, "
                                                  "the same training")
    memory_budget: float | None = _opt(None, "GiB of device memory a training step may use, "
                                             "per process: a short trial at the start picks "
                                             "the smallest --accum whose micro-batch fits "
                                             "(new runs; default: off)")
    deterministic: bool = _opt(False, "deterministic algorithms (for exact resume checks)")
    workers: int | None = _opt(None, "data loader workers (default: automatic)")
    nonfinite_limit: int = _opt(10, "non-finite steps in a row before rolling back to the "
                                    "last checkpoint (single ones are skipped)")
    max_rollbacks: int = _opt(3, "rollbacks before training stops as diverged")


@dataclass
class TrainOptions:
    """Everything that defines a training run; saved in the run directory and checkpoints.

    The run's own options (what is trained on what, how much) are fields here; the rest sit
    in their groups."""

    preset: str = _opt(DEFAULT_PRESET, "model preset (see `transgan models`); with --data and "
                                       "no --preset, the models are chosen for the data")
    data: str | None = _opt(None, "data set: digits | cifar10 | stl10 | folder:PATH | zip:PATH "
                                  "(a `transgan prepare` archive is held in memory; default: "
                                  "the preset's)")
    resolution: int | None = _opt(None, "image side in pixels: picks the model of that size "
                                        "for --data without --preset (default: from the data, "
                                        "at most 32 on a CPU); else must match the preset")
    init_from: str | None = _opt(None, "start a new run from saved weights (fine-tuning): a "
                                       "'transgan convert' folder, an exported .safetensors, a "
                                       "run directory or a checkpoint; G, EMA and D (where "
                                       "saved) and their architecture come from it")
    data_root: str | None = _opt(None, "where torchvision data sets live (default $TRANSGAN_DATA "
                                       "or ~/.cache/transgan/data)")
    images: int = _opt(128_000_000, "training length in real images shown to D")
    batch: int = _opt(64, "D batch size, global over all processes")
    g_batch: int | None = _opt(None, "G batch size (default: the D batch size)")
    accum: int = _opt(1, "gradient accumulation: micro-batches per optimizer step")
    n_critic: int = _opt(4, "D steps per G step")
    conditional: bool = _opt(False, "class-conditional G and D, labels from the data set")
    seed: int = _opt(0, "random seed")
    generator: dict = _opt({}, "generator config overrides, e.g. {width: 256}")
    discriminator: dict = _opt({}, "discriminator config overrides, e.g. {depth: 4}")
    objective: LossOptions = field(default_factory=LossOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    augmentation: AugmentOptions = field(default_factory=AugmentOptions)
    locality_init: LocalityOptions = field(default_factory=LocalityOptions)
    ema: EMAOptions = field(default_factory=EMAOptions)
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    outputs: OutputOptions = field(default_factory=OutputOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)

    def to_dict(self) -> dict[str, Any]:
        """Every option by its flat name, as YAML files and checkpoints hold them."""
        return {name: self.value(name) for name in OPTION_NAMES}

    def value(self, name: str) -> Any:
        """The option called ``name`` (its flat name), wherever its group is."""
        group = OPTION_GROUPS[name]
        return getattr(getattr(self, group) if group else self, name)

    def replace(self, **updates: Any) -> TrainOptions:
        """A copy with options (by flat name) replaced; unchecked, as dataclasses.replace."""
        own = {name: updates.pop(name) for name in list(updates) if OPTION_GROUPS[name] is None}
        groups = {group: dataclasses.replace(
            getattr(self, group),
            **{name: updates[name] for name in updates if OPTION_GROUPS[name] == group})
            for group in {OPTION_GROUPS[name] for name in updates}}
        return dataclasses.replace(self, **own, **groups)


# The option groups of TrainOptions: attribute -> group class, in the order of the help.
GROUPS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(TrainOptions)
                           if isinstance(f.default_factory, type)}
# Every option's field, by its flat name, in the order of the help: the run's own, then the
# groups'.
OPTION_FIELDS: dict[str, dataclasses.Field[Any]] = {
    **{f.name: f for f in dataclasses.fields(TrainOptions) if f.name not in GROUPS},
    **{f.name: f for group in GROUPS.values() for f in dataclasses.fields(group)}}
# The group attribute of each option (None: a field of TrainOptions itself).
OPTION_GROUPS: dict[str, str | None] = {
    **{f.name: None for f in dataclasses.fields(TrainOptions) if f.name not in GROUPS},
    **{f.name: name for name, group in GROUPS.items() for f in dataclasses.fields(group)}}


OPTION_NAMES = tuple(OPTION_FIELDS)
# Options that may change when a run is resumed; the rest must match the saved run.
RESUMABLE = frozenset(
    {"images", "out", "device", "workers", "log_every", "sample_every", "checkpoint_every",
     "checkpoint_minutes", "keep_checkpoints", "progress", "data_root", "compile",
     "cuda_graphs", "activation_checkpointing", "memory_budget", "nonfinite_limit", "max_rollbacks",
     "eval_every", "eval_metrics", "eval_num", "eval_ref", "inception_weights"}
)
# Options that say where and how a run ran (paths, devices, logging, checkpoints, evaluation
# during training), not what it trained: a shared model's recipe leaves them out, and any
# option added later counts as part of the recipe unless named here.
RUN_SETTINGS = frozenset(
    {"out", "data_root", "device", "workers", "compile", "cuda_graphs",
     "activation_checkpointing",
     "memory_budget", "deterministic", "progress",
     "log_every", "sample_every", "num_samples", "checkpoint_every", "checkpoint_minutes",
     "keep_checkpoints", "nonfinite_limit", "max_rollbacks", "eval_every", "eval_metrics",
     "eval_num", "eval_ref", "inception_weights"}
)
def _hint(name: str) -> Any:
    """The type hint of option ``name``, from the class that declares it."""
    group = OPTION_GROUPS[name]
    return typing.get_type_hints(GROUPS[group] if group else TrainOptions)[name]


def field_type(name: str) -> type:
    """The plain Python type of option ``name`` (the non-None member of an Optional)."""
    hint = _hint(name)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _optional(name: str) -> bool:
    """Whether option ``name`` is typed ``X | None``, so it may be left empty."""
    return type(None) in typing.get_args(_hint(name))


def _coerce(name: str, value: Any) -> Any:
    kind = field_type(name)
    if value is None:
        if _optional(name):
            return None
        raise OptionsError(f"option '{name}' cannot be empty")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise OptionsError(
            f"option '{name}' must be {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _upgraded(updates: Mapping[str, Any]) -> Mapping[str, Any]:
    """``updates`` in today's names: ``lr_decay`` (runs and files of earlier releases) is the
    linear learning-rate schedule to 0 over the run."""
    if "lr_decay" not in updates:
        return updates
    new = {name: value for name, value in updates.items() if name != "lr_decay"}
    if updates["lr_decay"] is True:
        new.update(lr_schedule="linear", lr_end_ratio=0.0)
    elif updates["lr_decay"] is not False:
        raise OptionsError(f"option 'lr_decay' must be bool, got {updates['lr_decay']!r}")
    return new


def checked(updates: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``updates`` with each value made its option's type (an int for a float option, a
    whole float for an int one); unknown names and wrong types name ``source``."""
    updates = _upgraded(updates)
    unknown = sorted(set(updates) - set(OPTION_NAMES))
    if unknown:
        raise OptionsError(f"{source}: unknown option '{unknown[0]}'")
    coerced = {}
    for name, value in updates.items():
        try:
            coerced[name] = _coerce(name, value)
        except OptionsError as exc:
            raise OptionsError(f"{source}: {exc}") from None
    return coerced


def merge(base: TrainOptions, updates: Mapping[str, Any], source: str) -> TrainOptions:
    """``base`` with ``updates`` applied; unknown keys and wrong types name ``source``."""
    return base.replace(**checked(updates, source))


def recipe_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The saved options of a run that shape the model it trains: all but RUN_SETTINGS."""
    return {name: value for name, value in options.items() if name not in RUN_SETTINGS}
