"""``transgan export``: the generator as a model folder, one .safetensors file or ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transgan.cli.parsing import GENERATOR_SOURCE_HELP
from transgan.errors import UsageError

EXPORT_FORMATS = ("safetensors", "onnx")


def add_parser(sub: Any) -> None:
    """Register ``export`` on argparse sub-parsers."""
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


def cmd_export(args: argparse.Namespace) -> int:
    from transgan.artifacts.loading import open_generator
    from transgan.artifacts.onnx_export import ONNX_OPSET, export_onnx
    from transgan.sharing import export_folder, export_generator

    out = Path(args.out)
    fmt = args.format or ("onnx" if out.suffix == ".onnx" else "safetensors")
    which = "raw" if args.raw else "EMA"
    if fmt == "onnx":
        if out.suffix != ".onnx":
            raise UsageError("--format onnx needs an --out ending in .onnx")
        generator, _ = open_generator(args.checkpoint, ema=not args.raw)
        worst = export_onnx(generator, out)
        print(f"wrote the {which} generator to {out} (ONNX opset {ONNX_OPSET}, dynamic batch; "
              f"onnxruntime matches PyTorch within {worst:.1e})")
        return 0
    if out.suffix == ".onnx" or (out.suffix != ".safetensors" and out.is_file()):
        raise UsageError("--out must be a .safetensors file or a folder")
    try:
        if out.suffix == ".safetensors":
            export_generator(args.checkpoint, out, ema=not args.raw)
        else:
            export_folder(args.checkpoint, out, ema=not args.raw)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    kind = "" if out.suffix == ".safetensors" else " as a model folder"
    print(f"wrote the {which} generator to {out}{kind}")
    return 0
