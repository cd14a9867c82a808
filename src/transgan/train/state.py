"""What a run keeps: progress counters, running stats, every rank's RNG, the checkpoint dict,
the run directory (its lock included) and which checkpoint a run resumes from."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transgan.artifacts.checkpoint import load_checkpoint, remove_stale_temporaries
from transgan.errors import (
    CheckpointError,
    ForeignCheckpointError,
    OptionsError,
    RunDirectoryBusy,
    TrainingDiverged,
)
from transgan.train.option_files import save_yaml
from transgan.train.options import RESUMABLE, TrainOptions, merge

LOCK_NAME = ".lock"


@dataclass
class Counters:
    """Training progress; everything needed to continue exactly where a run stopped."""

    images: int = 0
    d_steps: int = 0
    g_steps: int = 0
    skipped: int = 0
    rollbacks: int = 0
    wall_time: float = 0.0

    def load(self, saved: dict[str, Any]) -> None:
        """Take the saved values, in place (the training loop holds this object)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, type(f.default)(saved.get(f.name, f.default)))


@dataclass
class StatSums:
    """Running sums of scalar stats, kept on the device; nothing is read on the host here."""

    sums: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, stats: dict[str, Tensor]) -> None:
        for key, value in stats.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, Tensor]:
        """Each stat's mean over the times it was added (still on the device)."""
        return {k: v if self.counts[k] == 1 else v / self.counts[k] for k, v in self.sums.items()}

    def to_state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, device: torch.device) -> StatSums:
        """The sums a checkpoint holds (empty for checkpoints without them)."""
        if not state:
            return cls()
        sums = {k: v.to(device) for k, v in state["sums"].items()}
        return cls(sums, {k: int(v) for k, v in state["counts"].items()})


# ---------------------------------------------------------------------------- RNG
def rank_rng_state(device: torch.device) -> dict[str, Tensor]:
    """This process's global generators: torch's CPU one and, on CUDA, the device's."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def rng_state(ranks: list[dict[str, Tensor]],
              generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every rank's global generators (in rank order) and the shared named generators."""
    return {"ranks": ranks, **{name: g.get_state() for name, g in generators.items()}}


def restore_rng(rng: dict[str, Any], rank: int, device: torch.device,
                generators: dict[str, torch.Generator]) -> None:
    """Set this rank's generators as saved; a rank the run did not have takes rank 0's
    (ranks draw the same numbers), as do checkpoints with one state only."""
    ranks = rng.get("ranks") or [{k: rng[k] for k in ("torch", "cuda") if k in rng}]
    own = ranks[rank] if rank < len(ranks) else ranks[0]
    torch.set_rng_state(own["torch"].cpu())
    if "cuda" in own and device.type == "cuda":
        torch.cuda.set_rng_state(own["cuda"].cpu(), device)
    for name, generator in generators.items():
        if name in rng:
            generator.set_state(rng[name].cpu())


# ---------------------------------------------------------------------------- checkpoint
def checkpoint_state(opts: TrainOptions, models: dict[str, Any], counters: Counters,
                     window: StatSums, best: dict[str, Any], rng: dict[str, Any]) -> dict[str, Any]:
    """Everything a checkpoint holds: options, models and optimisers (``models``),
    counters, the stats since the last log line, the best evaluation and the RNG."""
    return {
        "options": opts.to_dict(),
        **models,
        "counters": dataclasses.asdict(counters),
        "best": best,
        "stat_window": window.to_state(),
        "rng": rng,
    }


def check_finite(models: dict[str, nn.Module], images: int) -> None:
    """TrainingDiverged when any of ``models`` (by name) has weights that are not finite, so
    that no checkpoint keeps them."""
    for name, model in models.items():
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise TrainingDiverged(f"{name} weights are not finite at {images:,} images; no "
                                   "checkpoint written (the last good one is kept)")


