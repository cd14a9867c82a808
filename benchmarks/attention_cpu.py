"""CPU fused attention at transgan-s's shapes: bf16 vs float32, head dims padded or not.

The evidence for ``transgan.nn.attention.fused_attention``'s CPU rule (float32, head dims
below 16 zero-padded to 16). Inputs are bf16, as they leave a bf16-autocast linear layer;
each variant includes its own casts and padding. Best of ``--reps`` runs.

    .venv/bin/python benchmarks/attention_cpu.py [--batch 16] [--reps 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from transgan.nn.attention import fused_attention


def best_ms(fn: Callable[[], object], reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def time_variant(attend: Callable[..., torch.Tensor], shape: tuple[int, ...],
                 reps: int) -> tuple[float, float]:
    """Best forward-without-grad and forward+backward times (ms) on bf16 inputs."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))

    def forward() -> None:
        with torch.no_grad():
            attend(q, k, v)

    def train() -> None:
        attend(q, k, v).float().sum().backward()

    return best_ms(forward, reps), best_ms(train, reps)


def plain_sdpa(dtype: torch.dtype) -> Callable[..., torch.Tensor]:
    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype))
        return out.to(q.dtype)

    return attend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    b = args.batch
    # transgan-s: G stages 8x8 / 16x16 / 32x32 tokens at widths 384 / 96 / 24, 4 heads;
    # D 64 patches + [CLS] at width 384, over real and fake at once (2B).
    shapes = {"G stage 1": (b, 4, 64, 96), "G stage 2": (b, 4, 256, 24),
              "G stage 3": (b, 4, 1024, 6), "D": (2 * b, 4, 65, 96)}
    variants = {"bf16": plain_sdpa(torch.bfloat16), "float32": plain_sdpa(torch.float32),
                "default (fp32, padded)": lambda q, k, v: fused_attention(q, k, v, None)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms, forward without "
          "grad / forward + backward")
    print(f"{'shape':28s}" + "".join(f"{name:>26s}" for name in variants))
    for label, shape in shapes.items():
        cells = []
        for attend in variants.values():
            forward_ms, train_ms = time_variant(attend, shape, args.reps)
            cells.append(f"{forward_ms:8.1f} / {train_ms:6.1f}")
        print(f"{label + ' ' + str(tuple(shape)):28s}" + "".join(f"{c:>26s}" for c in cells))


if __name__ == "__main__":
    main()
