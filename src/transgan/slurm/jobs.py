"""Runs as Slurm jobs, submitted with submitit: one job per run (an array for an experiment's
arms x seeds, one multi-task job for a training over nodes).

A job trains its run in its run directory exactly as ``transgan train`` would, resuming from
the run's checkpoint when there is one. Before a time limit (or a pre-emption) Slurm sends
SIGUSR2; the training then stops at a checkpoint and the job requeues itself, so a run longer
than the partition's limit finishes by itself. ``scancel`` (SIGTERM) stops it at a checkpoint
without a requeue; running the command again resubmits it, and it resumes.

Which runs are queued or running is asked of ``squeue``; each run directory keeps the id of
its last job (``slurm-job.json``) and where its logs are.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from transgan.errors import RunFailure, UserError, one_line
from transgan.experiments.plan import Plan, run_plan
from transgan.slurm.options import SlurmOptions
from transgan.train.state import load_resume_state

JOB_FILE = "slurm-job.json"
LOG_FOLDER = "slurm"
# squeue states of a job that is still coming or going.
ACTIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING",
                 "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT")
# The signals a scheduler sends before a time limit or a pre-emption: stop and requeue.
REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
POLL_S = 2.0
# Requeues submitit may make when the signal comes while a job starts up, before the training
# takes over (submitit's default of 3 ends a run whose signals keep coming early).
STARTUP_REQUEUES = 20
# Lines of a job's log that Slurm or submitit wrote.
_SCHEDULER_LINE = re.compile(r"^(srun:|slurmstepd|submitit (INFO|WARNING|ERROR))")


# ----------------------------------------------------------------------------- the job
def _requeue(job_id: str) -> None:
    subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True)


@dataclass
class SlurmRun:
    """What a job runs: ``plan`` trained to ``budget`` images in its run directory, resumed
    from its checkpoint when there is one. Rank 0 requeues the job when a time limit's signal
    stopped the training."""

    plan: Plan
    budget: int

    def __call__(self) -> str:
        import submitit

        env = submitit.JobEnvironment()
        # As many threads as the job has CPUs per process (the default counts the node's).
        torch.set_num_threads(int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))
        if env.num_tasks > 1:
            submitit.helpers.TorchDistributedEnvironment().export(overwrite=True)
        print(f"{self.plan.where}: {env_summary()}", flush=True)
        try:
            status, stopped = run_plan(self.plan, self.budget,
                                       lambda text: print(text, flush=True))
        except (UserError, RunFailure) as exc:  # one line in the log, as on the command line
            print(f"transgan: error: {one_line(str(exc))}", file=sys.stderr, flush=True)
            raise SystemExit(2 if isinstance(exc, UserError) else 1) from None
        if stopped in REQUEUE_SIGNALS and env.global_rank == 0:
            print(f"stopped by signal {stopped} before the time limit; requeued", flush=True)
            _requeue(env.job_id)
            return "requeued"
        return status

    def checkpoint(self) -> object:
        """Asked by submitit when the time-limit signal comes outside the training (while it
        starts up): requeue as it is, since the run resumes from its own checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


# ------------------------------------------------------------------------ bookkeeping
def squeue_states(job_ids: Sequence[str]) -> dict[str, str]:
    """The squeue state (one word, e.g. PENDING) of each of ``job_ids`` still known to Slurm's
    queue."""
    if not job_ids:
        return {}
    done = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(job_ids)],
                          capture_output=True, text=True, check=False)
    states = {}
    for line in done.stdout.splitlines():
        job, _, state = line.strip().partition(" ")
        states[job] = state
    return states


def read_job(run_dir: Path) -> dict[str, str] | None:
    """The last job submitted for ``run_dir``: ``job_id`` and its ``log`` file."""
    path = run_dir / JOB_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def active_jobs(run_dirs: Sequence[Path]) -> dict[Path, str]:
    """The run directories whose last job is queued or running, with its state."""
    jobs = {run: job["job_id"] for run in run_dirs if (job := read_job(run))}
    states = squeue_states(sorted(set(jobs.values())))
    return {run: states[job] for run, job in jobs.items() if states.get(job) in ACTIVE_STATES}


def _job_log(run_dir: Path) -> list[str]:
    """The non-empty lines of the run's last job's log (errors first, else its output)."""
    job = read_job(run_dir) or {}
    for key in ("err", "out"):
        path = Path(job.get(key, ""))
        if path.is_file():
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
                     if line.strip()]
            if lines:
                return lines
    return []


def last_log_line(lines: Sequence[str]) -> str:
    """The last of a job's log ``lines`` that the run wrote, not Slurm's or submitit's own."""
    own = [line for line in lines if not _SCHEDULER_LINE.match(line)]
    return own[-1] if own else "(no log)"


