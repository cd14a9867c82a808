"""Run-directory outputs of rank 0: log file, stats JSONL, TensorBoard and progress.

Progress is a bar on a terminal; when stderr is a file or a pipe (nohup, SLURM, CI) it is
one plain line per stats record instead, so logs hold no carriage-return frames.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from transgan.progress import format_duration, format_rate, is_terminal

LOGGER_NAME = "transgan"


def setup_logging(log_file: Path | None, verbose: bool = True) -> logging.Logger:
    """Logger writing to stderr and, when given, appending to ``log_file``."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(console)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(file_handler)
    logger.propagate = False
    return logger


def progress_line(images: int, total: int, speed: float, eta: float,
                  stats: dict[str, float]) -> str:
    """One plain progress line: images, img/s, losses and the estimated time left."""
    losses = " ".join(f"{k} {stats[k]:.3f}" for k in ("loss_d", "loss_g") if k in stats)
    rate = format_rate(speed)
    parts = [f"{images:,}/{total:,} images ({100 * images / total:.1f}%)", f"{rate} img/s",
             losses, f"ETA {format_duration(eta)}"]
    return " | ".join(part for part in parts if part)


class Monitor:
    """Stats lines to ``stats.jsonl`` and TensorBoard; progress as a tqdm bar in images on a
    terminal, else as a plain line per stats record."""

    def __init__(self, run_dir: Path, total: int, start: int, progress: bool,
                 stream: TextIO | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.stream = stream if stream is not None else sys.stderr
        self.plain = progress and not is_terminal(self.stream)
        self.stats_path = run_dir / "stats.jsonl"
        self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.bar = tqdm(
            total=total, initial=start, unit="img", unit_scale=True, dynamic_ncols=True,
            disable=not progress or self.plain, file=self.stream, smoothing=0.1,
        )
        self.total = total
        self.start_images = self.last_images = start
        self.start_time = self.last_time = time.perf_counter()

    def progress(self, images: int) -> None:
        self.bar.update(images - self.bar.n)

    def log(self, images: int, stats: dict[str, float]) -> dict[str, Any]:
        """Write one stats record (images, losses, speed) and show the losses on the bar."""
        now = time.perf_counter()
        speed = (images - self.last_images) / max(now - self.last_time, 1e-9)
        self.last_images, self.last_time = images, now
        record: dict[str, Any] = {"images": images, "time": time.time(), "img_per_s": speed}
        record.update({k: (v if math.isfinite(v) else None) if isinstance(v, float) else v
                       for k, v in stats.items()})
        with open(self.stats_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key not in ("images", "time") and isinstance(value, int | float):
                self.tb.add_scalar(key, value, images)
        self.bar.set_postfix(
            {k: f"{stats[k]:.3f}" for k in ("loss_d", "loss_g") if k in stats}, refresh=False
        )
        self.progress(images)
        if self.plain:
            # ETA from the mean speed of this process, which amortises evaluations and saves.
            mean = (images - self.start_images) / max(now - self.start_time, 1e-9)
            eta = (self.total - images) / mean if mean > 0 else math.inf
            self.stream.write(progress_line(images, self.total, speed, eta, stats) + "\n")
            self.stream.flush()
        return record

    def log_metrics(self, images: int, metrics: dict[str, float], protocol: dict[str, Any]) -> None:
        """One evaluation: a line of ``metrics.jsonl`` and TensorBoard scalars."""
        record = {"images": images, "time": time.time(), **metrics, "protocol": protocol}
        with open(self.stats_path.with_name("metrics.jsonl"), "a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in metrics.items():
            self.tb.add_scalar(f"metrics/{key}", value, images)

    def close(self) -> None:
        self.bar.close()
        self.tb.close()
