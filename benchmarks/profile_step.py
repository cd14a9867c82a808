"""Where a training cycle spends its time: torch.profiler over the trainer's own cycle.

Prints the phases of the cycle (D pass, gradient penalty, G pass, optimizer steps, EMA; the
``transgan.*`` labels the trainer sets) and the most expensive operators by self time, and
can write a Chrome trace (open in chrome://tracing or Perfetto).

    .venv/bin/python benchmarks/profile_step.py --preset transgan-s --batch 16 [--device cpu]
        [--attention sdpa|naive] [--lazy 1] [--precision auto] [--trace trace.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from transgan.bench import BenchConfig, training_cycle
from transgan.train.distributed import resolve_precision


def profile_cycles(cfg: BenchConfig, cycles: int, trace: Path | None) -> dict[str, Any]:
    """Profile ``cycles`` training cycles after one warm-up cycle; phase and operator times."""
    device = torch.device(cfg.device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with training_cycle(cfg) as (_trainer, cycle):
        cycle()
        with profile(activities=activities) as prof:
            for _ in range(cycles):
                cycle()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    if trace is not None:
        prof.export_chrome_trace(str(trace))
    events = prof.key_averages()
    on_gpu = device.type == "cuda"

    def self_ms(e: Any) -> float:
        return (e.self_device_time_total if on_gpu else e.self_cpu_time_total) / 1e3 / cycles

    # Phases in host time: on a GPU that is the time to launch them, not to run them.
    phases = {e.key: e.cpu_time_total / 1e3 / cycles for e in events
              if e.key.startswith("transgan.")}
    ops = sorted((e for e in events if not e.key.startswith("transgan.")), key=self_ms,
                 reverse=True)
    total = sum(self_ms(e) for e in ops)
    return {
        "config": cfg.__dict__,
        "cycles": cycles,
        "ms_per_cycle": total,
        "phases_ms": phases,
        "top_ops": [{"op": e.key, "self_ms": self_ms(e), "calls": e.count // cycles,
                     "share": self_ms(e) / total} for e in ops[:25]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="transgan-s")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--attention", choices=("sdpa", "naive"), default="sdpa")
    parser.add_argument("--lazy", type=int, default=1, help="lazy regularisation interval")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--trace", type=Path, help="write a Chrome trace here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    precision = resolve_precision(args.precision, torch.device(args.device))
    cfg = BenchConfig(preset=args.preset, batch=args.batch, device=args.device,
                      attention=args.attention, lazy_reg=args.lazy, precision=precision)
    result = profile_cycles(cfg, args.cycles, args.trace)
    print(f"{args.preset} batch {args.batch} on {args.device}, {precision}, "
          f"{args.attention} attention, lazy reg {args.lazy}: "
          f"{result['ms_per_cycle']:.0f} ms per cycle (profiled)")
    print("\nphase (inclusive host ms per cycle)")
    for name, ms in sorted(result["phases_ms"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:34s} {ms:9.1f}")
    print("\noperator (self ms per cycle)            calls        ms   share")
    for row in result["top_ops"][: args.top]:
        print(f"  {row['op'][:38]:38s} {row['calls']:6d} {row['self_ms']:9.1f} "
              f"{row['share']:6.1%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
