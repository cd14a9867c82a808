"""Training throughput of the real recipe on this machine.

Runs full training cycles (n_critic D steps with the gradient penalty, one G step, EMA)
of the trainer itself (through ``transgan.bench.measure_side_by_side``, each preset's
recipe, its own precision) and prints real images per second shown to D, for the default
digits preset and for transgan-s at 32 px.

    .venv/bin/python benchmarks/train_speed.py [--presets digits,transgan-s] [--cycles 5]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from transgan.bench import BenchConfig, measure_side_by_side
from transgan.train.recipes import options_for


def train_speed(preset: str, batch: int, cycles: int) -> dict[str, Any]:
    """Images per second of full training cycles with the preset's own recipe."""
    precision = options_for(preset).runtime.precision
    (result,) = measure_side_by_side(
        [BenchConfig(preset=preset, batch=batch, device="cpu", precision=precision)],
        rounds=cycles)
    return {**result, "g_steps_per_s": 1.0 / result["seconds_per_cycle"]}


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
        result = train_speed(preset, batch, args.cycles)
        results.append(result)
        print(f"{preset:14s} {batch:5d} {result['train_img_per_s']:8.1f} "
              f"{result['g_steps_per_s']:10.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
