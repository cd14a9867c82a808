"""How well the finite-difference penalty estimates R1, by step sigma and precision.

For a discriminator (a preset's at initialisation, or one from a checkpoint) and real-shaped
images, the exact R1, ||grad_x D(x)||^2 (double backward), against the mean over many
directions e of (D(x + sigma e) - D(x))^2 / sigma^2, the estimate ``--penalty
finite-difference`` trains with, in float32 and under bf16 autocast. A ratio near 1 means the
same gamma means the same; rounding shows as a ratio above 1 that grows as sigma shrinks.
The trainer scores the twins in float32 even under bf16 autocast, for what the bf16 column
shows; on CUDA its float32 matrix products are TF32 (as the trainer sets them), which
``--device cuda`` measures.

    .venv/bin/python benchmarks/penalty_accuracy.py --preset digits \
        [--checkpoint RUN/checkpoints/latest.pt] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import math
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.models import config_from_dict
from transgan.models.build import build_discriminator, discriminator_from_config
from transgan.train.losses import finite_difference_pass, r1_penalty

SIGMAS = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0001)


def discriminator(preset: str, checkpoint: str | None) -> nn.Module:
    """The checkpoint's D, or the preset's at initialisation (seed 0)."""
    if checkpoint is None:
        torch.manual_seed(0)
        return build_discriminator(preset)
    state = load_checkpoint(Path(checkpoint))
    D = discriminator_from_config(config_from_dict(state["discriminator_config"]))
    D.load_state_dict(state["D"])
    return D


def ratio(D: nn.Module, x: Tensor, sigma: float, precision: str,
          draws: int) -> tuple[float, float, float]:
    """Mean estimate / mean exact R1 over the images, its standard error, and the exact R1."""
    autocast = (torch.autocast(x.device.type, dtype=torch.bfloat16) if precision == "bf16"
                else nullcontext())
    with autocast:
        exact = float(r1_penalty(D, x).detach())
        estimates = []
        with torch.no_grad():
            for _ in range(draws):
                noise = torch.randn(x.shape, dtype=torch.float32, device=x.device)
                _, _, (squares,) = finite_difference_pass(D, (x, x[:0]), (noise, None), sigma)
                estimates.append(squares)
    values = torch.cat(estimates)
    error = float(values.std()) / math.sqrt(values.numel())
    return float(values.mean()) / exact, error / exact, exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--checkpoint", help="a run's checkpoint whose D to measure")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--draws", type=int, default=32, help="directions per image")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as the trainer runs
        torch.backends.cudnn.allow_tf32 = True
    D = discriminator(args.preset, args.checkpoint).to(device)
    torch.manual_seed(1)
    x = torch.rand(args.batch, D.channels, D.img_size, D.img_size, device=device) * 2 - 1
    rows = []
    print(f"{args.preset} D ({'checkpoint ' + args.checkpoint if args.checkpoint else 'init'}),"
          f" {args.batch} images x {args.draws} directions: estimate / exact R1")
    print(f"{'sigma':>8}  {'fp32':>16}  {'bf16':>16}")
    for sigma in SIGMAS:
        row = {"sigma": sigma}
        for precision in ("fp32", "bf16"):
            mean, error, exact = ratio(D, x, sigma, precision, args.draws)
            row[precision] = {"ratio": mean, "stderr": error, "exact_r1": exact}
        rows.append(row)
        print(f"{sigma:>8g}  " + "  ".join(
            f"{row[p]['ratio']:>9.3f} ± {row[p]['stderr']:.3f}" for p in ("fp32", "bf16")))
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "device": str(device),
                                               "checkpoint": args.checkpoint, "batch": args.batch,
                                               "draws": args.draws, "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
