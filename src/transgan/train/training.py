"""A training run from its options to its last checkpoint, read top to bottom.

:func:`build_run` checks every option, model config and the data (every problem at once,
before any file is written) and builds the models and the GAN step; :class:`Trainer` resumes
the run, trains it cycle by cycle with its outputs on their schedules, and finishes it. What a
cycle does is train/step.py; the checks train/parts.py; what the run writes train/outputs.py;
what a checkpoint holds train/state.py. Rank 0 writes every file of the run directory.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from transgan.artifacts.checkpoint import load_checkpoint, save_checkpoint
from transgan.artifacts.loading import load_state
from transgan.data import colour_name, default_data_root, default_num_workers
from transgan.errors import RunDirectoryBusy, RunDirectoryError, TrainingDiverged
from transgan.models import count_parameters, supports_locality
from transgan.models.build import discriminator_from_config, generator_from_config
from transgan.nn.blocks import set_activation_checkpointing
from transgan.train import distributed
from transgan.train.batches import batch_stream
from transgan.train.data_choice import DataFit
from transgan.train.ema import make_ema
from transgan.train.memory import fit_to_budget
from transgan.train.monitor import format_duration
from transgan.train.options import TrainOptions
from transgan.train.outputs import Outputs, crossed, planned_end
from transgan.train.parts import Run, checked_parts
from transgan.train.seeds import SEED_STRIDE
from transgan.train.state import (
    Counters,
    RunLock,
    StatSums,
    check_finite,
    check_writable,
    checkpoint_state,
    default_run_dir,
    rank_rng_state,
    restore_progress,
    restore_rng,
    rng_state,
)
from transgan.train.step import GANStep, StepImpl
from transgan.train.validation import parse_stages

# Non-finite steps are counted on the device; the host reads the count at every output
# (log, samples, checkpoint, evaluation) and at least this often, in G steps.
HEALTH_CHECK_EVERY = 100
# Seconds per --checkpoint-minutes.
SECONDS_PER_MINUTE = 60.0
# Signals that stop a run at a checkpoint: Ctrl-C, kill, and the SIGUSR1/SIGUSR2 a scheduler
# (Slurm) sends before a time limit or a pre-emption.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


# ============================================================================ build
def build_run(opts: TrainOptions, resume_state: dict[str, Any] | None = None,
              impl: StepImpl | None = None, known: Sequence[str] = ()) -> Run:
    """Check every option, config and the data (RunProblems lists all that fail, after the
    ``known`` ones), then build the models and the GAN step. Writes no file."""
    # --- check: options, model configs, data and schedules, every problem at once
    dist = distributed.setup(opts.runtime.device)
    parts = checked_parts(opts, dist.world_size, resume_state,
                          opts.data_root or default_data_root(), known)
    # --- numerics: precision, determinism, one seed on every rank (random draws are made for
    # the global batch and sliced)
    precision = distributed.resolve_precision(opts.runtime.precision, dist.device)
    if opts.runtime.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif dist.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(opts.seed)
    # --- models: G and D (with the --init-from weights), the same on every rank, G's EMA
    G = generator_from_config(parts.generator)
    D = discriminator_from_config(parts.discriminator)
    init, source = parts.init, f"--init-from {opts.init_from}"
    if init is not None:
        load_state(G, init.generator, f"{source}: generator")
        if init.discriminator is not None:
            load_state(D, init.discriminator, f"{source}: discriminator")
    for model in (G, D):
        model.to(dist.device)
        set_activation_checkpointing(model, opts.runtime.activation_checkpointing)
    distributed.broadcast_module(G)
    distributed.broadcast_module(D)
    G_ema = make_ema(G)
    if init is not None:
        load_state(G_ema, init.generator_ema, f"{source}: EMA")
    # --- the step: its micro-batch (--memory-budget), optimisers, loss and augmentation
    impl = impl or StepImpl()
    notes: tuple[str, ...] = ()
    if opts.runtime.memory_budget is not None:
        if resume_state is None:
            accum, line = fit_to_budget(G, D, G_ema, opts, dist, precision, impl)
            opts = opts.replace(accum=accum)
        else:
            line = (f"--memory-budget: resuming with the run's own --accum {opts.accum} (a "
                    "budget picks the micro-batch when a run starts)")
        notes = (line,)
    counters = Counters()
    step = GANStep(G, D, opts, dist, precision, counters, impl, G_ema)
    return Run(opts, dist, precision, parts.data_spec, parts.dataset, parts.schedule, G, D,
               G_ema, counters, step, notes)


# ============================================================================ the trainer
class Trainer:
    """Trains a built :class:`Run` (``built``) in its run directory: resume, the training
    cycles with their outputs, checkpoints, the finish."""

    def __init__(self, built: Run, resume_state: dict[str, Any] | None = None,
                 notes: Sequence[str] = ()) -> None:
        self.built = built
        self.run_dir = default_run_dir(built.opts)
        # How the models were fitted to the data and what building the run decided.
        self.notes = (*notes, *built.notes)
        if built.dist.is_main:
            check_writable(self.run_dir)
        self.locality_stages = parse_stages(built.opts.locality_init.locality_stages)
        # Stats since the last log line (each D and G step a mean over its chunks).
        self.window = StatSums()
        # Wall clock of the --checkpoint-minutes schedule (replaceable in tests).
        self.clock: Callable[[], float] = time.monotonic
        self.last_checkpoint_time = 0.0
        self.locality_window: int | None = None
        # --- resume: the step's state, the counters, the stats window and every generator
        if resume_state is not None:
            self.restore(resume_state)
        self.apply_locality()
        self.stop_signal: int | None = None  # the signal that stopped the run
        self.signal_received: int | None = None  # by this process, not yet acted on
        self.outputs = Outputs(built.opts, self.run_dir, built.data_spec, built.G_ema,
                               built.device, built.dist.is_main,
                               resume_state.get("best") if resume_state else None)
        opts = built.opts
        # The outputs on their schedules of images, in the order they run after a cycle.
        self.due: list[tuple[int, Callable[[], None]]] = [
            (opts.outputs.log_every, self.log_stats),
            (opts.outputs.sample_every, self.sample_grid),
            *([(opts.evaluation.eval_every, self.periodic_eval)]
              if opts.evaluation.eval_every else []),
            (opts.outputs.checkpoint_every, self.checkpoint)]

    @classmethod
    def from_options(cls, opts: TrainOptions, resume_state: dict[str, Any] | None = None,
                     impl: StepImpl | None = None, fit: DataFit | None = None) -> Trainer:
        """Build the run of ``opts`` (fitted to its data as ``fit`` says) and its trainer."""
        built = build_run(opts, resume_state, impl, fit.problems if fit else ())
        return cls(built, resume_state, fit.notes if fit else ())

    def state(self) -> dict[str, Any]:
        """The checkpoint of this moment; collective: every rank gives its RNG state."""
        b = self.built
        ranks = distributed.all_gather(rank_rng_state(b.device))
        return checkpoint_state(b.opts, b.step.state_dict(), b.counters, self.window,
                                self.outputs.best,
                                rng_state(ranks, b.step.generators))

    def restore(self, state: dict[str, Any]) -> None:
        b = self.built
        b.step.load_state_dict(state)
        self.window = restore_progress(state, b.counters, b.device)
        restore_rng(state["rng"], b.dist.rank, b.device, b.step.generators)

    # ------------------------------------------------------------------------ run
    def run(self) -> Path:
        """Train until ``--images`` with the run directory locked; returns the directory."""
        lock = RunLock(self.run_dir)
        busy: RunDirectoryBusy | None = None
        if self.built.dist.is_main:
            try:
                lock.acquire()
            except RunDirectoryBusy as exc:
                busy = exc
        if not distributed.rank0_decides(busy is None, self.built.device):
            raise busy or RunDirectoryBusy(f"run directory {self.run_dir} is in use")
        try:
            with self._stop_signals():
                self._start()
                self._train()
                self._finish()
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise RunDirectoryError(
                f"cannot write to the run directory{where}: {exc.strerror or exc}; "
                "the last complete checkpoint is kept"
            ) from None
        finally:
            self.outputs.close()
            lock.release()
        return self.run_dir

    def _start(self) -> None:
        """Open the run directory: options, log, the real images' grid, progress (rank 0)."""
        b, c = self.built, self.built.counters
        opts, g = b.opts, b.G.config
        classes = f"{b.G.num_classes} classes" if b.G.num_classes else "unconditional"
        lines = [*self.notes, (
            f"{'resuming' if c.images else 'training'} {opts.preset} on {b.data_spec} "
            f"({len(b.dataset)} images, {b.dataset.skipped} unreadable skipped) | "
            f"{g.img_size} px {colour_name(g.channels)}, {classes} | "
            f"G {count_parameters(b.G) / 1e6:.2f}M D {count_parameters(b.D) / 1e6:.2f}M "
            f"params | {b.dist.world_size} process(es) on {b.device}, {b.precision} | "
            f"run dir {self.run_dir}")]
        if c.images:
            lines.append(f"resumed at {c.images:,} images ({c.g_steps:,} G steps)")
        per_cycle = opts.batch * opts.n_critic
        end = planned_end(c.images, opts.images, per_cycle)
        if end != opts.images:
            lines.append(f"training to {end:,} images: --images {opts.images:,} rounded up to "
                         f"whole cycles of {per_cycle:,}")
        self.outputs.open(c.images, end, lines if b.dist.is_main else [], b.dataset)
        distributed.share_rng(b.device)

    def _train(self) -> None:
        """Training cycles until the budget or a stop signal, each followed by the outputs
        that are due; too many non-finite steps in a row roll back to the last checkpoint."""
        b, c, opts = self.built, self.built.counters, self.built.opts
        batches = self.batches()
        start_time, start_wall = time.perf_counter(), c.wall_time
        self.last_checkpoint_time = self.clock()
        while c.images < opts.images and not self.stopping():
            before = c.images
            self.apply_locality()
            for stats in b.step.cycle(batches.__next__):
                self.window.add(stats)
            synced = self.output_due(before)
            if synced and b.step.check_health():
                self.rollback()  # restores the stats window of the checkpoint too
                batches = self.batches()
                continue
            c.wall_time = start_wall + time.perf_counter() - start_time
            for every, action in self.due:
                if crossed(before, c.images, every):
                    action()
            self.outputs.progress(c.images)
            if not crossed(before, c.images, opts.outputs.checkpoint_every) and \
                    self.checkpoint_time_due(synced):
                self.checkpoint()
        if self.window.counts and self.stop_signal is None:
            # What was trained since the last line, e.g. a short run; a stopped run keeps it
            # in its checkpoint instead, so the resumed run logs the records it would have
            # logged without the stop.
            self.log_stats()

    def _finish(self) -> None:
        """The last checkpoint and samples, and what was done (or how to go on)."""
        self.save()
        c = self.built.counters
        if not self.built.dist.is_main:
            return
        self.outputs.samples("fakes-latest.png")
        log = self.outputs.log
        if self.stop_signal is not None:
            log.info(f"stopped by signal {self.stop_signal} at {c.images:,} images; "
                     f"checkpoint saved. Resume with: transgan train --out {self.run_dir}")
        else:
            log.info(f"done: {c.images:,} images in {format_duration(c.wall_time)} "
                     f"({c.images / max(c.wall_time, 1e-9):,.1f} img/s); "
                     f"samples in {self.run_dir / 'samples'}")

    # ------------------------------------------------------------------------ the cycles
    def batches(self) -> Iterator[Any]:
        """This rank's real batches from the current D step on."""
        b, opts = self.built, self.built.opts
        workers = opts.runtime.workers
        if workers is None:
            workers = default_num_workers(b.dataset)
        data = b.dataset.labelled() if b.G.num_classes else b.dataset
        return batch_stream(
            data, opts.batch, rank=b.dist.rank, world_size=b.dist.world_size,
            seed=opts.seed, start=b.step.batches_drawn(), workers=workers,
            pin_memory=b.device.type == "cuda",
        )

    def apply_locality(self) -> None:
        """Set G's attention window for the images seen (when the schedule moved on)."""
        b = self.built
        window = b.schedule.window_at(b.counters.images)
        if window == self.locality_window:
            return
        self.locality_window = window
        if supports_locality(b.G):
            locality = b.opts.locality_init
            for g in (b.G, b.G_ema):
                g.set_locality(window, locality.locality_kind, self.locality_stages,
                               locality.locality_blocks)

    @contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """Within: a stop signal is noted and acted on after the current cycle."""
        previous = {s: signal.signal(s, self._handle_signal) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle_signal(self, signum: int, _frame: Any) -> None:
        self.signal_received = signum

    def stopping(self) -> bool:
        """Whether a signal stops the run now: on every rank at the same cycle (the ranks
        agree on the largest signal any of them received; one all-reduce a cycle under DDP)."""
        agreed = distributed.largest(self.signal_received or 0, self.built.device)
        if agreed:
            self.stop_signal = agreed
        return self.stop_signal is not None

    def output_due(self, before: int) -> bool:
        """Whether this cycle writes anything (or ends the run), or a health check is due."""
        c = self.built.counters
        return (any(crossed(before, c.images, every) for every, _ in self.due)
                or c.images >= self.built.opts.images or self.stop_signal is not None
                or c.g_steps % HEALTH_CHECK_EVERY == 0)

    def rollback(self) -> None:
        """Return to the last checkpoint after too many non-finite steps in a row."""
        b, c = self.built, self.built.counters
        latest, limit = self.run_dir / "checkpoints" / "latest.pt", b.opts.runtime.max_rollbacks
        where = f"{b.step.nonfinite_run} non-finite steps in a row at {c.images:,} images"
        if c.rollbacks >= limit:
            raise TrainingDiverged(f"training diverged: {where} after {c.rollbacks} rollbacks")
        if not latest.exists():
            raise TrainingDiverged(f"training diverged: {where}; no checkpoint to return to")
        rollbacks, skipped = c.rollbacks + 1, c.skipped
        self.restore(load_checkpoint(latest))
        c.rollbacks, c.skipped = rollbacks, skipped
        b.step.reset_health()
        # Fresh randomness, so the same steps are not replayed into the same failure.
        torch.manual_seed(b.opts.seed + SEED_STRIDE * rollbacks)
        b.step.reseed(rollbacks)
        self.outputs.log.warning(f"{where}: rolled back to the checkpoint at {c.images:,} "
                                 f"images (rollback {rollbacks} of at most {limit})")

    # ------------------------------------------------------------------------ outputs
    def log_stats(self) -> None:
        """A stats line (rank 0) of the means since the last one."""
        b, c = self.built, self.built.counters
        if b.dist.is_main:
            record = {k: float(v) for k, v in self.window.means().items()}
            record["loss_d"] = record.pop("d_loss", math.nan)
            record["loss_g"] = record.pop("g_loss", math.nan)
            record.update(g_step=c.g_steps, skipped_steps=c.skipped,
                          locality=self.locality_window, **b.step.schedule_stats())
            self.outputs.stats(c.images, record)
        self.window = StatSums()

    def sample_grid(self) -> None:
        self.outputs.samples(f"fakes-{self.built.counters.images // 1000:06d}k.png")

    def periodic_eval(self) -> None:
        """Evaluate (rank 0), log the metrics and keep the best checkpoint."""
        state = self.state()  # collective, so taken on every rank
        self.outputs.evaluation(self.built.counters.images, state, self.check_finite_weights)
        distributed.share_rng(self.built.device)

    def checkpoint(self) -> None:
        """A periodic checkpoint; the end of training writes its own."""
        if self.built.counters.images < self.built.opts.images:
            self.save()

    def checkpoint_time_due(self, host_synced: bool) -> bool:
        """Whether --checkpoint-minutes passed since the last checkpoint, by rank 0's clock.

        Asked only where the host already waits for the device (``host_synced``: health
        checks) or on the CPU, where reading the answer waits for nothing.
        """
        minutes, device = self.built.opts.outputs.checkpoint_minutes, self.built.device
        if not minutes or not (host_synced or device.type == "cpu"):
            return False
        due = self.clock() - self.last_checkpoint_time >= minutes * SECONDS_PER_MINUTE
        return distributed.rank0_decides(due, device)

    def check_finite_weights(self) -> None:
        b = self.built
        check_finite({"G": b.G, "D": b.D, "G_ema": b.G_ema}, b.counters.images)

    def save(self) -> None:
        self.check_finite_weights()
        state = self.state()
        if self.built.dist.is_main:
            save_checkpoint(state, self.run_dir / "checkpoints", self.built.counters.images,
                            self.built.opts.outputs.keep_checkpoints)
        self.last_checkpoint_time = self.clock()
        distributed.barrier()
