"""The training loop: training cycles of the GAN step until the image budget is reached, with
periodic outputs (stats line, sample grid, evaluation, checkpoint) from one table.

It knows nothing model-specific: models come from presets, the step from train/step.py,
what a checkpoint holds from train/state.py. Rank 0 writes every file of the run directory.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from transgan.artifacts.checkpoint import (
    atomic_save,
    checkpoint_payload,
    load_checkpoint,
    save_checkpoint,
)
from transgan.data import colour_name, default_num_workers
from transgan.errors import RunDirectoryBusy, RunDirectoryError, TrainingDiverged
from transgan.models import count_parameters, supports_locality
from transgan.sampling import class_grid, class_labels, generate, save_grid
from transgan.train import distributed
from transgan.train.batches import batch_stream
from transgan.train.build import Run, build_run, eval_settings
from transgan.train.data_choice import DataFit
from transgan.train.monitor import LOGGER_NAME, Monitor, format_duration, setup_logging
from transgan.train.options import TrainOptions
from transgan.train.seeds import SEED_STRIDE
from transgan.train.state import (
    RunLock,
    StatSums,
    check_writable,
    checkpoint_state,
    default_run_dir,
    prepare_run_dir,
    rank_rng_state,
    restore_progress,
    restore_rng,
    rng_state,
)
from transgan.train.step import StepImpl
from transgan.train.validation import parse_stages

__all__ = ["Trainer", "crossed", "planned_end"]

# Non-finite steps are counted on the device; the host reads the count at every output
# (log, samples, checkpoint, evaluation) and at least this often, in G steps.
HEALTH_CHECK_EVERY = 100
# Seconds per --checkpoint-minutes.
SECONDS_PER_MINUTE = 60.0
# Signals that stop a run at a checkpoint: Ctrl-C, kill, and the SIGUSR1/SIGUSR2 a scheduler
# (Slurm) sends before a time limit or a pre-emption.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


def planned_end(images: int, target: int, per_cycle: int) -> int:
    """Where a run at ``images`` stops: the first whole cycle of ``per_cycle`` images (D batch x
    n_critic) that reaches ``target``; what the progress shows as its total."""
    if images >= target:
        return images
    return images + -(-(target - images) // per_cycle) * per_cycle


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]."""
    return after // every > before // every


