"""The Slurm launcher's options and their checks, free of torch so that the command line
reports a wrong one at once."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from transgan.errors import OptionsError

LAUNCHERS = ("local", "slurm")
# Seconds before the time limit at which Slurm signals a job to checkpoint and requeue.
SIGNAL_DELAY_S = 120
# A job's time limit unless --time says otherwise (a longer run requeues until done).
DEFAULT_TIME_MIN = 4 * 60


@dataclass(frozen=True)
class SlurmOptions:
    """What each job asks of Slurm. ``time_min`` is the job's time limit in minutes;
    ``extra`` are further ``#SBATCH`` options as (name, value), e.g. account or qos."""

    partition: str | None = None
    time_min: int = DEFAULT_TIME_MIN
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int | None = None
    cpus_per_task: int = 1
    max_parallel: int | None = None
    signal_delay_s: int = SIGNAL_DELAY_S
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def tasks(self) -> int:
        """Processes per node: one per GPU, or ``tasks_per_node`` (default 1)."""
        return self.tasks_per_node or self.gpus_per_node or 1

    def problems(self) -> list[str]:
        """Every wrong option, one line each."""
        found = [f"--{name.replace('_', '-')} must be at least {low}, got {value}"
                 for name, value, low in (("time", self.time_min, 1), ("nodes", self.nodes, 1),
                                          ("gpus_per_node", self.gpus_per_node, 0),
                                          ("cpus_per_task", self.cpus_per_task, 1),
                                          ("tasks_per_node", self.tasks_per_node, 1),
                                          ("max_parallel", self.max_parallel, 1))
                 if value is not None and value < low]
        if (self.gpus_per_node and self.tasks_per_node
                and self.tasks_per_node != self.gpus_per_node):
            found.append(f"--tasks-per-node {self.tasks_per_node} differs from --gpus-per-node "
                         f"{self.gpus_per_node}: each process trains on one GPU")
        return found

    def parameters(self) -> dict[str, object]:
        """submitit's SlurmExecutor parameters."""
        params: dict[str, object] = {
            "time": self.time_min, "nodes": self.nodes, "ntasks_per_node": self.tasks,
            "cpus_per_task": self.cpus_per_task,
            # Half of a short limit, so that a job trains before it is told to stop.
            "signal_delay_s": min(self.signal_delay_s, self.time_min * 30),
            "additional_parameters": dict(self.extra)}
        if self.partition:
            params["partition"] = self.partition
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.max_parallel:
            params["array_parallelism"] = self.max_parallel
        return params


def parse_time(text: str) -> int:
    """Minutes (rounded up) of a time limit in any of sbatch's forms: ``minutes``,
    ``minutes:seconds``, ``hours:minutes:seconds``, ``days-hours``, ``days-hours:minutes``,
    ``days-hours:minutes:seconds``."""
    days, dash, rest = text.strip().partition("-")
    if not dash:
        days, rest = "0", text.strip()
    try:
        numbers = [int(part) for part in rest.split(":")]
        whole_days = int(days)
    except ValueError:
        numbers, whole_days = [], -1
    if not numbers or len(numbers) > 3 or whole_days < 0 or min(numbers) < 0:
        raise ValueError(f"--time: expected minutes, H:MM:SS or D-HH:MM:SS, got '{text}'")
    if dash:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = (numbers + [0, 0])[:3]
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    else:  # minutes[:seconds]
        hours, minutes, seconds = 0, numbers[0], (numbers[1] if len(numbers) == 2 else 0)
    return whole_days * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)


def parse_extra(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--slurm-option account=abc`` items as (name, value); ValueError when malformed."""
    pairs = []
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip().lstrip("-")
        if not eq or not name or not value:
            raise ValueError(f"--slurm-option takes NAME=VALUE (an #SBATCH option), got '{item}'")
        pairs.append((name, value))
    return tuple(pairs)


def check_slurm(options: SlurmOptions, known: Sequence[str] = ()) -> None:
    """OptionsError listing every wrong option (after the ``known`` ones), and saying when
    ``sbatch`` is missing."""
    found = [*known, *options.problems()]
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        found.append("--launcher slurm submits with Slurm's sbatch and squeue, which are not on "
                     "PATH; run it where Slurm is installed (a login node)")
    if found:
        raise OptionsError("; ".join(found))
