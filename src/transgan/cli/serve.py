"""``transgan serve``: a local web page and PNG API over a generator."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from transgan.cli.parsing import (
    GENERATOR_SOURCE_HELP,
    TRUNCATION_HELP,
    add_device_argument,
    truncation,
)
from transgan.errors import UsageError


def add_parser(sub: Any) -> None:
    """Register ``serve`` on argparse sub-parsers."""
    serve = sub.add_parser(
        "serve", help="a web page (and PNG API) to look at a generator's samples",
        description="Serves a page that draws sample grids, walks between two seeds and "
        "downloads PNGs, plus GET /sample.png?seed=S&n=N, /interpolate.png?a=A&b=B&t=T&n=N "
        "(both take &truncation=PSI or none) and /info for scripts.",
    )
    serve.add_argument("checkpoint", help=GENERATOR_SOURCE_HELP)
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (0.0.0.0 exposes the server to the network)")
    add_device_argument(serve, "cpu")
    serve.add_argument("--truncation", type=truncation, metavar="PSI",
                       help=f"{TRUNCATION_HELP}. The page starts with it, and requests "
                       "without a truncation parameter use it")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    from transgan.artifacts.loading import open_generator
    from transgan.serve import SampleServer
    from transgan.train.distributed import resolve_device

    device = resolve_device(args.device)
    generator, _ = open_generator(args.checkpoint, device)
    try:
        server = SampleServer(generator, args.host, args.port, device, log=True,
                              truncation=args.truncation)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}") from None
    print(f"serving {args.checkpoint} on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("transgan: server stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
