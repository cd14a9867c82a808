"""GPU check: the eager step against the compiled one and the CUDA-graphed one, side by side.

    python benchmarks/gpu_check.py [--presets transgan-s,transgan-xl,transgan-v2-cifar10]
                                   [--batch 128] [--modes eager,compiled,cuda-graphs]
                                   [--cycles 3] [--json FILE]

Each mode of a preset runs in its own process, timed in turns (the trainer's real step:
n_critic D steps with WGAN-GP, one G step, EMA, DiffAugment; bf16). Utilisation is model FLOPs
per second over a bf16 GEMM peak measured in the same run. Then every mode trains ``--cycles``
cycles from the same seed, and its weights are compared with the eager run's: a mode matches
when it moves the weights no further from the eager bf16 run than eager fp32 does (bf16's own
rounding). Exits 1, after writing the JSON, when a mode does not match.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from transgan.bench import (
    BenchConfig,
    matmul_peak,
    measure_side_by_side,
    trained_weights,
    update_disagreement,
)

# Below this a disagreement counts as a match even if eager fp32 happens to agree better.
FLOOR = 1e-3


def mode_config(preset: str, batch: int, mode: str) -> BenchConfig:
    """The bf16 step of ``preset`` on CUDA in ``mode``: eager, compiled or cuda-graphs."""
    return BenchConfig(preset=preset, batch=batch, device="cuda", precision="bf16",
                       compile=mode != "eager", cuda_graphs=mode == "cuda-graphs", warmup=3)


def check_preset(preset: str, batch: int, modes: list[str], cycles: int,
                 peak: float) -> dict[str, Any]:
    cfgs = [mode_config(preset, batch, mode) for mode in modes]
    runs = dict(zip(modes, measure_side_by_side(cfgs, rounds=5), strict=True))
    eager = runs["eager"]
    start, reference = trained_weights(cfgs[0], cycles)
    _, fp32 = trained_weights(dataclasses.replace(cfgs[0], precision="fp32"), cycles)
    tolerance = max(update_disagreement(start, reference, fp32), FLOOR)
    result: dict[str, Any] = {"bf16_tolerance": tolerance}
    for mode, cfg in zip(modes, cfgs, strict=True):
        r = runs[mode]
        r["flop_utilisation"] = r["achieved_flops"] / peak
        r["speedup_vs_eager"] = r["train_img_per_s"] / eager["train_img_per_s"]
        if mode != "eager":
            _, weights = trained_weights(cfg, cycles)
            r["update_disagreement"] = update_disagreement(start, reference, weights)
            r["weights_match"] = r["update_disagreement"] <= tolerance
        result[mode] = r
        print(f"{preset:22s} {mode:12s} {r['train_img_per_s']:8.0f} {r['speedup_vs_eager']:6.2f}x "
              f"{r['flop_utilisation']:6.1%} {r['peak_memory_bytes'] / 2**30:7.1f}GiB "
              f"{r['kernel_launches_per_cycle'] or 0:9,d} "
              f"{r.get('update_disagreement', 0.0):9.4f} (tol {tolerance:.4f})", flush=True)
    fast = [result[m] for m in modes if m != "eager"]
    result["speedup_vs_eager"] = max((r["speedup_vs_eager"] for r in fast), default=1.0)
    result["weights_match"] = all(r["weights_match"] for r in fast)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="transgan-s,transgan-xl,transgan-v2-cifar10")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--modes", default="eager,compiled,cuda-graphs",
                        help="comma list, eager first: eager, compiled, cuda-graphs")
    parser.add_argument("--cycles", type=int, default=3, help="cycles of the weights check")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modes = args.modes.split(",")
    if modes[0] != "eager" or not set(modes) <= {"eager", "compiled", "cuda-graphs"}:
        sys.exit("gpu_check: --modes must start with eager and name eager, compiled, cuda-graphs")
    start = time.time()
    peak = matmul_peak(torch.device("cuda"), seconds=2.0)
    device = torch.cuda.get_device_name()
    print(f"{device} bf16 matmul peak {peak / 1e12:.0f} TFLOP/s, torch {torch.__version__}",
          flush=True)
    print(f"{'preset':22s} {'mode':12s} {'img/s':>8s} {'speed':>7s} {'util':>6s} "
          f"{'memory':>9s} {'launches':>9s} {'weights':>9s}", flush=True)
    out: dict[str, Any] = {"device": device, "torch": torch.__version__, "batch": args.batch,
                           "matmul_peak_flops": peak}
    for preset in args.presets.split(","):
        out[preset] = check_preset(preset, args.batch, modes, args.cycles, peak)
    out["seconds"] = time.time() - start
    print(f"total {out['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    bad = [p for p in args.presets.split(",") if not out[p]["weights_match"]]
    if bad:
        sys.exit(f"gpu_check: weights do not match the eager run's for {', '.join(bad)}")


if __name__ == "__main__":
    main()