class Trainer:
    """Trains a built :class:`Run` in its run directory: outputs, checkpoints, resume."""

    def __init__(self, run: Run, resume_state: dict[str, Any] | None = None,
                 notes: Sequence[str] = ()) -> None:
        opts = self.opts = run.opts
        self.dist, self.precision, self.device = run.dist, run.precision, run.device
        self.run_dir, self.is_main = default_run_dir(opts), run.dist.is_main
        # How the models were fitted to the data and what building the run decided.
        self.notes = (*notes, *run.notes)
        if self.is_main:
            check_writable(self.run_dir)
        self.data_spec, self.dataset, self.schedule = run.data_spec, run.dataset, run.schedule
        self.locality_stages = parse_stages(opts.locality_init.locality_stages)
        G = self.G = run.G
        self.D, self.G_ema = run.D, run.G_ema
        self.counters, self.step = run.counters, run.step
        # Stats since the last log line (each D and G step a mean over its chunks).
        self.window = StatSums()
        # Wall clock of the --checkpoint-minutes schedule (replaceable in tests).
        self.clock: Callable[[], float] = time.monotonic
        self.last_checkpoint_time = 0.0
        self.locality_window: int | None = None
        if resume_state is not None:
            self.restore(resume_state)
        self.apply_locality()
        # A class-conditional grid has one row per class.
        fixed, self.grid_columns = class_grid(opts.outputs.num_samples, G.num_classes)
        self.fixed_z = torch.randn(fixed, G.latent_dim,
                                   generator=torch.Generator().manual_seed(opts.seed)
                                   ).to(self.device)
        self.fixed_labels = class_labels(fixed, G.num_classes, repeat=self.grid_columns or 1,
                                         device=self.device)
        self.stop_signal: int | None = None  # the signal that stopped the run
        self.signal_received: int | None = None  # by this process, not yet acted on
        self.eval_metrics, self.eval_ref = eval_settings(opts, self.data_spec, self.is_main)
        self.best: dict[str, Any] = dict(resume_state.get("best", {})) if resume_state else {}
        self.monitor: Monitor | None = None
        self.log = logging.getLogger(LOGGER_NAME)
        # The periodic outputs, in the order they run after a training cycle.
        self.outputs: list[tuple[int, Callable[[], None]]] = [
            (opts.outputs.log_every, self.log_stats), (opts.outputs.sample_every, self.sample_grid),
            *([(opts.evaluation.eval_every, self.periodic_eval)]
              if opts.evaluation.eval_every else []),
            (opts.outputs.checkpoint_every, self.checkpoint)]

    @classmethod
    def from_options(cls, opts: TrainOptions, resume_state: dict[str, Any] | None = None,
                     impl: StepImpl | None = None, fit: DataFit | None = None) -> Trainer:
        """Build the run of ``opts`` (fitted to its data as ``fit`` says) and its trainer."""
        run = build_run(opts, resume_state, impl, fit.problems if fit else ())
        return cls(run, resume_state, fit.notes if fit else ())

    # ----------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """The checkpoint of this moment; collective: every rank gives its RNG state."""
        ranks = distributed.all_gather(rank_rng_state(self.device))
        return checkpoint_state(self.opts, self.step.state_dict(), self.counters, self.window,
                                self.best, rng_state(ranks, self.step.generators))

    def restore(self, state: dict[str, Any]) -> None:
        self.step.load_state_dict(state)
        self.window = restore_progress(state, self.counters, self.device)
        restore_rng(state["rng"], self.dist.rank, self.device, self.step.generators)

    def apply_locality(self) -> None:
        window = self.schedule.window_at(self.counters.images)
        if window == self.locality_window:
            return
        self.locality_window = window
        if supports_locality(self.G):
            for g in (self.G, self.G_ema):
                g.set_locality(window, self.opts.locality_init.locality_kind, self.locality_stages,
                               self.opts.locality_init.locality_blocks)

    # ----------------------------------------------------------------- outputs
    def log_stats(self) -> None:
        """A stats line (rank 0) of the means since the last one."""
        if self.monitor is not None:
            c = self.counters
            record = {k: float(v) for k, v in self.window.means().items()}
            record["loss_d"] = record.pop("d_loss", math.nan)
            record["loss_g"] = record.pop("g_loss", math.nan)
            record.update(g_step=c.g_steps, skipped_steps=c.skipped,
                          locality=self.locality_window, **self.step.schedule_stats())
            self.monitor.log(c.images, record)
        self.window = StatSums()

    def sample_grid(self) -> None:
        if self.is_main:
            self.save_samples(f"fakes-{self.counters.images // 1000:06d}k.png")

    def save_samples(self, name: str) -> Path:
        images = generate(self.G_ema, self.fixed_z, batch=64, labels=self.fixed_labels)
        return save_grid(images, self.run_dir / "samples" / name, nrow=self.grid_columns)

    def evaluate(self) -> dict[str, Any]:
        """Metrics of the EMA generator by the configured protocol (rank 0 only)."""
        from transgan.metrics.evaluate import MetricOptions, evaluate_generator

        opts = self.opts
        return evaluate_generator(self.G_ema, MetricOptions(
            self.eval_metrics, opts.evaluation.eval_num, self.eval_ref, seed=opts.seed,
            device=self.device, inception_weights=opts.evaluation.inception_weights,
            data_root=opts.data_root, progress=False,
        ))

    def periodic_eval(self) -> None:
        """Evaluate, log to metrics.jsonl and TensorBoard, and keep the best checkpoint."""
        state = self.state()  # collective, so taken on every rank
        if self.monitor is not None:
            # The evaluation draws from the global RNG, more when its caches are cold (the
            # reference statistics): the training's stream must not depend on either.
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                result = self.evaluate()
            images = self.counters.images
            self.monitor.log_metrics(images, result["metrics"], result["protocol"])
            shown = ", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items()
                              if not k.endswith("_std"))
            self.log.info(f"eval at {images:,} images ({self.opts.evaluation.eval_num} samples vs "
                          f"{self.eval_ref}): {shown}")
            key = next((m for m in ("fid", "digits-fid") if m in result["metrics"]), None)
            value = result["metrics"].get(key) if key else None
            if value is not None and (not self.best or value < self.best["value"]):
                self.best = {"metric": key, "value": float(value), "images": images}
                self.check_finite_weights()
                atomic_save(checkpoint_payload({**state, "best": self.best}),
                            self.run_dir / "checkpoints" / "best.pt")
                self.log.info(f"new best {key} {value:.3f}: checkpoints/best.pt")
        distributed.share_rng(self.device)

    def checkpoint(self) -> None:
        """A periodic checkpoint; the end of training writes its own."""
        if self.counters.images < self.opts.images:
            self.save()

    def check_finite_weights(self) -> None:
        for name, model in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise TrainingDiverged(
                    f"{name} weights are not finite at {self.counters.images:,} images; "
                    "no checkpoint written (the last good one is kept)"
                )

    def save(self) -> None:
        self.check_finite_weights()
        state = self.state()
        if self.is_main:
            save_checkpoint(state, self.run_dir / "checkpoints", self.counters.images,
                            self.opts.outputs.keep_checkpoints)
        self.last_checkpoint_time = self.clock()
        distributed.barrier()

    def checkpoint_time_due(self, host_synced: bool) -> bool:
        """Whether --checkpoint-minutes passed since the last checkpoint, by rank 0's clock.

        Asked only where the host already waits for the device (``host_synced``: health
        checks) or on the CPU, where reading the answer waits for nothing.
        """
        minutes = self.opts.outputs.checkpoint_minutes
        if not minutes or not (host_synced or self.device.type == "cpu"):
            return False
        due = self.clock() - self.last_checkpoint_time >= minutes * SECONDS_PER_MINUTE
        return distributed.rank0_decides(due, self.device)

    # ----------------------------------------------------------------- loop
    def _handle_signal(self, signum: int, _frame: Any) -> None:
        self.signal_received = signum

    def stopping(self) -> bool:
        """Whether a signal stops the run now: on every rank at the same cycle (the ranks
        agree on the largest signal any of them received; one all-reduce a cycle under DDP)."""
        agreed = distributed.largest(self.signal_received or 0, self.device)
        if agreed:
            self.stop_signal = agreed
        return self.stop_signal is not None

    def batches(self) -> Any:
        """This rank's real batches from the current D step on."""
        opts = self.opts
        workers = opts.runtime.workers
        if workers is None:
            workers = default_num_workers(self.dataset)
        data = self.dataset.labelled() if self.G.num_classes else self.dataset
        return batch_stream(
            data, opts.batch, rank=self.dist.rank, world_size=self.dist.world_size,
            seed=opts.seed, start=self.step.batches_drawn(), workers=workers,
            pin_memory=self.device.type == "cuda",
        )

    def output_due(self, before: int) -> bool:
        """Whether this cycle writes anything (or ends the run), or a health check is due."""
        images = self.counters.images
        return (any(crossed(before, images, every) for every, _ in self.outputs)
                or images >= self.opts.images or self.stop_signal is not None
                or self.counters.g_steps % HEALTH_CHECK_EVERY == 0)

    def rollback(self) -> None:
        """Return to the last checkpoint after too many non-finite steps in a row."""
        c, latest = self.counters, self.run_dir / "checkpoints" / "latest.pt"
        where = f"{self.step.nonfinite_run} non-finite steps in a row at {c.images:,} images"
        if c.rollbacks >= self.opts.runtime.max_rollbacks:
            raise TrainingDiverged(f"training diverged: {where} after {c.rollbacks} rollbacks")
        if not latest.exists():
            raise TrainingDiverged(f"training diverged: {where}; no checkpoint to return to")
        rollbacks, skipped = c.rollbacks + 1, c.skipped
        self.restore(load_checkpoint(latest))
        c.rollbacks, c.skipped = rollbacks, skipped
        self.step.reset_health()
        # Fresh randomness, so the same steps are not replayed into the same failure.
        torch.manual_seed(self.opts.seed + SEED_STRIDE * rollbacks)
        self.step.reseed(rollbacks)
        self.log.warning(f"{where}: rolled back to the checkpoint at {c.images:,} images "
                         f"(rollback {rollbacks} of at most {self.opts.runtime.max_rollbacks})")

    def run(self) -> Path:
        """Train until ``opts.images`` with the run directory locked; returns the directory."""
        lock = RunLock(self.run_dir)
        busy: RunDirectoryBusy | None = None
        if self.is_main:
            try:
                lock.acquire()
            except RunDirectoryBusy as exc:
                busy = exc
        if not distributed.rank0_decides(busy is None, self.device):
            raise busy or RunDirectoryBusy(f"run directory {self.run_dir} is in use")
        try:
            return self._train()
        finally:
            lock.release()

    def _start(self) -> None:
        """Prepare the run directory, logging and progress (rank 0)."""
        opts, c = self.opts, self.counters
        self.log = setup_logging(None, verbose=False)
        if self.is_main:
            prepare_run_dir(self.run_dir, opts, c.images)
            self.log = setup_logging(self.run_dir / "log.txt")
            g_params, d_params = count_parameters(self.G), count_parameters(self.D)
            for note in self.notes:
                self.log.info(note)
            g = self.G.config
            classes = (f"{self.G.num_classes} classes" if self.G.num_classes
                       else "unconditional")
            self.log.info(
                f"{'resuming' if c.images else 'training'} {opts.preset} on {self.data_spec} "
                f"({len(self.dataset)} images, {self.dataset.skipped} unreadable skipped) | "
                f"{g.img_size} px {colour_name(g.channels)}, {classes} | "
                f"G {g_params / 1e6:.2f}M D {d_params / 1e6:.2f}M params | "
                f"{self.dist.world_size} process(es) on {self.device}, {self.precision} | "
                f"run dir {self.run_dir}"
            )
            if c.images:
                self.log.info(f"resumed at {c.images:,} images ({c.g_steps:,} G steps)")
            else:
                save_grid(next(iter(torch.utils.data.DataLoader(self.dataset, batch_size=64))),
                          self.run_dir / "samples" / "reals.png")
            end = planned_end(c.images, opts.images, opts.batch * opts.n_critic)
            if end != opts.images:
                self.log.info(f"training to {end:,} images: --images {opts.images:,} rounded "
                              f"up to whole cycles of {opts.batch * opts.n_critic:,}")
            self.monitor = Monitor(self.run_dir, end, c.images, opts.outputs.progress)
        distributed.share_rng(self.device)

    def _train(self) -> Path:
        opts, c = self.opts, self.counters
        previous = {s: signal.signal(s, self._handle_signal) for s in STOP_SIGNALS}
        try:
            self._start()
            batches = self.batches()
            start_time, start_wall = time.perf_counter(), c.wall_time
            self.last_checkpoint_time = self.clock()
            while c.images < opts.images and not self.stopping():
                before = c.images
                self.apply_locality()
                for stats in self.step.cycle(batches.__next__):
                    self.window.add(stats)
                synced = self.output_due(before)
                if synced and self.step.check_health():
                    self.rollback()  # restores the stats window of the checkpoint too
                    batches = self.batches()
                    continue
                c.wall_time = start_wall + time.perf_counter() - start_time
                for every, action in self.outputs:
                    if crossed(before, c.images, every):
                        action()
                if self.monitor is not None:
                    self.monitor.progress(c.images)
                if not crossed(before, c.images, opts.outputs.checkpoint_every) and \
                        self.checkpoint_time_due(synced):
                    self.checkpoint()
            if self.window.counts and self.stop_signal is None:
                # What was trained since the last line, e.g. a short run; a stopped run keeps
                # it in its checkpoint instead, so the resumed run logs the records it would
                # have logged without the stop.
                self.log_stats()
            self.save()
            self._finish()
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise RunDirectoryError(
                f"cannot write to the run directory{where}: {exc.strerror or exc}; "
                "the last complete checkpoint is kept"
            ) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.monitor is not None:
                self.monitor.close()
                self.monitor = None
        return self.run_dir

    def _finish(self) -> None:
        c = self.counters
        if not self.is_main:
            return
        self.save_samples("fakes-latest.png")
        if self.stop_signal is not None:
            self.log.info(f"stopped by signal {self.stop_signal} at {c.images:,} images; "
                          f"checkpoint saved. Resume with: transgan train --out {self.run_dir}")
        else:
            self.log.info(f"done: {c.images:,} images in {format_duration(c.wall_time)} "
                          f"({c.images / max(c.wall_time, 1e-9):,.1f} img/s); "
                          f"samples in {self.run_dir / 'samples'}")
