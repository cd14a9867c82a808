"""Generator time per image of the grid-attention preset at 128 px and 256 px.

Grid (windowed) self-attention keeps the cost of the high-resolution stages linear in the
number of pixels. Full attention is not measured: with relative position bias its 128x128
stage alone needs a (heads, 16384, 16384) bias per block, more memory than this machine has.

    .venv/bin/python benchmarks/grid_scaling.py [--batch 4] [--reps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

import transgan

PRESET = "transgan-v2-celeba128"
# The 256 px generator adds one PixelShuffle stage to the 128 px one.
SIZES = {128: {}, 256: {"img_size": 256, "depths": (4, 3, 3, 2, 2, 2)}}


def seconds_per_image(overrides: dict, batch: int, reps: int, device: str) -> float:
    g = transgan.build_generator(PRESET, **overrides).to(device).eval()
    z = torch.randn(batch, g.latent_dim, device=device)
    with torch.no_grad():
        g(z)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            g(z)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / (reps * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    times = {}
    for size, overrides in SIZES.items():
        times[size] = seconds_per_image(overrides, args.batch, args.reps, args.device)
        print(f"{PRESET} at {size} px, grid attention: {times[size] * 1000:.1f} ms per image")
    print(f"256 px / 128 px time ratio: {times[256] / times[128]:.2f} (pixels: 4x)")


if __name__ == "__main__":
    main()
