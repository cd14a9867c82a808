"""One arm x seed of an experiment and how it is trained (or found finished)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transgan.train.options import OPTION_NAMES
from transgan.train.state import resolve_resume
from transgan.train.training import Trainer

STOPPED_MESSAGE = ("experiment stopped by a signal; its runs kept their checkpoints. Run the "
                   "same command again to resume")


@dataclass(frozen=True)
class Plan:
    """One arm x seed of an experiment: its place in the list, its name and its options."""

    place: str  # "[3/8]"
    run: str  # "tricks mtct seed 0"
    opts: Any

    @property
    def where(self) -> str:
        return f"{self.place} {self.run}"


def train_plan(plan: Plan, budget_images: int, say: Callable[[str], None]) -> str:
    """Train (or finish) one run: "done", "skipped" (already finished) or "stopped" (signal)."""
    return run_plan(plan, budget_images, say)[0]


def run_plan(plan: Plan, budget_images: int,
             say: Callable[[str], None]) -> tuple[str, int | None]:
    """:func:`train_plan`'s status and the signal that stopped the run (None if none did)."""
    opts, state = resolve_resume(plan.opts, set(OPTION_NAMES), require=False)
    done = int(state["counters"]["images"]) if state is not None else 0
    if done >= budget_images:
        say(f"{plan.where}: finished ({done:,} images), skipped")
        return "skipped", None
    say(f"{plan.where}: {'resuming at' if done else 'training from'} {done:,} of "
        f"{budget_images:,} images")
    trainer = Trainer.from_options(opts, resume_state=state)
    trainer.run()
    return ("done" if trainer.stop_signal is None else "stopped"), trainer.stop_signal
