"""What a run is built from, every part checked together before any work: the options, the
model configs (new, resumed or fine-tuned), the data, the locality schedule and the
evaluation settings; :func:`checked_parts` reports every problem at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transgan.artifacts.loading import InitWeights, read_init_weights
from transgan.data import ImageDataset, build_dataset, may_download
from transgan.errors import DataError, OptionsError, ScheduleError
from transgan.metrics.defaults import default_metrics, default_reference
from transgan.models.build import (
    discriminator_config,
    generator_config,
)
from transgan.models.capabilities import config_has_locality, config_has_super_resolution
from transgan.models.config_dicts import apply_overrides, config_from_dict
from transgan.models.presets import (
    PRESETS,
    AnyDiscriminatorConfig,
    AnyGeneratorConfig,
    Architecture,
    get_preset,
    list_presets,
)
from transgan.train.data_choice import presets_of_size
from transgan.train.distributed import DistInfo
from transgan.train.options import LocalityOptions, TrainOptions
from transgan.train.schedules import OFFICIAL_LOCALITY_EPOCHS, LocalitySchedule
from transgan.train.state import Counters
from transgan.train.step import GANStep
from transgan.train.validation import Problems, validate

# A run's generator and discriminator configs.
Configs = tuple[AnyGeneratorConfig, AnyDiscriminatorConfig]


def model_configs(opts: TrainOptions, resume_state: dict[str, Any] | None,
                  init: InitWeights | None) -> Configs:
    """G and D configs: a resumed run's, a fine-tuned run's (with overrides) or the preset's."""
    if resume_state is not None:
        g_cfg = config_from_dict(resume_state["generator_config"])
        d_cfg = config_from_dict(resume_state["discriminator_config"])
    elif init is not None:
        g_cfg = apply_overrides(config_from_dict(init.generator_config), opts.generator,
                                "generator")
        d_base = (config_from_dict(init.discriminator_config) if init.discriminator_config
                  else discriminator_config(opts.preset))
        d_cfg = apply_overrides(d_base, opts.discriminator, "discriminator")
    else:
        g_cfg = generator_config(opts.preset, **opts.generator)
        d_cfg = discriminator_config(opts.preset, **opts.discriminator)
    Architecture(g_cfg, d_cfg)  # both for the same images
    return g_cfg, d_cfg


def check_models(opts: TrainOptions, g_cfg: AnyGeneratorConfig) -> None:
    """OptionsError when the generator does not suit --resolution, --mtct or --locality."""
    if opts.resolution is not None and opts.resolution != g_cfg.img_size:
        others = presets_of_size(opts.resolution)
        fix = (f"presets of {opts.resolution} px: {', '.join(others)}" if others else
               "sizes on offer: " + ", ".join(
                   str(s) for s in sorted({get_preset(n).architecture.img_size
                                           for n in list_presets()})))
        raise OptionsError(f"--resolution {opts.resolution} does not match preset "
                           f"{opts.preset} ({g_cfg.img_size} px): drop --resolution or "
                           f"--preset ({fix})")
    if opts.objective.mtct and not config_has_super_resolution(g_cfg):
        raise OptionsError("--mtct needs a transformer generator without latent modulation")
    locality = opts.locality_init.locality
    if locality.strip().lower() not in ("", "none") and not config_has_locality(g_cfg):
        raise OptionsError("--locality needs a transformer generator (this preset's is a CNN)")


def check_data_size(dataset: ImageDataset, batch: int) -> None:
    """OptionsError naming the fixes when the data set holds fewer images than one batch."""
    if len(dataset) < batch:
        fitting = 2 ** (len(dataset).bit_length() - 1)
        raise OptionsError(f"the data holds {len(dataset)} usable images, fewer than one batch "
                           f"of {batch}: add pictures or use --batch {fitting} or less")


@dataclass(frozen=True)
class RunParts:
    """What a run is built from, every part checked: G and D configs (for the data set's
    classes), the data set and its spec, the locality schedule and the --init-from weights
    (None without)."""

    generator: AnyGeneratorConfig
    discriminator: AnyDiscriminatorConfig
    dataset: ImageDataset
    data_spec: str
    schedule: LocalitySchedule
    init: InitWeights | None


