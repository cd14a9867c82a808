"""``transgan train``: every training option as a flag, a YAML config, resume."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transgan.cli.launch import add_launcher_arguments, slurm_options
from transgan.cli.parsing import count, key_value
from transgan.data.specs import data_spec_from_path
from transgan.errors import OptionsError
from transgan.models.presets import CONDITIONAL_MODE_SEEKING, DEFAULT_PRESET, PRESETS, get_preset
from transgan.train.option_files import load_yaml
from transgan.train.options import (
    GROUPS,
    OPTION_FIELDS,
    OPTION_GROUPS,
    OPTION_NAMES,
    TrainOptions,
    field_type,
    merge,
)
from transgan.train.recipes import options_for
from transgan.train.validation import validate

if TYPE_CHECKING:
    from transgan.slurm.options import SlurmOptions
    from transgan.train.data_choice import DataFit

MODEL_OVERRIDES = {"generator": "gen", "discriminator": "disc"}


def add_parser(sub: Any) -> None:
    """Register ``train`` on argparse sub-parsers."""
    train = sub.add_parser(
        "train", help=f"train a model (default: preset {DEFAULT_PRESET} on the embedded digits)",
        description=f"Each default shown is what `transgan train` with no options uses: the "
        f"general defaults (the official CIFAR-10 recipe) under the recipe of the default preset "
        f"{DEFAULT_PRESET}; those the recipe sets say so, and another --preset brings its own "
        "recipe. A --config file overrides the recipe, and the command line overrides the file. "
        "With --data and no --preset the models are chosen for the data: its channels, and a "
        "resolution from its pictures (tiny-32 or tiny-64 on a CPU, the paper's models on "
        "CUDA), unconditional unless --conditional.",
    )
    train.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file")
    train.add_argument("--resume", action="store_true",
                       help="require an existing checkpoint in --out (re-running resumes anyway)")
    _add_train_options(train)
    add_launcher_arguments(train, training=True)
    train.set_defaults(func=cmd_train)


def default_text(name: str) -> str | None:
    """The help's note on option ``name``'s default: the value a run with no options uses,
    and whether the default preset's recipe sets it (None when there is no value to show)."""
    used, general_options = _default_runs()
    value = used.value(name)
    if value is None or name in MODEL_OVERRIDES:
        return None
    if name in get_preset(DEFAULT_PRESET).recipe:
        general = _shown(general_options.value(name))
        return (f"default: {_shown(value)}, set by preset {DEFAULT_PRESET}'s recipe; "
                f"general default {general}")
    return f"default: {_shown(value)}"


@functools.cache
def _default_runs() -> tuple[TrainOptions, TrainOptions]:
    """The options of a run with no options, and the general defaults (built once)."""
    return options_for(DEFAULT_PRESET), TrainOptions()


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """A flag for every option; each group of options under its own heading."""
    headings = {None: parser.add_argument_group("run"),
                **{name: parser.add_argument_group(group.TITLE)  # type: ignore[attr-defined]
                   for name, group in GROUPS.items()}}
    for name, f in OPTION_FIELDS.items():
        section = headings[OPTION_GROUPS[name]]
        help_text = f.metadata["help"]
        if name in MODEL_OVERRIDES:
            section.add_argument(
                f"--{MODEL_OVERRIDES[name]}", dest=name, action="append", type=key_value,
                metavar="KEY=VALUE", default=argparse.SUPPRESS,
                help=f"{help_text} (repeatable)",
            )
            continue
        kind = field_type(name)
        flag = f"--{name.replace('_', '-')}"
        note = default_text(name)
        full_help = f"{help_text} ({note})" if note else help_text
        if kind is bool:
            section.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                 default=argparse.SUPPRESS, help=full_help)
        else:
            section.add_argument(flag, dest=name, type=count if kind is int else kind,
                                 default=argparse.SUPPRESS, help=full_help,
                                 metavar=name.upper())