def restore_progress(state: dict[str, Any], counters: Counters,
                     device: torch.device) -> StatSums:
    """Load the saved counters into ``counters``; returns the saved stats window."""
    counters.load(state["counters"])
    return StatSums.from_state(state.get("stat_window"), device)


# ---------------------------------------------------------------------------- run directory
def default_run_dir(opts: TrainOptions) -> Path:
    return Path(opts.outputs.out) if opts.outputs.out else Path("runs") / opts.preset


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise a one-line OptionsError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise OptionsError(
            f"run directory {folder} is not writable: {exc.strerror or exc}"
        ) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``RUN/.lock``, created exclusively, holding the owner's PID and host.

    A lock whose process is gone (same host, PID not alive) is taken over.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._live_owner()
                if owner:
                    raise RunDirectoryBusy(
                        f"run directory {self.path.parent} is in use by process {owner} "
                        f"(remove {self.path} if that process is not training)") from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            return
        raise RunDirectoryBusy(f"run directory {self.path.parent} is being locked by another "
                               "process")

    def _live_owner(self) -> str | None:
        """'PID on HOST' of the lock's owner, or None when that process is gone."""
        try:
            pid_text, host = (self.path.read_text().split() + ["", ""])[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            return None  # a half-written or vanished lock: its writer died or let go
        if host == socket.gethostname() and not _alive(pid):
            return None
        return f"{pid} on {host}"

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def prepare_run_dir(run_dir: Path, opts: TrainOptions, images: int) -> None:
    """Folders and options.yaml; stats and metrics records after ``images`` (those of a
    stopped process after its checkpoint) are dropped, all of them for a new run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir / "checkpoints")
    (run_dir / "samples").mkdir(exist_ok=True)
    save_yaml(opts, run_dir / "options.yaml")
    for name in ("stats.jsonl", "metrics.jsonl"):
        path = run_dir / name
        if images and path.exists():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line)["images"] <= images]
            path.write_text("".join(line + "\n" for line in kept))
        elif path.exists():
            path.unlink()


# ---------------------------------------------------------------------------- resume
def load_resume_state(run_dir: Path) -> dict[str, Any] | None:
    """The run directory's latest checkpoint, or None when it has none. A damaged
    ``latest.pt`` gives way to the newest intact numbered checkpoint, saying so on stderr."""
    folder = run_dir / "checkpoints"
    latest = folder / "latest.pt"
    if not latest.exists():
        return None
    try:
        return load_checkpoint(latest)
    except ForeignCheckpointError:
        raise
    except CheckpointError as damage:
        for numbered in sorted(folder.glob("ckpt-*.pt"), reverse=True):
            try:
                state = load_checkpoint(numbered)
            except CheckpointError:
                continue
            print(f"transgan: {damage}; resuming from {numbered.name}, the newest intact "
                  "checkpoint", file=sys.stderr)
            return state
        raise CheckpointError(f"{damage}, and no numbered checkpoint beside it is intact "
                              "(use another --out to start anew)") from None


def resolve_resume(
    opts: TrainOptions, explicit: set[str], require: bool
) -> tuple[TrainOptions, dict[str, Any] | None]:
    """Continue the run in ``opts.outputs.out`` when it has a checkpoint; options must agree
    with it."""
    run_dir = default_run_dir(opts)
    state = load_resume_state(run_dir)
    if state is None:
        if require:
            raise OptionsError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
        return opts, None
    saved = merge(TrainOptions(), dict(state["options"]), f"checkpoint of {run_dir}")
    for name in sorted(explicit - RESUMABLE):
        if opts.value(name) != saved.value(name):
            raise OptionsError(
                f"--{name.replace('_', '-')} {opts.value(name)!r} differs from the run in "
                f"{run_dir} ({saved.value(name)!r}); use another --out for a new run"
            )
    updates = {name: opts.value(name) for name in explicit & RESUMABLE}
    updates["out"] = str(run_dir)
    return saved.replace(**updates), state
