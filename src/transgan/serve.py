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
from typing import Any
from urllib.parse import parse_qs, urlsplit

import torch
from torch import Tensor, nn

from transgan.errors import BusyError, ParameterError
from transgan.sampling import check_truncation, class_labels, generate, grid_image, latents, slerp

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_SAMPLES = 64  # images per request
MAX_QUEUE = 8  # requests waiting for the generator; more get a 503
MAX_SEED = 2**63 - 1
WAIT_S = 60.0  # longest a request waits for its images


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
        self.classes = [str(k) for k in range(self.num_classes)]
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
    """The ``class`` parameter, kept in the API for conditional models."""
    text = _one(params, "class")
    if text is None:
        return None
    if not renderer.classes:
        raise ParameterError("parameter 'class': this model is not conditional")
    return _integer(params, "class", 0, 0, len(renderer.classes) - 1)


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
            return "text/html; charset=utf-8", PAGE.encode()
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

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>transgan samples</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; }
[hidden] { display: none !important; }
fieldset { display: inline-block; margin: 0 1em 1em 0; }
label { margin-right: 1em; white-space: nowrap; }
input[type=number] { width: 9em; }
img { image-rendering: pixelated; display: block; margin: 1em 0; width: min(100%, 768px); }
img:not([src]) { display: none; }
#status { color: #a00; }
</style></head><body>
<h1>transgan samples</h1>
<p id="model"></p>
<fieldset><legend>Samples</legend>
 <label>seed <input id="seed" type="number" min="0" value="0"></label>
 <button id="new-seed">new seed</button>
 <label>images <select id="n"></select></label> <span id="layout"></span><br>
 <label>truncation <input id="psi" type="number" min="0.05" step="0.1" placeholder="none">
 </label>
</fieldset>
<fieldset id="class-box" hidden><legend>Class</legend>
 <select id="class"><option value="">all, one per row</option></select>
</fieldset>
<fieldset><legend>Walk to another seed</legend>
 seed <input id="seed-b" type="number" min="0" value="1">
 <button id="new-seed-b">new seed</button>
 <input id="t" type="range" min="0" max="1" step="0.02" value="0"> <span id="t-value">0</span>
</fieldset>
<div><a id="download" download="samples.png" href="#">download PNG</a>
 <span id="status"></span></div>
<img id="grid" alt="generated samples">
<p>Latents are standard normal; with a truncation PSI each component is drawn from a normal
truncated at |z| &le; PSI (less variety, more typical samples; 1 is a real truncation, empty is
none). The walk is a spherical interpolation.</p>
<script>
const $ = (id) => document.getElementById(id);
const img = $("grid");
let loading = false, pending = null, classes = 0;
function randomSeed() { return Math.floor(Math.random() * 2147483647); }
// Every class gets a row, as the server lays it out (SampleRenderer.layout): whole rows of
// n / classes images, at least one.
function layout(n) {
  if (!classes || $("class").value !== "") return "";
  const columns = Math.max(1, Math.floor(n / classes));
  return `one row per class: ${columns} each, ${columns * classes} images`;
}
function url() {
  const n = $("n").value, a = $("seed").value || "0", t = Number($("t").value);
  $("layout").textContent = layout(Number(n));
  const k = ($("class").value === "" ? "" : `&class=${$("class").value}`) +
    `&truncation=${$("psi").value || "none"}`;
  $("t-value").textContent = t.toFixed(2);
  if (t === 0) return `sample.png?seed=${a}&n=${n}${k}`;
  return `interpolate.png?a=${a}&b=${$("seed-b").value || "0"}&t=${t}&n=${n}${k}`;
}
// The page's address holds its view, so that it can be bookmarked or linked.
function remember() {
  const view = new URLSearchParams({seed: $("seed").value || "0", n: $("n").value});
  if ($("class").value !== "") view.set("class", $("class").value);
  if ($("psi").value) view.set("truncation", $("psi").value);
  if (Number($("t").value) > 0) {
    view.set("b", $("seed-b").value || "0");
    view.set("t", $("t").value);
  }
  history.replaceState(null, "", `?${view}`);
}
function show() {
  const next = url();
  $("download").href = next;
  remember();
  if (loading) { pending = next; return; }
  load(next);
}
// Fetched rather than set as the image's source, so that a refused value shows the server's
// one-line reason instead of a broken image.
function load(address) {
  loading = true;
  fetch(address).then(async (response) => {
    if (!response.ok) throw new Error(await response.text());
    const previous = img.src;
    img.src = URL.createObjectURL(await response.blob());
    if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
    $("status").textContent = "";
  }).catch((error) => {
    img.removeAttribute("src");  // the reason, not a broken image
    $("status").textContent = error.message || "no image: the server did not answer";
  }).finally(() => {
    loading = false;
    if (pending !== null) { const next = pending; pending = null; load(next); }
  });
}
$("new-seed").onclick = () => { $("seed").value = randomSeed(); show(); };
$("new-seed-b").onclick = () => { $("seed-b").value = randomSeed(); show(); };
for (const id of ["seed", "seed-b", "n", "class", "psi"]) $(id).onchange = show;
$("t").oninput = show;
fetch("info").then((r) => r.json()).then((info) => {
  $("model").textContent = `${info.generator}: ${info.img_size} px, ` +
    `${info.channels} channel(s), latent size ${info.latent_dim}`;
  for (let k = 1; k * k <= info.max_n; k++) {
    const option = new Option(String(k * k), String(k * k));
    option.selected = k === 4;
    $("n").add(option);
  }
  info.classes.forEach((name, k) => $("class").add(new Option(name, String(k))));
  $("class-box").hidden = !info.conditional;
  if (info.truncation !== null) $("psi").value = info.truncation;
  classes = info.classes.length;
  const view = new URLSearchParams(location.search);
  const given = {seed: "seed", n: "n", class: "class", truncation: "psi", b: "seed-b", t: "t"};
  for (const [name, id] of Object.entries(given)) {
    if (view.has(name)) $(id).value = view.get(name);
  }
  show();
});
</script>
</body></html>
"""
