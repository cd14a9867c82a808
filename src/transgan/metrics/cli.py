"""``transgan eval``: FID / IS / KID (or digits metrics) of a checkpoint, printed and saved as JSON.

Only argparse is imported here; the heavy modules load when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METRICS_HELP = "fid, is, kid, digits-fid, digits-is, digits-kid"
REFERENCES_HELP = (
    "cifar10-train | cifar10-test | stl10-unlabeled | digits-train | digits-test | digits "
    "| folder:PATH | zip:PATH | STATS.npz"
)
DEFAULT_NUM = 50_000
DEFAULT_NUM_DIGITS = 10_000
# The standard reference for runs trained on these data specs.
DEFAULT_REFERENCES = {
    "digits": "digits-train",
    "digits-train": "digits-train",
    "digits-test": "digits-train",
    "cifar10": "cifar10-train",
    "cifar10-test": "cifar10-test",
    "stl10": "stl10-unlabeled",
}


def add_eval_parser(subparsers: Any) -> None:
    """Register the ``eval`` sub-command on an argparse sub-parsers object."""
    parser = subparsers.add_parser(
        "eval",
        help="FID / IS / KID of a trained generator",
        description="Evaluate a checkpoint's EMA generator by the standard FID/IS/KID protocol "
        "(uint8-quantised samples, Inception features) or with the embedded digits classifier.",
    )
    parser.add_argument("checkpoint", help="checkpoint file or run directory")
    parser.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated: {METRICS_HELP} "
        "(default: digits-fid,digits-is for digits runs, else fid,is)",
    )
    parser.add_argument(
        "--num",
        type=int,
        default=None,
        help=f"samples to generate (default: {DEFAULT_NUM}; "
        f"{DEFAULT_NUM_DIGITS} when only digits metrics are asked for)",
    )
    parser.add_argument(
        "--ref", default=None, help=f"reference: {REFERENCES_HELP} (default: the run's data set)"
    )
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    parser.add_argument("--batch", type=int, default=100, help="images per batch (default: 100)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    parser.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="Inception weights file (default: $TRANSGAN_INCEPTION_WEIGHTS, else torch's hub "
        "cache, downloaded once)",
    )
    parser.add_argument(
        "--data-root", default=None, help="where torchvision data sets live (default: the run's)"
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="JSON",
        help="results file (default: metrics-<images>.json beside the checkpoint)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run ``transgan eval``; user mistakes print one ``transgan: error:`` line and return 2."""
    from transgan.data import DataError
    from transgan.train.checkpoint import CheckpointError

    from .frechet import MetricError

    try:
        return _run_eval(args)
    except (MetricError, DataError, CheckpointError) as exc:
        text = str(exc).strip()
        print(f"transgan: error: {text.splitlines()[0] if text else type(exc).__name__}",
              file=sys.stderr)
        return 2


def run_data(checkpoint: dict[str, Any]) -> str | None:
    """The data spec a run trained on: its option, else its preset's default data."""
    from transgan.models import ConfigError, get_preset

    options = checkpoint.get("options") or {}
    data = options.get("data")
    if data:
        return str(data)
    preset = options.get("preset")
    if not preset:
        return None
    try:
        return get_preset(str(preset)).data
    except ConfigError:
        return None


def default_metrics(data: str | None) -> tuple[str, ...]:
    """digits-fid and digits-is for runs on the digits, else FID and IS."""
    from transgan.data import is_digits_spec

    is_digits = data is not None and is_digits_spec(data)
    return ("digits-fid", "digits-is") if is_digits else ("fid", "is")


def default_reference(data: str) -> str:
    """The standard reference set for a run trained on ``data``."""
    return DEFAULT_REFERENCES.get(data.strip().lower(), data)


def _run_eval(args: argparse.Namespace) -> int:
    from transgan.loading import open_generator, source_file

    from .evaluate import DIGITS_METRICS, evaluate_generator, parse_metrics
    from .frechet import MetricError

    chosen = parse_metrics(args.metrics) if args.metrics is not None else None
    if args.num is not None and args.num < 2:
        raise MetricError("--num must be at least 2")
    ckpt_path = source_file(args.checkpoint)
    generator, ckpt = open_generator(ckpt_path, args.device)
    data = run_data(ckpt)
    metrics = chosen or default_metrics(data)
    ref = args.ref
    if ref is None:
        if data is None:
            raise MetricError("the run's data set is unknown; pass --ref")
        ref = default_reference(data)
    only_digits = all(m in DIGITS_METRICS for m in metrics)
    num = args.num if args.num is not None else (DEFAULT_NUM_DIGITS if only_digits else DEFAULT_NUM)
    options = ckpt.get("options") or {}
    result = evaluate_generator(
        generator,
        metrics=metrics,
        num=num,
        ref=ref,
        seed=args.seed,
        batch=args.batch,
        device=args.device,
        inception_weights=args.inception_weights,
        data_root=args.data_root or options.get("data_root"),
        progress=args.progress,
    )
    floor = None
    if any(m in DIGITS_METRICS for m in metrics):
        from .digits import digits_real_floor

        floor = digits_real_floor(seed=args.seed)
    images = int((ckpt.get("counters") or {}).get("images", 0))
    out = Path(args.out) if args.out else ckpt_path.parent / f"metrics-{images}.json"
    record = {
        "checkpoint": str(ckpt_path),
        "images_trained": images,
        "preset": options.get("preset"),
        "data": data,
        "metrics": result["metrics"],
        "protocol": result["protocol"],
        "real_floor": floor,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print_table(metrics, result, floor)
    print(f"wrote {out}")
    return 0


def _value_text(values: dict[str, float], metric: str) -> str:
    text = f"{values[metric]:.4g}"
    if f"{metric}_std" in values:
        text += f" ± {values[f'{metric}_std']:.2g}"
    return text


def print_table(
    metrics: tuple[str, ...], result: dict[str, Any], floor: dict[str, float] | None
) -> None:
    """One line per metric: value, real-data floor (digits), and the protocol it was measured by."""
    values, protocol = result["metrics"], result["protocol"]
    extractors = protocol["extractors"]
    cells = []
    for metric in metrics:
        name = "transgan-digits" if metric.startswith("digits-") else "inception-v3-compat"
        sha = extractors[name]["weights_sha256"][:16]
        against = "" if metric.endswith("-is") or metric == "is" else f" vs {protocol['reference']}"
        value = _value_text(values, metric)
        if floor is not None and metric in floor:
            value += f" (real floor {_value_text(floor, metric)})"
        context = (
            f"N={protocol['num_samples']}{against}, features {name} (sha {sha}), "
            f"seed {protocol['seed']}"
        )
        cells.append((metric, value, context))
    widths = [max(len(cell[i]) for cell in cells) for i in range(2)]
    for metric, value, context in cells:
        print(f"{metric.ljust(widths[0])}  {value.ljust(widths[1])}  | {context}")
