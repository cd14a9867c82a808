"""The ``--launcher`` flags of ``train`` and ``experiment``: where the runs go (this machine,
or Slurm jobs) and what each Slurm job asks for."""

from __future__ import annotations

import argparse

from transgan.slurm.options import (
    DEFAULT_TIME_MIN,
    LAUNCHERS,
    SlurmOptions,
    check_slurm,
    parse_extra,
    parse_time,
)

_DEFAULTS = SlurmOptions()


def add_launcher_arguments(parser: argparse.ArgumentParser, training: bool) -> None:
    """``--launcher`` and the Slurm job's resources; ``training`` adds the multi-node ones
    (``experiment`` adds ``--max-parallel`` instead)."""
    group = parser.add_argument_group(
        "launcher", "--launcher slurm submits the run(s) as Slurm jobs (with submitit) instead "
        "of training here; a job requeues itself before its time limit and resumes")
    group.add_argument("--launcher", choices=LAUNCHERS, default="local",
                       help="local: train here (default); slurm: submit Slurm jobs")
    group.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    group.add_argument("--time", metavar="LIMIT",
                       help="time limit of a job, minutes or [D-]H:MM:SS; a run that needs "
                       f"longer is requeued until done (default {DEFAULT_TIME_MIN} minutes)")
    group.add_argument("--gpus-per-node", type=int,
                       help="GPUs per job and node; one process each (default "
                       f"{_DEFAULTS.gpus_per_node}: CPUs)")
    group.add_argument("--cpus-per-task", type=int,
                       help="CPUs per process, e.g. for data loading (default "
                       f"{_DEFAULTS.cpus_per_task})")
    group.add_argument("--slurm-option", action="append", metavar="NAME=VALUE",
                       help="any further #SBATCH option, e.g. account=abc or qos=high "
                       "(repeatable)")
    group.add_argument("--wait", action="store_true",
                       help="wait until the jobs have left the queue")
    if training:
        group.add_argument("--nodes", type=int,
                           help=f"nodes of the job (default {_DEFAULTS.nodes})")
        group.add_argument("--tasks-per-node", type=int,
                           help="processes per node (default: --gpus-per-node, or 1)")
    else:
        group.add_argument("--max-parallel", type=int,
                           help="runs of the array job running at once (default: no limit)")


def slurm_options(args: argparse.Namespace) -> SlurmOptions | None:
    """The Slurm options of ``args`` after every check (None with ``--launcher local``); an
    OptionsError lists what is wrong, before anything is submitted."""
    if args.launcher != "slurm":
        return None
    known: list[str] = []
    extra: tuple[tuple[str, str], ...] = ()
    minutes = None
    try:
        extra = parse_extra(args.slurm_option or [])
    except ValueError as exc:
        known.append(str(exc))
    try:
        minutes = parse_time(args.time) if args.time is not None else None
    except ValueError as exc:
        known.append(str(exc))
    given = {"partition": args.partition, "time_min": minutes,
             "nodes": getattr(args, "nodes", None), "gpus_per_node": args.gpus_per_node,
             "tasks_per_node": getattr(args, "tasks_per_node", None),
             "cpus_per_task": args.cpus_per_task,
             "max_parallel": getattr(args, "max_parallel", None)}
    options = SlurmOptions(**{k: v for k, v in given.items() if v is not None}, extra=extra)
    check_slurm(options, known)
    return options
