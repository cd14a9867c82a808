"""``transgan experiment`` (paper experiments, all arms x seeds) and ``transgan report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from transgan.cli.launch import add_launcher_arguments, slurm_options
from transgan.cli.parsing import add_device_argument, count
from transgan.data.specs import data_spec_from_path
from transgan.errors import ExperimentStopped, UsageError
from transgan.experiments.arms import EXPERIMENTS
from transgan.train.options import TrainOptions


def add_parser(sub: Any) -> None:
    """Register ``experiment`` and ``report`` on argparse sub-parsers."""
    listing = "; ".join(f"{name}: {desc}" for name, (desc, _) in EXPERIMENTS.items())
    exp = sub.add_parser(
        "experiment", help="run a paper experiment (all arms x seeds) and write its report",
        description=f"Experiments: {listing}. Each arm x seed is a run directory "
        "OUT/ARM/seedK; re-running skips finished runs and resumes unfinished ones.",
    )
    exp.add_argument("name", help=", ".join(EXPERIMENTS))
    exp.add_argument("--data", default="digits", help="digits | cifar10 | stl10 | ...")
    exp.add_argument("--budget", type=count, required=True,
                     help="training length of every run in real images")
    exp.add_argument("--seeds", type=int, default=1, help="seeds per arm (0..K-1)")
    exp.add_argument("--out", help="experiment folder (default experiments/NAME)")
    exp.add_argument("--width-scale", type=float, default=1.0,
                     help="sizes only: multiply generator widths by F (CPU budgets)")
    add_device_argument(exp, None, default_text=TrainOptions().runtime.device)
    exp.add_argument("--arms", help="comma list of the arms to train now (default: all); the "
                     "report covers every arm with runs on disk")
    exp.add_argument("--jobs", type=int, default=1,
                     help="runs trained at once, in processes that split the CPU threads "
                     "(default 1)")
    exp.add_argument("--status", action="store_true",
                     help="list each run's state (done, queued, running, stopped, failed with "
                     "the last line of its job's log) and train nothing")
    add_launcher_arguments(exp, training=False)
    exp.set_defaults(func=cmd_experiment)

    report = sub.add_parser("report", help="tables, plots and HTML of an experiment or a run")
    report.add_argument("directory", help="experiment folder or run directory")
    report.set_defaults(func=cmd_report)


def cmd_experiment(args: argparse.Namespace) -> int:
    from transgan.experiments.run import run_experiment

    extra: dict[str, Any] = {}
    if args.device:
        extra["device"] = args.device
    out = args.out or str(Path("experiments") / args.name)
    slurm = None if args.status else slurm_options(args)
    try:
        data = data_spec_from_path(args.data)
        run_experiment(args.name, data, args.budget, args.seeds, out, extra,
                       progress=print, width_scale=args.width_scale, jobs=args.jobs,
                       only=args.arms.split(",") if args.arms else None, slurm=slurm,
                       wait=args.wait, status=args.status)
    except ExperimentStopped as exc:
        print(f"transgan: {exc}", file=sys.stderr)
        return 130
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from transgan.report import MANIFEST, report_experiment, report_run

    folder = Path(args.directory)
    if (folder / MANIFEST).exists():
        path = report_experiment(folder)
    elif (folder / "stats.jsonl").exists():
        path = report_run(folder)
    else:
        raise UsageError(f"{folder} holds neither an experiment ({MANIFEST}) nor a run "
                         "(stats.jsonl)")
    print(f"wrote {path}")
    return 0
