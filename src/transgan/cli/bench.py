"""``transgan bench``: training and sampling speed, memory and FLOP utilisation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.cli.parsing import add_device_argument
from transgan.errors import UsageError
from transgan.models.presets import get_preset
from transgan.train.choices import LOSSES, PRECISIONS


def add_parser(sub: Any) -> None:
    """Register ``bench`` on argparse sub-parsers."""
    bench = sub.add_parser("bench", help="training/sampling speed, memory, FLOP utilisation")
    bench.add_argument("--preset", default="transgan-s", help="model preset")
    bench.add_argument("--batch", type=int, default=16, help="D batch size")
    add_device_argument(bench, "auto")
    bench.add_argument("--quick", action="store_true", help="one timed cycle (smoke test)")
    bench.add_argument("--lazy", type=int, default=4, help="lazy regularisation interval k")
    bench.add_argument("--precision", choices=PRECISIONS,
                       help="default path's precision (default: the preset recipe's)")
    bench.add_argument("--compile", action="store_true",
                       help="torch.compile G's passes and D's main passes (pays on CUDA; "
                            "aten ops are counted on the eager path)")
    bench.add_argument("--activation-checkpointing", action="store_true",
                       help="also measure the default path with each transformer block "
                            "recomputed in the backward pass (memory and time ratios)")
    bench.add_argument("--loss", choices=LOSSES,
                       help="the objective (default: the preset recipe's); with a zero-centred "
                            "penalty (logistic-r1, rpgan) the finite-difference penalty is "
                            "measured beside the exact one")
    bench.add_argument("--json", metavar="FILE", help="write the results as JSON")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from transgan.bench import run_bench
    from transgan.bench_table import format_table, write_json

    get_preset(args.preset)
    if args.batch <= 0 or args.lazy < 1:
        raise UsageError("--batch and --lazy must be positive")
    result = run_bench(args.preset, args.batch, args.device, quick=args.quick, lazy=args.lazy,
                       precision=args.precision, compile=args.compile,
                       activation_checkpointing=args.activation_checkpointing,
                       loss=args.loss)
    print(format_table(result))
    if args.json:
        write_json(result, Path(args.json))
        print(f"wrote {args.json}")
    return 0
