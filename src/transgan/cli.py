"""The ``transgan`` command: train, sample, interpolate and list models.

User mistakes (bad options, files, data) end with one ``transgan: error: ...`` line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch
import yaml

from transgan.bench import BenchError
from transgan.data import DataError
from transgan.experiments import add_experiment_parsers
from transgan.metrics.cli import add_eval_parser
from transgan.metrics.frechet import MetricError
from transgan.models import ConfigError, count_parameters, get_preset, list_presets
from transgan.models.build import discriminator_from_config, generator_from_config
from transgan.train.augment import AugmentError
from transgan.train.checkpoint import CheckpointError
from transgan.train.distributed import DeviceError, resolve_device
from transgan.train.loop import RunDirectoryError, TrainingDiverged
from transgan.train.losses import LossError
from transgan.train.options import (
    OPTION_NAMES,
    OptionsError,
    TrainOptions,
    field_type,
    load_yaml,
    merge,
    options_for,
)
from transgan.train.schedules import ScheduleError
from transgan.train.state import resolve_resume

USER_ERRORS = (
    OptionsError, ConfigError, DataError, CheckpointError, AugmentError, LossError, ScheduleError,
    MetricError, DeviceError,
)
MODEL_OVERRIDES = {"generator": "gen", "discriminator": "disc"}


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key.replace("-", "_"), yaml.safe_load(value)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(TrainOptions):
        help_text = f.metadata["help"]
        if f.name in MODEL_OVERRIDES:
            parser.add_argument(
                f"--{MODEL_OVERRIDES[f.name]}", dest=f.name, action="append", type=_key_value,
                metavar="KEY=VALUE", default=argparse.SUPPRESS,
                help=f"{help_text} (repeatable)",
            )
            continue
        kind = field_type(f.name)
        flag = f"--{f.name.replace('_', '-')}"
        default_text = f"default: {f.default}" if f.default is not None else None
        full_help = f"{help_text} ({default_text})" if default_text else help_text
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=full_help)
        else:
            parser.add_argument(flag, dest=f.name, type=_number(kind), default=argparse.SUPPRESS,
                                help=full_help, metavar=f.name.upper())


def _number(kind: type) -> Callable[[str], Any]:
    if kind is int:
        def integer(text: str) -> int:
            value = float(text.replace("_", ""))
            if not value.is_integer():
                raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'")
            return int(value)
        return integer
    return kind


def train_options_from_args(args: argparse.Namespace) -> tuple[TrainOptions, set[str]]:
    """Defaults <- YAML config <- command line; also the names the user set explicitly."""
    given = {name: getattr(args, name) for name in OPTION_NAMES if hasattr(args, name)}
    for name in MODEL_OVERRIDES:
        if name in given:
            given[name] = dict(given[name])
    from_file = load_yaml(args.config) if args.config else {}
    preset = given.get("preset", from_file.get("preset", TrainOptions().preset))
    if not isinstance(preset, str):
        raise OptionsError(f"option 'preset' must be str, got {preset!r}")
    opts = options_for(preset, from_file, f"config file {args.config}")
    opts = merge(opts, given, "command line")
    return opts, set(from_file) | set(given)


def cmd_train(args: argparse.Namespace) -> int:
    from transgan.train.loop import Trainer

    opts, explicit = train_options_from_args(args)
    opts, state = resolve_resume(opts, explicit, args.resume)
    trainer = Trainer(opts, resume_state=state)
    if state is not None and trainer.counters.images >= opts.images:
        print(f"run in {trainer.run_dir} already finished ({trainer.counters.images:,} images); "
              "raise --images to train longer", file=sys.stderr)
        return 0
    trainer.run()
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from transgan.loading import open_generator
    from transgan.sampling import generate, latents, save_grid, save_images

    if args.num <= 0:
        raise OptionsError("--num must be positive")
    generator, _ = open_generator(args.checkpoint, args.device, ema=not args.raw)
    z = latents(args.num, generator.latent_dim, args.seed, args.device)
    images = generate(generator, z, batch=args.batch)
    out = Path(args.out)
    if args.grid:
        path = save_grid(images, out / "grid.png" if out.suffix != ".png" else out)
        print(f"wrote a grid of {args.num} samples to {path}")
    else:
        save_images(images, out)
        print(f"wrote {args.num} samples to {out}/")
    return 0


EXPORT_FORMATS = ("safetensors", "onnx")
# Every form a generator can be read from (transgan.loading.read_checkpoint).
GENERATOR_SOURCE_HELP = ("run directory, checkpoint (this library's or the official code's), "
                         "exported .safetensors, model folder or converted folder")


def cmd_export(args: argparse.Namespace) -> int:
    from transgan.loading import export_folder, export_generator, open_generator
    from transgan.onnx_export import ONNX_OPSET, export_onnx

    out = Path(args.out)
    fmt = args.format or ("onnx" if out.suffix == ".onnx" else "safetensors")
    which = "raw" if args.raw else "EMA"
    if fmt == "onnx":
        if out.suffix != ".onnx":
            raise OptionsError("--format onnx needs an --out ending in .onnx")
        generator, _ = open_generator(args.checkpoint, ema=not args.raw)
        worst = export_onnx(generator, out)
        print(f"wrote the {which} generator to {out} (ONNX opset {ONNX_OPSET}, dynamic batch; "
              f"onnxruntime matches PyTorch within {worst:.1e})")
        return 0
    if out.suffix == ".onnx" or (out.suffix != ".safetensors" and out.is_file()):
        raise OptionsError("--out must be a .safetensors file or a folder")
    try:
        if out.suffix == ".safetensors":
            export_generator(args.checkpoint, out, ema=not args.raw)
        else:
            export_folder(args.checkpoint, out, ema=not args.raw)
    except OSError as exc:
        raise OptionsError(f"cannot write {out}: {exc.strerror or exc}") from None
    kind = "" if out.suffix == ".safetensors" else " as a model folder"
    print(f"wrote the {which} generator to {out}{kind}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from transgan.official import convert_checkpoint, describe, save_converted

    out = Path(args.out)
    converted = convert_checkpoint(
        args.checkpoint, args.weights, dict(args.gen or []), dict(args.disc or [])
    )
    networks = [("generator", converted.generator)]
    if converted.discriminator is not None:
        networks.append(("discriminator", converted.discriminator))
    epoch = "" if converted.epoch is None else f", epoch {converted.epoch}"
    print(f"official {converted.generator.version} checkpoint{epoch}; "
          f"generator weights: {converted.weights}")
    for name, net in networks:
        print(f"{name}: {describe(net.config)}")
        if net.dropped:
            print(f"  not carried over ({len(net.dropped)}): {', '.join(net.dropped)}")
        if net.added:
            print(f"  not in the official model, initialised fresh: {', '.join(net.added)}")
    if converted.ignored:
        print(f"ignored checkpoint entries: {', '.join(converted.ignored)}")
    for path in save_converted(converted, out, source=str(args.checkpoint)):
        print(f"wrote {path}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from transgan.loading import open_generator
    from transgan.sampling import generate, grid_tensor, interpolation_latents, save_gif
    from transgan.sampling import save_grid as write_grid

    if args.rows <= 0 or args.steps < 2:
        raise OptionsError("--rows must be positive and --steps at least 2")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".gif"):
        raise OptionsError("--out must end in .png (image strip) or .gif (animation)")
    generator, _ = open_generator(args.checkpoint, args.device)
    z = interpolation_latents(args.rows, args.steps, generator.latent_dim, args.seed)
    frames = generate(generator, z.to(args.device)).cpu()
    if out.suffix.lower() == ".gif":
        # Frame t shows step t of every walk side by side.
        per_step = frames.view(args.rows, args.steps, *frames.shape[1:]).transpose(0, 1)
        save_gif([grid_tensor(f, nrow=args.rows) for f in per_step], out)
    else:
        write_grid(frames, out, nrow=args.steps)
    print(f"wrote a latent walk ({args.rows} x {args.steps}) to {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from transgan.loading import open_generator
    from transgan.serve import SampleServer

    if not 0 <= args.port <= 65535:
        raise OptionsError("--port must be between 0 and 65535")
    generator, _ = open_generator(args.checkpoint, args.device)
    try:
        server = SampleServer(generator, args.host, args.port, args.device, log=True)
    except OSError as exc:
        raise OptionsError(f"cannot listen on {args.host}:{args.port}: "
                           f"{exc.strerror or exc}") from None
    print(f"serving {args.checkpoint} on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("transgan: server stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from transgan.bench import format_table, run_bench, write_json

    get_preset(args.preset)
    if args.batch <= 0 or args.lazy < 1:
        raise OptionsError("--batch and --lazy must be positive")
    result = run_bench(args.preset, args.batch, args.device, quick=args.quick, lazy=args.lazy,
                       precision=args.precision, compile=args.compile)
    print(format_table(result))
    if args.json:
        write_json(result, Path(args.json))
        print(f"wrote {args.json}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    rows = []
    with torch.device("meta"):
        for name in list_presets():
            preset = get_preset(name)
            g = count_parameters(generator_from_config(preset.generator))
            d = count_parameters(discriminator_from_config(preset.discriminator))
            rows.append((name, f"{preset.img_size} px", str(preset.channels),
                         f"{g / 1e6:.2f}M", f"{d / 1e6:.2f}M", preset.data, preset.description))
    header = ("preset", "resolution", "ch", "G params", "D params", "data", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one ``transgan: error:`` line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"transgan: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="transgan", description="Train and sample TransGAN (transformer GAN) models."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = sub.add_parser(
        "train", help="train a model (default: digits preset on the CPU)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Defaults shown are the official CIFAR-10 recipe; each preset's recipe "
        "changes a few (the digits demo: 60k images, n_critic 1, lr 2e-4, batch 32, fp32). "
        "A --config file overrides those, and the command line overrides the file.",
    )
    train.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file")
    train.add_argument("--resume", action="store_true",
                       help="require an existing checkpoint in --out (re-running resumes anyway)")
    _add_train_options(train)
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="write samples of a trained generator")
    sample.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    sample.add_argument("--num", type=int, default=64, help="number of samples")
    sample.add_argument("--out", default="samples", help="folder (or .png with --grid)")
    sample.add_argument("--grid", action="store_true", help="one grid image instead of files")
    sample.add_argument("--seed", type=int, default=0, help="latent seed")
    sample.add_argument("--batch", type=int, default=64, help="images per forward pass")
    sample.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    sample.add_argument("--raw", action="store_true", help="use G instead of the EMA generator")
    sample.set_defaults(func=cmd_sample)

    interp = sub.add_parser("interpolate", help="latent walk as an image strip or GIF")
    interp.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    interp.add_argument("--out", default="interpolation.png", help=".png strip or .gif")
    interp.add_argument("--rows", type=int, default=4, help="independent walks")
    interp.add_argument("--steps", type=int, default=10, help="images per walk")
    interp.add_argument("--seed", type=int, default=0, help="latent seed")
    interp.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    interp.set_defaults(func=cmd_interpolate)

    serve = sub.add_parser(
        "serve", help="a web page (and PNG API) to look at a generator's samples",
        description="Serves a page that draws sample grids, walks between two seeds and "
        "downloads PNGs, plus GET /sample.png?seed=S&n=N, /interpolate.png?a=A&b=B&t=T&n=N "
        "and /info for scripts.",
    )
    serve.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (0.0.0.0 exposes the server to the network)")
    serve.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    serve.set_defaults(func=cmd_serve)

    bench = sub.add_parser("bench", help="training/sampling speed, memory, FLOP utilisation")
    bench.add_argument("--preset", default="transgan-s", help="model preset")
    bench.add_argument("--batch", type=int, default=16, help="D batch size")
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    bench.add_argument("--quick", action="store_true", help="one timed cycle (smoke test)")
    bench.add_argument("--lazy", type=int, default=4, help="lazy regularisation interval k")
    bench.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                       help="default path's precision (default: the preset recipe's)")
    bench.add_argument("--compile", action="store_true", help="torch.compile G (CUDA)")
    bench.add_argument("--json", metavar="FILE", help="write the results as JSON")
    bench.set_defaults(func=cmd_bench)

    export = sub.add_parser(
        "export", help="the generator for sharing: a model folder, safetensors or ONNX",
        description="--out DIR writes a Hugging Face style model folder (config.json, "
        "model.safetensors, README.md model card, samples.png); --out FILE.safetensors one "
        "file; --format onnx --out G.onnx an ONNX graph checked against PyTorch.",
    )
    export.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    export.add_argument("--out", default="generator.safetensors",
                        help="model folder, .safetensors file or .onnx file")
    export.add_argument("--format", choices=EXPORT_FORMATS,
                        help="safetensors (a folder or one file) or onnx (default: from --out)")
    export.add_argument("--raw", action="store_true", help="G instead of the EMA generator")
    export.set_defaults(func=cmd_export)

    convert = sub.add_parser(
        "convert", help="convert a checkpoint of the official TransGAN code",
        description="Reads a checkpoint saved by the official TransGAN code (tensors and plain "
        "data only), infers both architectures from its tensors and writes the generator as a "
        "model folder (OUT/config.json, OUT/model.safetensors, a model card) and "
        "OUT/discriminator.safetensors beside it.",
    )
    convert.add_argument("checkpoint", help="official checkpoint (.pth)")
    convert.add_argument("--out", required=True, help="output folder")
    convert.add_argument("--weights", choices=("ema", "raw"), default="ema",
                         help="generator weights: the EMA (avg_gen_state_dict) or gen_state_dict")
    convert.add_argument("--gen", action="append", type=_key_value, metavar="KEY=VALUE",
                         help="generator field the tensors do not show (heads=4, act=gelu)")
    convert.add_argument("--disc", action="append", type=_key_value, metavar="KEY=VALUE",
                         help="discriminator field the tensors do not show (heads, act)")
    convert.set_defaults(func=cmd_convert)

    add_experiment_parsers(sub)
    add_eval_parser(sub)

    models = sub.add_parser("models", help="list model presets with parameter counts")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "device", None):
            resolve_device(args.device)  # checked before any work starts
        return args.func(args)
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"transgan: error: {message}", file=sys.stderr)
        return 2
    except (TrainingDiverged, RunDirectoryError, BenchError) as exc:
        print(f"transgan: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("transgan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