def train_plan_from_args(args: argparse.Namespace
                         ) -> tuple[TrainOptions, set[str], DataFit | None]:
    """Defaults <- the preset's recipe <- YAML config <- command line; the names the user set
    explicitly; and how the models were fitted to --data (None without --data).

    With --data and no --preset the preset is chosen for the data; a named preset keeps its
    models, built for the data's channels.
    """
    given = {name: getattr(args, name) for name in OPTION_NAMES if hasattr(args, name)}
    for name in MODEL_OVERRIDES:
        if name in given:
            given[name] = dict(given[name])
    from_file = load_yaml(args.config) if args.config else {}
    for source in (from_file, given):
        if isinstance(source.get("data"), str):
            source["data"] = data_spec_from_path(source["data"])
    chosen = {**from_file, **given}
    preset = chosen.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise OptionsError(f"option 'preset' must be str, got {preset!r}")
    fit = _fit_to_data(chosen, preset)
    opts = options_for(fit.preset if fit else preset or DEFAULT_PRESET, from_file,
                       f"config file {args.config}")
    opts = merge(opts, given, "command line")
    if fit and fit.channels is not None:
        opts = opts.replace(
            generator={"channels": fit.channels, **opts.generator},
            discriminator={"channels": fit.channels, **opts.discriminator})
    if fit and fit.problems:
        # The data's choice already says what is wrong with --resolution, and the run stops.
        opts = opts.replace(resolution=None)
    explicit = set(from_file) | set(given)
    if (fit and opts.conditional and not opts.objective.mode_seeking
            and "mode_seeking" not in explicit):
        opts = opts.replace(mode_seeking=CONDITIONAL_MODE_SEEKING)
        fit = dataclasses.replace(fit, notes=(
            *fit.notes, f"--conditional: mode seeking {CONDITIONAL_MODE_SEEKING} keeps the "
            "samples of each class varied (without it each class tends to one picture; "
            "--mode-seeking 0 turns it off)"))
    return opts, explicit, fit


def _fit_to_data(chosen: dict[str, Any], preset: str | None) -> DataFit | None:
    """How the models meet --data (None without --data, or with --init-from's models)."""
    data, resolution = chosen.get("data"), chosen.get("resolution")
    if not isinstance(data, str) or chosen.get("init_from"):
        return None
    from transgan.data.profile import profile_data
    from transgan.train.data_choice import choose, fit_preset
    from transgan.train.distributed import resolve_device

    profile = profile_data(data)
    if preset is not None:
        return fit_preset(preset, data, profile) if preset in PRESETS else None
    device = str(chosen.get("device") or TrainOptions().runtime.device)
    return choose(data, profile, resolve_device(device).type,
                  resolution if isinstance(resolution, int) else None)


def train_options_from_args(args: argparse.Namespace) -> tuple[TrainOptions, set[str]]:
    """The options of :func:`train_plan_from_args` and the names the user set explicitly."""
    opts, explicit, _ = train_plan_from_args(args)
    return opts, explicit


def cmd_train(args: argparse.Namespace) -> int:
    opts, explicit, fit = train_plan_from_args(args)
    slurm = slurm_options(args)
    if slurm is not None:
        return submit_training(opts, slurm, args.wait)
    if "data" not in explicit:
        # Without --data no data problem can join them: the options' own mistakes are
        # reported now, before torch and the data load.
        validate(opts)
    from transgan.train.state import resolve_resume
    from transgan.train.training import Trainer

    opts, state = resolve_resume(opts, explicit, args.resume)
    trainer = Trainer.from_options(opts, resume_state=state, fit=fit if state is None else None)
    images = trainer.built.counters.images
    if state is not None and images >= opts.images:
        print(f"run in {trainer.run_dir} already finished ({images:,} images); "
              "raise --images to train longer", file=sys.stderr)
        return 0
    trainer.run()
    # Stopped by a signal (after its checkpoint): 128 + signal, so that `train && export`
    # and schedulers can tell a stopped run from a finished one.
    return 0 if trainer.stop_signal is None else 128 + trainer.stop_signal


def submit_training(opts: TrainOptions, slurm: SlurmOptions, wait: bool) -> int:
    """Submit the run as one Slurm job of ``nodes x tasks`` processes (checked first, as
    torchrun's would be); with ``wait``, its exit status once the job has left the queue."""
    from transgan.experiments.plan import Plan
    from transgan.slurm.jobs import LOG_FOLDER, SlurmRun, images_trained, submit, wait_for
    from transgan.train.state import default_run_dir

    validate(opts, slurm.nodes * slurm.tasks)
    run_dir = default_run_dir(opts).resolve()
    plan = Plan("[1/1]", f"train {run_dir.name}", opts.replace(out=str(run_dir)))
    (record,) = submit([(run_dir, SlurmRun(plan, opts.images))], slurm, run_dir / LOG_FOLDER,
                       f"transgan-{run_dir.name}")
    job, log = record["job_id"], Path(record["err"])
    print(f"submitted job {job}: {slurm.nodes} node(s) x {slurm.tasks} process(es), time "
          f"limit {slurm.time_min} min; logs in {log.parent}/ (follow with: tail -f {log}); "
          f"`squeue -j {job}` shows it")
    if not wait:
        return 0
    wait_for([job])
    images = images_trained(plan)
    done = images >= opts.images
    print(f"run in {run_dir}: {images:,} of {opts.images:,} images"
          f"{'' if done else ' (unfinished; see the logs)'}")
    return 0 if done else 1
