"""``transgan serve``: a small web page and PNG API for looking at a trained generator.

The standard library's threading HTTP server parses requests; one worker thread runs the
generator, fed by a bounded queue, so a burst of requests waits or gets a 503, never piles up.
"""

from __future__ import annotations

import io
import json
import math
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import torch
from torch import Tensor, nn

from transgan.errors import BusyError, ConfigError, ParameterError
from transgan.sampling import (
    check_truncation,
    class_labels,
    generate,
    generator_class_names,
    grid_image,
    latents,
    resolve_classes,
    slerp,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_SAMPLES = 64  # images per request
MAX_QUEUE = 8  # requests waiting for the generator; more get a 503
MAX_SEED = 2**63 - 1
WAIT_S = 60.0  # longest a request waits for its images
PAGE_FILE = "serve_page.html"


@dataclass
class _Job:
    """One unit of work for the generator thread and its outcome."""

    work: Callable[[], bytes]
    done: threading.Event = field(default_factory=threading.Event)
    result: bytes | None = None
    error: BaseException | None = None


class GeneratorWorker:
    """Runs jobs one at a time on its own thread, at most ``max_queue`` of them waiting."""

    def __init__(self, max_queue: int = MAX_QUEUE) -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._loop, name="transgan-generator", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.result = job.work()
            except Exception as exc:  # reported to the request, the worker carries on
                job.error = exc
            job.done.set()

    def run(self, work: Callable[[], bytes], wait_s: float = WAIT_S) -> bytes:
        """The result of ``work`` run on the worker thread; BusyError when the queue is full."""
        job = _Job(work)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise BusyError("busy: too many requests waiting; retry shortly") from None
        if not job.done.wait(wait_s):
            raise BusyError(f"busy: no result within {wait_s:g} s; retry shortly")
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=WAIT_S)


def _png(images: Tensor, columns: int | None) -> bytes:
    buffer = io.BytesIO()
    grid_image(images, columns).save(buffer, format="PNG")
    return buffer.getvalue()