def submit(runs: Sequence[tuple[Path, SlurmRun]], options: SlurmOptions, logs: Path,
           name: str) -> list[dict[str, str]]:
    """Submit one job per (run directory, job), as an array when there are several. Each run
    directory records its job (:func:`read_job`); returns those records."""
    import submitit

    executor = submitit.SlurmExecutor(folder=str(logs / "%j"), max_num_timeout=STARTUP_REQUEUES)
    executor.update_parameters(job_name=name, **options.parameters())
    with executor.batch():
        jobs = [executor.submit(job) for _, job in runs]
    records = []
    for (run_dir, _), job in zip(runs, jobs, strict=True):
        record = {"job_id": job.job_id, "out": str(job.paths.stdout).replace("%t", "0"),
                  "err": str(job.paths.stderr).replace("%t", "0")}
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / JOB_FILE).write_text(json.dumps(record) + "\n")
        records.append(record)
    return records


def images_trained(plan: Plan) -> int:
    """Images the run of ``plan`` has trained, by its latest checkpoint (0 without one)."""
    state = load_resume_state(Path(plan.opts.outputs.out))
    return 0 if state is None else int(state["counters"]["images"])


@dataclass(frozen=True)
class RunState:
    """Where one run of an experiment stands: ``state`` is done, queued, running, stopped,
    failed or not submitted; ``detail`` the last line of its job's log where it matters."""

    plan: Plan
    state: str
    images: int
    job_id: str
    detail: str = ""


def run_states(plans: Sequence[Plan], budget: int) -> list[RunState]:
    """The state of each run: its checkpoint, its last job and Slurm's queue."""
    dirs = [Path(plan.opts.outputs.out) for plan in plans]
    active = active_jobs(dirs)
    states = []
    for plan, run_dir in zip(plans, dirs, strict=True):
        images = images_trained(plan)
        job = (read_job(run_dir) or {}).get("job_id", "")
        if images >= budget:
            states.append(RunState(plan, "done", images, job))
        elif run_dir in active:
            queued = active[run_dir] == "PENDING"
            states.append(RunState(plan, "queued" if queued else "running", images, job))
        elif job:
            lines = _job_log(run_dir)
            line = last_log_line(lines)
            cancelled = any("CANCELLED" in x for x in lines if _SCHEDULER_LINE.match(x))
            state = "stopped" if cancelled or "stopped by signal" in line else "failed"
            states.append(RunState(plan, state, images, job, line))
        else:
            states.append(RunState(plan, "not submitted", images, job))
    return states


def format_states(states: Sequence[RunState], budget: int) -> str:
    """One line per run: its state, images and job."""
    width = max(len(s.plan.run) for s in states)
    lines = []
    for s in states:
        job = f"  job {s.job_id}" if s.job_id else ""
        detail = f"  {s.detail}" if s.detail else ""
        lines.append(f"{s.plan.run.ljust(width)}  {s.state:<13}  {s.images:>9,} of {budget:,} "
                     f"images{job}{detail}")
    return "\n".join(lines)


def submit_experiment(plans: Sequence[Plan], budget: int, options: SlurmOptions, logs: Path,
                      name: str, say: Callable[[str], None]) -> list[str]:
    """Submit the runs that are neither done nor queued or running (an array job); their
    job ids."""
    waiting = [s.plan for s in run_states(plans, budget)
               if s.state in ("not submitted", "stopped", "failed")]
    if not waiting:
        return []
    jobs = submit([(Path(plan.opts.outputs.out), SlurmRun(plan, budget)) for plan in waiting],
                  options, logs, name)
    ids = [job["job_id"] for job in jobs]
    say(f"submitted {len(ids)} run(s) to Slurm: job(s) {', '.join(ids)}; logs in {logs}/")
    for plan, job in zip(waiting, jobs, strict=True):
        say(f"  {plan.run}: job {job['job_id']}, follow with: tail -f {job['err']}")
    return ids


def wait_for(job_ids: Sequence[str], say: Callable[[str], None] = print) -> None:
    """Return once none of ``job_ids`` is queued or running."""
    remaining = list(job_ids)
    while remaining:
        states = squeue_states(remaining)
        remaining = [job for job in remaining if states.get(job) in ACTIVE_STATES]
        if remaining:
            time.sleep(POLL_S)
    say("every job has left the queue")


def env_summary() -> str:
    """Where this process runs, for a job's log."""
    return (f"slurm job {os.environ.get('SLURM_JOB_ID', '?')} on "
            f"{os.environ.get('SLURMD_NODENAME', '?')}, python {sys.executable}")