def checked_parts(opts: TrainOptions, world_size: int, resume_state: dict[str, Any] | None,
                  root: str, known: Sequence[str] = ()) -> RunParts:
    """The parts of a run after every check of options, models and data; RunProblems lists
    all that fail (after the ``known`` ones), before any file is written."""
    problems = Problems(known)
    with problems.check():
        validate(opts, world_size)
    init = None
    if resume_state is None and opts.init_from and Path(opts.init_from).exists():
        init = read_init_weights(opts.init_from)
    configs = None
    with problems.check():
        configs = model_configs(opts, resume_state, init)
    if configs is not None:
        with problems.check():
            check_models(opts, configs[0])
    spec = opts.data or (PRESETS[opts.preset].data if opts.preset in PRESETS else None)
    shape = _image_shape(opts, configs)
    dataset = schedule = None
    # A set that may need a download is read only when nothing else is wrong.
    if spec is not None and shape is not None and not (may_download(spec) and problems.found):
        with problems.check():
            dataset = build_dataset(spec, *shape, root=root)
    if dataset is not None:
        with problems.check():
            check_data_size(dataset, opts.batch)
        with problems.check():
            schedule = locality_schedule(opts.locality_init, len(dataset))
        if configs is not None:
            with problems.check():
                configs = class_configs(opts, *configs, dataset)
    problems.raise_any()
    assert configs is not None and dataset is not None and spec is not None
    assert schedule is not None
    return RunParts(configs[0], configs[1], dataset, spec, schedule, init)


def _image_shape(opts: TrainOptions, configs: Configs | None) -> tuple[int, int] | None:
    """(resolution, channels) the data set is read at: the generator's, else the preset's."""
    if configs is not None:
        return configs[0].img_size, configs[0].channels
    if opts.preset in PRESETS:
        arch = PRESETS[opts.preset].architecture
        return arch.img_size, arch.channels
    return None


def class_configs(opts: TrainOptions, g_cfg: AnyGeneratorConfig, d_cfg: AnyDiscriminatorConfig,
                  dataset: ImageDataset) -> Configs:
    """G and D configs for the data set's classes with --conditional (its labels are checked
    here, before any work; G keeps their names); unchanged otherwise."""
    if not opts.conditional:
        if g_cfg.num_classes or d_cfg.num_classes:
            raise OptionsError("the models are class-conditional; train them with --conditional")
        return g_cfg, d_cfg
    try:
        dataset.require_labels()
    except DataError as exc:
        raise OptionsError(f"--conditional needs class labels, but {exc}: put each class's "
                           "pictures in a subfolder of its own (or `transgan prepare --labels`),"
                           " or train without classes: --no-conditional") from None
    classes = dataset.num_classes
    for cfg, what in ((g_cfg, "generator"), (d_cfg, "discriminator")):
        if cfg.num_classes not in (0, classes):
            raise OptionsError(f"the {what} has {cfg.num_classes} classes but the data set has "
                               f"{classes}")
    names = tuple(dataset.class_names or ())
    return (dataclasses.replace(g_cfg, num_classes=classes, class_names=names),
            dataclasses.replace(d_cfg, num_classes=classes))


@dataclass
class Run:
    """What a run trains, built and checked from its options: the data, the locality
    schedule, G, D and G's EMA on the device, and the GAN step that trains them."""

    opts: TrainOptions
    dist: DistInfo
    precision: str
    data_spec: str
    dataset: ImageDataset
    schedule: LocalitySchedule
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    counters: Counters
    step: GANStep
    notes: tuple[str, ...] = ()  # what building decided, said when the run starts

    @property
    def device(self) -> torch.device:
        return self.dist.device


def locality_schedule(options: LocalityOptions, dataset_size: int) -> LocalitySchedule:
    """The locality window schedule the options describe, in images."""
    try:
        if options.locality in OFFICIAL_LOCALITY_EPOCHS:
            return LocalitySchedule.official(options.locality, dataset_size,
                                             kind=options.locality_kind)
        return LocalitySchedule.parse(options.locality, kind=options.locality_kind)
    except ScheduleError as exc:
        raise OptionsError(f"--locality: {exc}") from None


def eval_settings(opts: TrainOptions, data_spec: str,
                  is_main: bool) -> tuple[tuple[str, ...], str]:
    """Metrics and reference of periodic evaluation, checked (weights too) before training."""
    from transgan.metrics.registry import families, parse_metrics

    metrics = (default_metrics(data_spec) if opts.evaluation.eval_metrics == "auto"
               else parse_metrics(opts.evaluation.eval_metrics))
    ref = (default_reference(data_spec) if opts.evaluation.eval_ref == "auto"
           else opts.evaluation.eval_ref)
    if opts.evaluation.eval_every and is_main and "inception" in families(metrics):
        from transgan.metrics.inception import resolve_inception_weights

        resolve_inception_weights(opts.evaluation.inception_weights)
    return metrics, ref