class SampleRenderer:
    """PNG grids from a generator; the functions the worker runs."""

    def __init__(self, generator: nn.Module, device: str | torch.device = "cpu",
                 truncation: float | None = None) -> None:
        if truncation is not None:
            check_truncation(truncation)
        self.generator = generator
        self.device = device
        self.truncation = truncation  # of requests that do not say
        self.latent_dim: int = generator.latent_dim
        self.num_classes: int = generator.num_classes
        self.classes = generator_class_names(generator)
        shape = generate(generator, latents(1, self.latent_dim, 0, device),
                         labels=self._labels(1, None, 1)).shape
        self.channels, self.img_size = int(shape[1]), int(shape[-1])

    def layout(self, n: int, label: int | None) -> tuple[int, int | None]:
        """Images and grid columns for ``n`` asked (None: a square grid). A conditional model
        drawing every class gets one row per class, ``n // classes`` images a row but at least
        one, so the grid holds whole rows and no class is left out."""
        if label is not None or not self.num_classes:
            return n, None
        columns = max(1, n // self.num_classes)
        return columns * self.num_classes, columns

    def _labels(self, n: int, label: int | None, columns: int | None) -> Tensor | None:
        """``label`` for all ``n`` samples, or every class in turn, one per grid row."""
        if label is not None:
            return torch.full((n,), label, dtype=torch.long, device=self.device)
        return class_labels(n, self.num_classes, repeat=columns or 1, device=self.device)

    def samples(self, seed: int, n: int, label: int | None = None,
                truncation: float | None = None) -> bytes:
        """A grid of ``n`` samples (see :meth:`layout`) from the latents of ``seed``,
        truncated at ``truncation``."""
        count, columns = self.layout(n, label)
        z = latents(count, self.latent_dim, seed, self.device, truncation)
        images = generate(self.generator, z, labels=self._labels(count, label, columns))
        return _png(images, columns)

    def interpolation(self, a: int, b: int, t: float, n: int, label: int | None = None,
                      truncation: float | None = None) -> bytes:
        """A grid of ``n`` samples (see :meth:`layout`) a fraction ``t`` of the way (slerp)
        from seed a to seed b."""
        count, columns = self.layout(n, label)
        za = latents(count, self.latent_dim, a, self.device, truncation)
        zb = latents(count, self.latent_dim, b, self.device, truncation)
        z = za if t == 0 else zb if t == 1 else slerp(za, zb, torch.tensor(t, device=za.device))
        if truncation is not None:
            z = z.clamp(-truncation, truncation)
        images = generate(self.generator, z, labels=self._labels(count, label, columns))
        return _png(images, columns)

    def info(self) -> dict[str, Any]:
        """What the page and scripts need to know about the model and the limits."""
        return {
            "latent_dim": self.latent_dim, "img_size": self.img_size, "channels": self.channels,
            "generator": type(self.generator).__name__, "conditional": bool(self.classes),
            "classes": self.classes, "max_n": MAX_SAMPLES, "max_queue": MAX_QUEUE,
            "truncation": self.truncation,
        }


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise ParameterError(f"parameter '{name}' given more than once")
    return values[0]


def _integer(params: dict[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    text = _one(params, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):
        raise ParameterError(f"parameter '{name}' must be a whole number, got {text[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise ParameterError(f"parameter '{name}' must be between {lo} and {hi}, got {value}")
    return value


def _fraction(params: dict[str, list[str]], name: str) -> float:
    text = _one(params, name)
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"parameter '{name}' must be a number, got {text[:40]!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ParameterError(f"parameter '{name}' must be between 0 and 1, got {text[:40]!r}")
    return value


def _truncation(params: dict[str, list[str]], default: float | None) -> float | None:
    """The ``truncation`` parameter: PSI > 0, ``none``, or ``default`` when not given."""
    text = _one(params, "truncation")
    if text is None:
        return default
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"parameter 'truncation' must be a number > 0 or 'none', "
                             f"got {text[:40]!r}")
    return value


def _label(params: dict[str, list[str]], renderer: SampleRenderer) -> int | None:
    """The ``class`` parameter of a conditional model: a class name, or its index."""
    text = _one(params, "class")
    if text is None:
        return None
    if not renderer.classes:
        raise ParameterError("parameter 'class': this model is not conditional")
    try:
        return resolve_classes([text[:80]], renderer.classes)[0]  # type: ignore[index]
    except ConfigError as exc:
        raise ParameterError(f"parameter 'class': {exc}") from None


def _check_names(params: dict[str, list[str]], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        raise ParameterError(f"unknown parameter '{unknown[0]}' (expected: {expected})")


class SampleServer(ThreadingHTTPServer):
    """HTTP server answering the page, ``/info``, ``/sample.png`` and ``/interpolate.png``."""

    daemon_threads = True

    def __init__(self, generator: nn.Module, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 device: str | torch.device = "cpu", max_queue: int = MAX_QUEUE,
                 log: bool = False, truncation: float | None = None) -> None:
        self.renderer = SampleRenderer(generator, device, truncation)
        self.worker = GeneratorWorker(max_queue)
        self.log = log
        try:
            super().__init__((host, port), _Handler)
        except BaseException:
            self.worker.stop()
            raise

    @property
    def url(self) -> str:
        """The address the server listens on, as a URL."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def route(self, path: str, params: dict[str, list[str]]) -> tuple[str, bytes]:
        """The content type and body for a GET of ``path``; ParameterError, BusyError or
        LookupError (a 404) otherwise."""
        r = self.renderer
        if path == "/":
            # The page's own view (its controls), so that a view can be bookmarked or linked;
            # the page reads them and the image requests check them.
            _check_names(params, set(PAGE_VIEW))
            return "text/html; charset=utf-8", page()
        if path == "/info":
            _check_names(params, set())
            return "application/json", json.dumps(r.info()).encode()
        if path == "/sample.png":
            _check_names(params, {"seed", "n", "class", "truncation"})
            seed = _integer(params, "seed", 0, 0, MAX_SEED)
            n = _integer(params, "n", 16, 1, MAX_SAMPLES)
            label = _label(params, r)
            psi = _truncation(params, r.truncation)
            return "image/png", self.worker.run(lambda: r.samples(seed, n, label, psi))
        if path == "/interpolate.png":
            _check_names(params, {"a", "b", "t", "n", "class", "truncation"})
            a = _integer(params, "a", 0, 0, MAX_SEED)
            b = _integer(params, "b", 1, 0, MAX_SEED)
            t = _fraction(params, "t")
            n = _integer(params, "n", 16, 1, MAX_SAMPLES)
            label = _label(params, r)
            psi = _truncation(params, r.truncation)
            return "image/png", self.worker.run(lambda: r.interpolation(a, b, t, n, label, psi))
        raise LookupError(path)

    def server_close(self) -> None:
        """Stop listening, then stop the generator thread."""
        super().server_close()
        self.worker.stop()


class _Handler(BaseHTTPRequestHandler):
    server: SampleServer
    server_version = "transgan"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server looks up)
        parts = urlsplit(self.path)
        try:
            params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
            kind, body = self.server.route(parts.path, params)
        except ParameterError as exc:
            self._send_text(HTTPStatus.BAD_REQUEST, str(exc))
        except BusyError as exc:
            self._send_text(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), {"Retry-After": "1"})
        except LookupError:
            self._send_text(HTTPStatus.NOT_FOUND,
                            f"no page {parts.path[:80]!r}; try /, /info, /sample.png "
                            "or /interpolate.png")
        except Exception as exc:  # a failing model must not take the server down
            print(f"transgan serve: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._send_text(HTTPStatus.INTERNAL_SERVER_ERROR,
                            f"generation failed: {type(exc).__name__}")
        else:
            self._send(HTTPStatus.OK, kind, body)

    def _send_text(self, status: HTTPStatus, message: str,
                   headers: dict[str, str] | None = None) -> None:
        self._send(status, "text/plain; charset=utf-8", (message + "\n").encode(), headers)

    def _send(self, status: HTTPStatus, kind: str, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        if self.server.log:
            super().log_message(format, *args)


# The query parameters of the page's address: its controls (seed, images, class, truncation,
# the walk's other seed and position).
PAGE_VIEW = ("seed", "n", "class", "truncation", "b", "t")


def page() -> bytes:
    """The page (``serve_page.html`` beside this module): its controls ask ``/info`` what the
    model is and fetch the PNG API; the address keeps the view (:data:`PAGE_VIEW`)."""
    return resources.files("transgan").joinpath(PAGE_FILE).read_bytes()
