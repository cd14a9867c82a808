"""Train every arm x seed of an experiment, one after another or in worker processes, and
write its report."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transgan.errors import ExperimentFailed, ExperimentStopped, OptionsError
from transgan.experiments.arms import EXPERIMENTS, experiment_arms, run_options
from transgan.experiments.plan import STOPPED_MESSAGE, Plan, train_plan
from transgan.experiments.workers import train_in_parallel
from transgan.report import MANIFEST, report_experiment
from transgan.slurm.jobs import (
    LOG_FOLDER,
    format_states,
    run_states,
    submit_experiment,
    wait_for,
)
from transgan.slurm.options import SlurmOptions


def run_experiment(name: str, data: str, budget_images: int, seeds: int, out_dir: str | Path,
                   extra: dict[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None,
                   width_scale: float = 1.0, jobs: int = 1,
                   only: Sequence[str] | None = None, slurm: SlurmOptions | None = None,
                   wait: bool = False, status: bool = False) -> Path | None:
    """Train (or finish) every arm x seed of experiment ``name`` (or of the arms named in
    ``only``); returns the report path.

    ``jobs`` > 1 trains that many runs at once in worker processes that split the CPU threads.
    A signal stops every run at a checkpoint and raises ExperimentStopped. With ``slurm`` the
    runs not yet done or queued are submitted as Slurm jobs instead; the report is written
    once every run is done (``wait``: after waiting for the jobs), else None is returned.
    ``status`` only says where each run stands (done, queued, running, stopped, failed).
    """

    if budget_images <= 0:
        raise OptionsError(f"--budget must be positive, got {budget_images}")
    if seeds < 1:
        raise OptionsError(f"--seeds must be at least 1, got {seeds}")
    if jobs < 1:
        raise OptionsError(f"--jobs must be at least 1, got {jobs}")
    arms = experiment_arms(name, data, width_scale)
    names = [arm.name for arm in arms]
    unknown = [arm for arm in only or () if arm not in names]
    if unknown:
        raise OptionsError(f"--arms: {name} has no arm {', '.join(unknown)}; its arms are "
                           f"{', '.join(names)}")
    extra = dict(extra or {})
    out = Path(out_dir)
    say = progress or (lambda _text: None)
    pairs = [(arm, seed) for arm in arms for seed in range(seeds)
             if only is None or arm.name in only]
    plans = [Plan(f"[{index}/{len(pairs)}]", f"{name} {arm.name} seed {seed}",
                  run_options(arm, data, budget_images, seed, out / arm.name / f"seed{seed}",
                              extra))
             for index, (arm, seed) in enumerate(pairs, 1)]
    if status:
        say(format_states(run_states(plans, budget_images), budget_images))
        return None
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "experiment": name, "description": EXPERIMENTS[name][0], "data": data,
        "budget": budget_images, "seeds": seeds, "width_scale": width_scale, "extra": extra,
        "arms": [{"name": a.name, "label": a.label, "updates": a.updates} for a in arms],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if slurm is not None:
        ids = submit_experiment(plans, budget_images, slurm, out / LOG_FOLDER, name, say)
        if wait:
            wait_for(ids, say)
        states = run_states(plans, budget_images)
        left = [s for s in states if s.state != "done"]
        if left and wait:  # every job has left the queue: these runs failed or were stopped
            first = left[0]
            raise ExperimentFailed(
                f"{len(left)} of {len(states)} runs did not finish ({first.plan.run}: "
                f"{first.state}, {first.detail}); run the same command again to resubmit them")
        if left:
            say(f"{len(states) - len(left)} of {len(states)} runs done; the report is written "
                "when all are: run the same command again then (--status lists the runs)")
            return None
    elif jobs == 1:
        for plan in plans:
            if train_plan(plan, budget_images, say) == "stopped":
                raise ExperimentStopped(STOPPED_MESSAGE)
    else:
        train_in_parallel(plans, budget_images, jobs, say)
    report = report_experiment(out)
    say(f"wrote {report}")
    return report
