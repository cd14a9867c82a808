"""What a run is made of, from its options: model configs (new, resumed or fine-tuned), the
models, the locality schedule and the evaluation settings, each checked before training."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from transgan.data import ImageDataset
from transgan.loading import InitWeights, load_state
from transgan.metrics.defaults import default_metrics, default_reference
from transgan.models import (
    apply_overrides,
    config_from_dict,
    discriminator_config,
    discriminator_from_config,
    generator_config,
    generator_from_config,
    supports_locality,
    supports_super_resolution,
)
from transgan.train.options import OptionsError, TrainOptions
from transgan.train.schedules import OFFICIAL_LOCALITY_EPOCHS, LocalitySchedule, ScheduleError


def model_configs(opts: TrainOptions, resume_state: dict[str, Any] | None,
                  init: InitWeights | None) -> tuple[Any, Any]:
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
    if (g_cfg.img_size, g_cfg.channels) != (d_cfg.img_size, d_cfg.channels):
        raise OptionsError(
            f"generator makes {g_cfg.img_size} px x {g_cfg.channels} channels but the "
            f"discriminator expects {d_cfg.img_size} px x {d_cfg.channels}"
        )
    return g_cfg, d_cfg


def class_configs(opts: TrainOptions, g_cfg: Any, d_cfg: Any,
                  dataset: ImageDataset) -> tuple[Any, Any]:
    """G and D configs for the data set's classes with --conditional (its labels are checked
    here, before any work); unchanged otherwise."""
    if not opts.conditional:
        if g_cfg.num_classes or d_cfg.num_classes:
            raise OptionsError("the models are class-conditional; train them with --conditional")
        return g_cfg, d_cfg
    dataset.require_labels()
    classes = dataset.num_classes
    for cfg, what in ((g_cfg, "generator"), (d_cfg, "discriminator")):
        if cfg.num_classes not in (0, classes):
            raise OptionsError(f"the {what} has {cfg.num_classes} classes but the data set has "
                               f"{classes}")
    return (dataclasses.replace(g_cfg, num_classes=classes),
            dataclasses.replace(d_cfg, num_classes=classes))


def build_models(opts: TrainOptions, g_cfg: Any, d_cfg: Any,
                 init: InitWeights | None,
                 schedule: LocalitySchedule) -> tuple[nn.Module, nn.Module]:
    """G and D (with --init-from weights), checked against the tricks the options ask for."""
    G = generator_from_config(g_cfg)
    D = discriminator_from_config(d_cfg)
    if init is not None:
        load_state(G, init.generator, f"--init-from {opts.init_from}: generator")
        if init.discriminator is not None:
            load_state(D, init.discriminator, f"--init-from {opts.init_from}: discriminator")
    if opts.mtct and not supports_super_resolution(G):
        raise OptionsError("--mtct needs a transformer generator without latent modulation")
    if schedule.steps and not supports_locality(G):
        raise OptionsError("--locality needs a transformer generator (this preset's is a CNN)")
    return G, D


def locality_schedule(opts: TrainOptions, dataset_size: int) -> LocalitySchedule:
    """The locality window schedule the options describe, in images."""
    try:
        if opts.locality in OFFICIAL_LOCALITY_EPOCHS:
            return LocalitySchedule.official(opts.locality, dataset_size, kind=opts.locality_kind)
        return LocalitySchedule.parse(opts.locality, kind=opts.locality_kind)
    except ScheduleError as exc:
        raise OptionsError(f"--locality: {exc}") from None


def eval_settings(opts: TrainOptions, data_spec: str,
                  is_main: bool) -> tuple[tuple[str, ...], str]:
    """Metrics and reference of periodic evaluation, checked (weights too) before training."""
    from transgan.metrics.evaluate import DIGITS_METRICS, parse_metrics

    metrics = (default_metrics(data_spec) if opts.eval_metrics == "auto"
               else parse_metrics(opts.eval_metrics))
    ref = default_reference(data_spec) if opts.eval_ref == "auto" else opts.eval_ref
    if opts.eval_every and is_main and any(m not in DIGITS_METRICS for m in metrics):
        from transgan.metrics.inception import resolve_inception_weights

        resolve_inception_weights(opts.inception_weights)
    return metrics, ref
