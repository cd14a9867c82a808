"""What a run writes while it trains (rank 0 only): its log, stats lines, grids of samples of
fixed latents, and evaluations, keeping the checkpoint of the best one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transgan.artifacts.checkpoint import atomic_save, checkpoint_payload
from transgan.data import ImageDataset
from transgan.sampling import class_grid, class_labels, generate, save_grid
from transgan.train.monitor import LOGGER_NAME, Monitor, setup_logging
from transgan.train.options import TrainOptions
from transgan.train.parts import eval_settings
from transgan.train.state import prepare_run_dir

# The metrics whose lowest value marks the best checkpoint; the first one evaluated counts.
BEST_METRICS = ("fid", "digits-fid")


def planned_end(images: int, target: int, per_cycle: int) -> int:
    """Where a run at ``images`` stops: the first whole cycle of ``per_cycle`` images (D batch x
    n_critic) that reaches ``target``; what the progress shows as its total."""
    if images >= target:
        return images
    return images + -(-(target - images) // per_cycle) * per_cycle


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]."""
    return after // every > before // every


class Outputs:
    """The files of a run in ``run_dir``: rank 0 (``is_main``) writes them, the other ranks
    keep nothing but the best evaluation so far (``best``, from a checkpoint when resuming)."""

    def __init__(self, opts: TrainOptions, run_dir: Path, data_spec: str, G_ema: nn.Module,
                 device: torch.device, is_main: bool,
                 best: dict[str, Any] | None = None) -> None:
        self.opts, self.run_dir, self.G_ema, self.device = opts, run_dir, G_ema, device
        self.is_main = is_main
        # A class-conditional grid has one row per class.
        fixed, self.grid_columns = class_grid(opts.outputs.num_samples, G_ema.num_classes)
        self.fixed_z = torch.randn(fixed, G_ema.latent_dim,
                                   generator=torch.Generator().manual_seed(opts.seed)
                                   ).to(device)
        self.fixed_labels = class_labels(fixed, G_ema.num_classes,
                                         repeat=self.grid_columns or 1, device=device)
        self.eval_metrics, self.eval_ref = eval_settings(opts, data_spec, is_main)
        self.best: dict[str, Any] = dict(best or {})
        self.monitor: Monitor | None = None
        self.log = logging.getLogger(LOGGER_NAME)

    def open(self, images: int, end: int, lines: Sequence[str], reals: ImageDataset) -> None:
        """Prepare the run directory for a run at ``images`` that trains to ``end``: its
        options, its log (starting with ``lines``), the grid of real images of a new run, the
        progress and stats."""
        self.log = setup_logging(None, verbose=False)
        if not self.is_main:
            return
        prepare_run_dir(self.run_dir, self.opts, images)
        self.log = setup_logging(self.run_dir / "log.txt")
        for line in lines:
            self.log.info(line)
        if not images:
            save_grid(next(iter(torch.utils.data.DataLoader(reals, batch_size=64))),
                      self.run_dir / "samples" / "reals.png")
        self.monitor = Monitor(self.run_dir, end, images, self.opts.outputs.progress)

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None

    def stats(self, images: int, record: dict[str, Any]) -> None:
        """A stats line: to stats.jsonl, TensorBoard and the progress."""
        if self.monitor is not None:
            self.monitor.log(images, record)

    def progress(self, images: int) -> None:
        if self.monitor is not None:
            self.monitor.progress(images)

    def samples(self, name: str) -> Path | None:
        """A grid of the EMA generator's samples of the fixed latents, as samples/``name``."""
        if not self.is_main:
            return None
        images = generate(self.G_ema, self.fixed_z, batch=64, labels=self.fixed_labels)
        return save_grid(images, self.run_dir / "samples" / name, nrow=self.grid_columns)

    def evaluation(self, images: int, state: dict[str, Any],
                   check: Callable[[], None]) -> bool:
        """Evaluate the EMA generator, log the metrics and, when they are the best so far,
        save ``state`` as checkpoints/best.pt after ``check`` (of the weights); whether they
        were (rank 0 only)."""
        if self.monitor is None:
            return False
        # Here, not at the top: torch-fidelity takes about 2 s to import, which a run that
        # never evaluates should not pay when it starts.
        from transgan.metrics.evaluate import MetricOptions, evaluate_generator

        # The evaluation draws from the global RNG, more when its caches are cold (the
        # reference statistics): the training's stream must not depend on either.
        devices = [self.device] if self.device.type == "cuda" else []
        opts = self.opts
        with torch.random.fork_rng(devices=devices):
            result = evaluate_generator(self.G_ema, MetricOptions(
                self.eval_metrics, opts.evaluation.eval_num, self.eval_ref, seed=opts.seed,
                device=self.device, inception_weights=opts.evaluation.inception_weights,
                data_root=opts.data_root, progress=False))
        metrics = result["metrics"]
        self.monitor.log_metrics(images, metrics, result["protocol"])
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if not k.endswith("_std"))
        self.log.info(f"eval at {images:,} images ({opts.evaluation.eval_num} samples vs "
                      f"{self.eval_ref}): {shown}")
        key = next((m for m in BEST_METRICS if m in metrics), None)
        value = metrics.get(key) if key else None
        if value is None or (self.best and value >= self.best["value"]):
            return False
        self.best = {"metric": key, "value": float(value), "images": images}
        check()
        atomic_save(checkpoint_payload({**state, "best": self.best}),
                    self.run_dir / "checkpoints" / "best.pt")
        self.log.info(f"new best {key} {value:.3f}: checkpoints/best.pt")
        return True
