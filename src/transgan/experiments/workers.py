"""Several runs of an experiment at once: worker processes that split the CPU threads.

Each worker takes the next arm x seed from a shared queue and trains it as the sequential
loop would; its console lines carry the run's place in the list. A signal to the parent (or
to the process group, as Ctrl-C sends) stops every running training at a checkpoint.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

import torch

from transgan.errors import ExperimentFailed, ExperimentStopped
from transgan.experiments.plan import STOPPED_MESSAGE, Plan, train_plan

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class LinePrefixer:
    """A text stream that writes ``prefix`` before every line it passes on to ``stream``."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream, self.prefix, self.pending = stream, prefix, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.stream.write(f"{self.prefix}{line}\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(f"{self.prefix}{self.pending}")
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def _worker(plans: list[Plan], budget: int, threads: int, todo: Any, events: Any) -> None:
    """Train plans from ``todo`` until it is empty or a signal arrives; report on ``events``."""
    stops: list[int] = []

    def note_stop(signum: int, _frame: FrameType | None) -> None:
        stops.append(signum)

    for sig in _STOP_SIGNALS:  # training installs its own handlers and restores these
        signal.signal(sig, note_stop)
    torch.set_num_threads(threads)
    while True:
        index = todo.get()
        if index is None or stops:
            return
        plan = plans[index]
        sys.stderr = LinePrefixer(sys.__stderr__, f"{plan.run} | ")
        try:
            status = train_plan(plan, budget, lambda text: events.put(("say", text)))
        except Exception as exc:  # reported to the parent, which stops the other runs
            events.put(("failed", index, f"{type(exc).__name__}: {exc}"))
            return
        finally:
            sys.stderr.flush()
        events.put((status, index))
        if status == "stopped":
            return


def train_in_parallel(plans: list[Plan], budget: int, jobs: int,
                      say: Callable[[str], None]) -> None:
    """Train ``plans`` in at most ``jobs`` worker processes; raise if any stops or fails."""
    ctx = mp.get_context("spawn")
    todo, events = ctx.Queue(), ctx.Queue()
    workers_count = min(jobs, len(plans))
    for index in [*range(len(plans)), *[None] * workers_count]:
        todo.put(index)
    threads = max(1, torch.get_num_threads() // workers_count)
    say(f"training {len(plans)} runs, {workers_count} at a time, {threads} CPU thread(s) each")
    workers = [ctx.Process(target=_worker, args=(plans, budget, threads, todo, events))
               for _ in range(workers_count)]
    stopped: list[int] = []
    failures: list[str] = []
    finished: set[int] = set()

    def stop_all(signum: int, _frame: FrameType | None = None) -> None:
        stopped.append(signum)
        for proc in workers:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    previous = ({sig: signal.signal(sig, stop_all) for sig in _STOP_SIGNALS}
                if threading.current_thread() is threading.main_thread() else {})
    try:
        for proc in workers:
            if not stopped:  # a signal while starting: no new run begins
                proc.start()
        while any(proc.is_alive() for proc in workers) or not events.empty():
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event[0] == "say":
                say(event[1])
            elif event[0] == "failed":
                failures.append(f"{plans[event[1]].where} failed: {event[2]}")
                stop_all(signal.SIGTERM)
            elif event[0] in ("done", "skipped"):
                finished.add(event[1])
    except BaseException:
        stop_all(signal.SIGTERM)  # the running trainings stop at a checkpoint first
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in workers:
            if proc.pid is not None:
                proc.join()
    if failures:
        raise ExperimentFailed(f"{failures[0]}; the other runs stopped with their checkpoints")
    if stopped or len(finished) < len(plans):
        crashed = [proc.exitcode for proc in workers if proc.exitcode]
        if crashed and not stopped:
            raise ExperimentFailed(f"a worker process exited with code {crashed[0]}; run the "
                                   "same command again to resume from the checkpoints")
        raise ExperimentStopped(STOPPED_MESSAGE)
