"""Training throughput of the real recipe on this machine.

Runs full training cycles (n_critic D steps with the gradient penalty, one G step, EMA)
of the trainer itself and prints real images per second shown to D, for the default
digits preset and for transgan-s at 32 px (fed with digits resized to 32 px RGB, since
only the image size matters for speed).

    .venv/bin/python benchmarks/train_speed.py [--presets digits,transgan-s] [--cycles 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from transgan.train.batches import batch_stream
from transgan.train.loop import Trainer
from transgan.train.options import options_for


def measure(preset: str, batch: int, cycles: int, warmup: int = 1) -> dict[str, float]:
    """Seconds per training cycle and images per second for one preset."""
    with tempfile.TemporaryDirectory() as out:
        opts = options_for(preset, {"data": "digits", "batch": batch, "g_batch": batch,
                                    "out": out, "progress": False})
        trainer = Trainer(opts)
        batches = batch_stream(trainer.dataset, batch, rank=0, world_size=1, seed=0, start=0,
                               workers=0, pin_memory=False)

        def cycle() -> None:
            for _ in range(opts.n_critic):
                real = next(batches)
                trainer.d_step(real)
            trainer.g_step(real)

        for _ in range(warmup):
            cycle()
        start = time.perf_counter()
        for _ in range(cycles):
            cycle()
        seconds = (time.perf_counter() - start) / cycles
    return {
        "preset": preset,
        "batch": batch,
        "n_critic": opts.n_critic,
        "loss": opts.loss,
        "seconds_per_cycle": seconds,
        "train_img_per_s": batch * opts.n_critic / seconds,
        "g_steps_per_s": 1.0 / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="digits,transgan-s")
    parser.add_argument("--batches", default="32,16", help="batch per preset, same order")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    presets = args.presets.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    results = []
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"{'preset':14s} {'batch':>5s} {'img/s':>8s} {'G steps/s':>10s}")
    for preset, batch in zip(presets, batches, strict=True):
        result = measure(preset, batch, args.cycles)
        results.append(result)
        print(f"{preset:14s} {batch:5d} {result['train_img_per_s']:8.1f} "
              f"{result['g_steps_per_s']:10.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
