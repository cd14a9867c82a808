"""GPU figures for the README: training img/s and bf16 FLOP utilisation, eager and compiled.

    python benchmarks/gpu_check.py [--presets transgan-s,transgan-xl,transgan-v2-cifar10]
                                   [--batch 128] [--json FILE]

Each configuration runs in its own process (the trainer's real step: n_critic D steps with
WGAN-GP, one G step, EMA, DiffAugment); utilisation is model FLOPs per second over a bf16
GEMM peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from transgan.bench import BenchConfig, matmul_peak, measure_side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="transgan-s,transgan-xl,transgan-v2-cifar10")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--naive", action="store_true", help="also measure naive attention")
    parser.add_argument("--modes", default="eager,compiled", help="eager and/or compiled")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    start = time.time()
    peak = matmul_peak(torch.device("cuda"), seconds=2.0)
    print(f"{torch.cuda.get_device_name()} bf16 matmul peak {peak / 1e12:.0f} TFLOP/s, "
          f"torch {torch.__version__}", flush=True)
    print(f"{'preset':22s} {'mode':9s} {'img/s':>8s} {'sample/s':>9s} {'util':>6s} "
          f"{'memory':>9s}", flush=True)
    results = []
    for preset in args.presets.split(","):
        modes = [(m, m == "compiled", "sdpa") for m in args.modes.split(",")]
        if args.naive:
            modes.append(("naive", False, "naive"))
        for mode, compile_g, attention in modes:
            cfg = BenchConfig(preset=preset, batch=args.batch, device="cuda", precision="bf16",
                              compile=compile_g, attention=attention, warmup=2)
            try:
                (r,) = measure_side_by_side([cfg], rounds=5)
            except RuntimeError as exc:
                print(f"{preset:22s} {mode:9s} failed: {exc}", flush=True)
                continue
            r["flop_utilisation"] = r["achieved_flops"] / peak
            r["mode"] = mode
            results.append(r)
            print(f"{preset:22s} {mode:9s} {r['train_img_per_s']:8.0f} "
                  f"{r['sample_img_per_s']:9.0f} {r['flop_utilisation']:6.1%} "
                  f"{r['peak_memory_bytes'] / 2**30:7.1f}GiB", flush=True)
    print(f"total {time.time() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"matmul_peak_flops": peak, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
