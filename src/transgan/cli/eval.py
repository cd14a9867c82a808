"""``transgan eval``: FID / IS / KID / precision-recall (or digits metrics) of a checkpoint,
printed and as JSON; with several truncations, per truncation and as a trade-off plot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from transgan.cli.parsing import TRUNCATION_HELP, add_device_argument, truncation_list
from transgan.data.specs import is_digits_spec
from transgan.errors import MetricError
from transgan.metrics.defaults import (
    DEFAULT_NUM,
    DEFAULT_NUM_DIGITS,
    PER_CLASS_NUM,
    REFERENCES_HELP,
    default_metrics,
    default_num,
    default_reference,
    run_data,
)
from transgan.metrics.registry import METRICS, families, parse_metrics


def add_parser(subparsers: Any) -> None:
    """Register the ``eval`` sub-command on an argparse sub-parsers object."""
    parser = subparsers.add_parser(
        "eval",
        help="FID / IS / KID / precision-recall of a trained generator",
        description="Evaluate a checkpoint's EMA generator by the standard FID/IS/KID protocol "
        "(uint8-quantised samples, Inception features) or with the embedded digits classifier; "
        "prc is improved precision and recall (Kynkäänniemi et al. 2019, k=3).",
    )
    parser.add_argument("checkpoint", help="checkpoint file or run directory")
    parser.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated: {', '.join(METRICS)} "
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
    parser.add_argument(
        "--truncation", type=truncation_list, default=[None], metavar="PSI[,PSI...]",
        help=f"{TRUNCATION_HELP}. A list (0.5,0.7,1,none) evaluates each in turn against the "
        "same reference: a table each, all of them in the JSON (per_truncation) and a plot of "
        "the trade-off beside it (.png)",
    )
    parser.add_argument("--batch", type=int, default=100, help="images per batch (default: 100)")
    add_device_argument(parser, "cpu")
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
    parser.add_argument(
        "--per-class", action="store_true",
        help="digits runs: also each digit's digits-FID against the train images of that digit, "
        "and for a class-conditional G the share of samples showing the requested digit "
        "(--num samples per class, default 1000)",
    )
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from transgan.artifacts.loading import open_generator, source_file
    from transgan.metrics.evaluate import MetricOptions, evaluate_truncations
    from transgan.metrics.history import append_evaluation
    from transgan.train.distributed import resolve_device

    chosen = parse_metrics(args.metrics) if args.metrics is not None else None
    if args.num is not None and args.num < 2:
        raise MetricError("--num must be at least 2")
    truncations: list[float | None] = args.truncation
    if args.per_class and len(truncations) > 1:
        raise MetricError("--per-class takes one --truncation, not a list")
    ckpt_path = source_file(args.checkpoint)
    device = resolve_device(args.device)
    generator, ckpt = open_generator(ckpt_path, device)
    data = run_data(ckpt)
    metrics = chosen or default_metrics(data)
    if args.per_class and not (data and is_digits_spec(data)):
        raise MetricError("--per-class needs a run trained on digits")
    ref = args.ref
    if ref is None:
        if data is None:
            raise MetricError("the run's data set is unknown; pass --ref")
        ref = default_reference(data)
    num = args.num if args.num is not None else default_num(families(metrics) == {"digits"})
    options = ckpt.get("options") or {}
    metric_options = MetricOptions(
        metrics, num, ref, seed=args.seed, batch=args.batch, device=device,
        inception_weights=args.inception_weights,
        data_root=args.data_root or options.get("data_root"), progress=args.progress,
    )
    results = evaluate_truncations(generator, metric_options, truncations)
    floor = None
    if "digits" in families(metrics):
        # torch-fidelity (behind the digits extractor) loads only when digits metrics run.
        from transgan.metrics.digits import digits_real_floor

        floor = digits_real_floor(seed=args.seed)
    images = int((ckpt.get("counters") or {}).get("images", 0))
    out = Path(args.out) if args.out else ckpt_path.parent / f"metrics-{images}.json"
    # The first truncation's result has the fields of a single evaluation; others follow it.
    record = {
        "checkpoint": str(ckpt_path),
        "images_trained": images,
        "preset": options.get("preset"),
        "data": data,
        "metrics": results[0]["metrics"],
        "protocol": results[0]["protocol"],
        "real_floor": floor,
    }
    if len(results) > 1:
        record["per_truncation"] = [
            {"truncation": r["protocol"]["truncation"], "metrics": r["metrics"]} for r in results
        ]
    if args.per_class:
        from transgan.metrics.per_class import per_class_digits

        record["per_class"] = per_class_digits(generator, num=args.num or PER_CLASS_NUM,
                                               seed=args.seed, batch=args.batch,
                                               truncation=truncations[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    replaced = out.exists()
    out.write_text(json.dumps(record, indent=2) + "\n")
    history = append_evaluation(ckpt_path.parent, {**record, "file": out.name})
    for result in results:
        if len(results) > 1:
            print(f"truncation {_psi_text(result['protocol']['truncation'])}:")
        print_table(metrics, result, floor)
    if args.per_class:
        print_per_class(record["per_class"])
    earlier = " (it replaces an earlier evaluation, which the history keeps)" if replaced else ""
    print(f"wrote {out}{earlier}; every evaluation of the run is kept in {history}")
    if len(results) > 1:
        from transgan.metrics.truncation_plot import plot_truncation

        title = f"{ckpt_path.parent.name}/{ckpt_path.name}, {num} samples"
        print(f"wrote {plot_truncation(metrics, results, out.with_suffix('.png'), title)}")
    return 0


def _psi_text(psi: float | None) -> str:
    return "none" if psi is None else f"{psi:g}"


def print_per_class(report: dict[str, Any]) -> None:
    """One line per class: samples, share drawn as requested, digits-FID, diversity."""
    if report["accuracy"] is not None:
        print(f"samples showing the requested digit: {report['accuracy']:.1%}")
    print("class  samples  as requested  digits-fid  diversity")
    for row in report["classes"]:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.1%}"
        fid = "-" if row["digits-fid"] is None else f"{row['digits-fid']:.3f}"
        diversity = "-" if row["diversity"] is None else f"{row['diversity']:.2f}"
        print(f"{row['class']:>5}  {row['samples']:>7}  {accuracy:>12}  {fid:>10}  "
              f"{diversity:>9}")


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
    truncated = "" if protocol["truncation"] is None else f", truncation {protocol['truncation']:g}"
    cells = []
    for name in metrics:
        metric = METRICS[name]
        sha = extractors[metric.extractor]["weights_sha256"][:16]
        against = f" vs {protocol['reference']}" if metric.needs_reference else ""
        context = (
            f"N={protocol['num_samples']}{against}, features {metric.extractor} (sha {sha}), "
            f"seed {protocol['seed']}{truncated}"
        )
        for shown in metric.values:
            value = _value_text(values, shown)
            if floor is not None and shown in floor:
                value += f" (real floor {_value_text(floor, shown)})"
            cells.append((shown, value, context))
    widths = [max(len(cell[i]) for cell in cells) for i in range(2)]
    for shown, value, context in cells:
        print(f"{shown.ljust(widths[0])}  {value.ljust(widths[1])}  | {context}")
