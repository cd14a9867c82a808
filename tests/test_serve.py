"""``transgan serve``: the HTTP API, its bad inputs, a full queue, and a loopback load check."""

from __future__ import annotations

import io
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import Tensor, nn

import transgan
from transgan.cli import main
from transgan.serve import MAX_SAMPLES, SampleServer

TILE = 64 + 2  # 16 px samples are enlarged to 64 px tiles with 2 px padding


def _tiny_generator() -> nn.Module:
    return transgan.build_generator("digits", width=32, depths=[1, 1], latent_dim=16)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained digits generator saved as a model folder."""
    path = tmp_path_factory.mktemp("serve") / "model"
    torch.manual_seed(0)
    _tiny_generator().save_pretrained(path)
    return path


def _start(server: SampleServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def _stop(server: SampleServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def url(model_dir: Path) -> Iterator[str]:
    server = SampleServer(transgan.load_generator(model_dir), port=0)
    thread = _start(server)
    yield server.url
    _stop(server, thread)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def _grid_side(n: int) -> int:
    cols = int(n**0.5 + 0.999)
    return cols * TILE + 2


def body_of_page(url: str) -> bytes:
    return _get(url)[2]


def test_binds_loopback_by_default(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")


def test_page_and_info(url: str) -> None:
    status, kind, body = _get(url)
    assert status == 200 and kind.startswith("text/html")
    page = body.decode()
    for needle in ("new seed", 'type="range"', "download", "sample.png", "interpolate.png",
                   '"truncation"'):
        assert needle in page
    status, kind, body = _get(url + "info")
    assert status == 200 and kind == "application/json"
    assert b'"img_size": 16' in body and b'"conditional": false' in body
    # A view of the page can be bookmarked: its controls' parameters are taken, others not.
    status, _, linked = _get(url + "?seed=5&n=64&truncation=0.7&b=9&t=0.5")
    assert status == 200 and linked == body_of_page(url)
    assert _get(url + "?colour=red")[0] == 400
    # An element the script hides stays hidden (the fieldsets' CSS display does not win), and
    # a refused image shows the server's reason (the page fetches it).
    assert "[hidden] { display: none !important; }" in page
    assert "await response.text()" in page


@pytest.mark.parametrize("n", [1, 4, 9, 16])
def test_sample_png_size(url: str, n: int) -> None:
    status, kind, body = _get(f"{url}sample.png?seed=5&n={n}")
    assert status == 200 and kind == "image/png"
    image = Image.open(io.BytesIO(body))
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == (_grid_side(n), _grid_side(n))


def test_samples_follow_the_seed(url: str) -> None:
    first = _get(f"{url}sample.png?seed=7&n=4")[2]
    assert _get(f"{url}sample.png?seed=7&n=4")[2] == first
    assert _get(f"{url}sample.png?seed=8&n=4")[2] != first
    assert _get(f"{url}sample.png")[0] == 200  # defaults: seed 0, 16 images


def test_interpolation_ends_at_the_seeds(url: str) -> None:
    a, b = _get(f"{url}sample.png?seed=1&n=9")[2], _get(f"{url}sample.png?seed=2&n=9")[2]
    assert _get(f"{url}interpolate.png?a=1&b=2&t=0&n=9")[2] == a
    assert _get(f"{url}interpolate.png?a=1&b=2&t=1&n=9")[2] == b
    status, _, middle = _get(f"{url}interpolate.png?a=1&b=2&t=0.5&n=9")
    assert status == 200 and middle not in (a, b)
    assert Image.open(io.BytesIO(middle)).size == (_grid_side(9), _grid_side(9))


def test_truncation_per_request_and_by_default(url: str, model_dir: Path) -> None:
    plain = _get(f"{url}sample.png?seed=4&n=4")[2]
    assert _get(f"{url}sample.png?seed=4&n=4&truncation=none")[2] == plain
    tamed = _get(f"{url}sample.png?seed=4&n=4&truncation=0.5")[2]
    assert tamed != plain
    start = _get(f"{url}interpolate.png?a=4&b=5&t=0&n=4&truncation=0.5")[2]
    assert start == tamed
    assert b'"truncation": null' in _get(url + "info")[2]
    # A server started with a truncation uses it unless a request says otherwise.
    server = SampleServer(transgan.load_generator(model_dir), port=0, truncation=0.5)
    thread = _start(server)
    try:
        assert _get(f"{server.url}sample.png?seed=4&n=4")[2] == tamed
        assert _get(f"{server.url}sample.png?seed=4&n=4&truncation=none")[2] == plain
        assert b'"truncation": 0.5' in _get(server.url + "info")[2]
    finally:
        _stop(server, thread)


@pytest.mark.parametrize("query", [
    "sample.png?n=0", f"sample.png?n={MAX_SAMPLES + 1}", "sample.png?n=10000",
    "sample.png?seed=abc", "sample.png?seed=-1", "sample.png?seed=1.5", "sample.png?seed=",
    "sample.png?seed=99999999999999999999999", "sample.png?seed=1&seed=2",
    "sample.png?colour=red", "sample.png?class=3", "interpolate.png?t=2",
    "interpolate.png?t=-0.1", "interpolate.png?t=nan", "interpolate.png?t=x",
    "interpolate.png?a=1&b=z", "info?x=1", "sample.png?truncation=0",
    "sample.png?truncation=-1", "sample.png?truncation=x", "interpolate.png?truncation=inf",
])
def test_bad_parameters_are_one_line_400s(url: str, query: str) -> None:
    status, kind, body = _get(url + query)
    assert status == 400 and kind.startswith("text/plain")
    text = body.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and "Traceback" not in text


def test_unknown_path_is_404(url: str) -> None:
    status, _, body = _get(url + "nope.png")
    assert status == 404 and body.decode().count("\n") == 1


class _Gate(nn.Module):
    """A generator that waits for ``open`` (or fails when ``broken``) before generating."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.latent_dim, self.num_classes = inner, inner.latent_dim, 0
        self.open, self.entered = threading.Event(), threading.Event()
        self.open.set()
        self.broken = False

    def forward(self, z: Tensor) -> Tensor:
        self.entered.set()
        if self.broken:
            raise RuntimeError("weights on fire")
        assert self.open.wait(30)
        return self.inner(z)


def test_full_queue_is_503_and_a_failing_model_is_500(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    gate = _Gate(_tiny_generator().eval())
    server = SampleServer(gate, port=0, max_queue=1)
    thread = _start(server)
    try:
        gate.open.clear()
        gate.entered.clear()
        results: list[int] = []
        one = server.url + "sample.png?n=1"
        clients = [threading.Thread(target=lambda: results.append(_get(one)[0])) for _ in range(2)]
        clients[0].start()
        assert gate.entered.wait(10)  # the worker is busy with the first request
        clients[1].start()
        deadline = time.monotonic() + 10
        while server.worker._jobs.qsize() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, _, body = _get(server.url + "sample.png?n=1")
        assert status == 503 and body.decode().startswith("busy:")
        gate.open.set()
        for client in clients:
            client.join(30)
        assert results == [200, 200]

        gate.broken = True
        status, _, body = _get(server.url + "sample.png?n=1")
        assert status == 500 and body == b"generation failed: RuntimeError\n"
        gate.broken = False
        assert _get(server.url + "sample.png?n=1")[0] == 200  # the worker carried on
    finally:
        gate.open.set()
        _stop(server, thread)
    assert "weights on fire" in capsys.readouterr().err


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("transgan: error: ") and err.count("\n") == 1
    return err


def test_cli_errors_are_one_line(model_dir: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys)
    assert main(["serve", str(model_dir), "--port", "70000"]) == 2
    assert "--port" in _one_line_error(capsys)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(model_dir), "--port", str(port)]) == 2
        assert "cannot listen" in _one_line_error(capsys)


@pytest.fixture
def interrupted_servers(monkeypatch: pytest.MonkeyPatch) -> list[SampleServer]:
    """Servers `transgan serve` starts, each stopped by Ctrl-C as it begins serving."""
    servers: list[SampleServer] = []

    def interrupted(self: SampleServer) -> None:
        servers.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(SampleServer, "serve_forever", interrupted)
    return servers


def test_cli_stops_cleanly_on_ctrl_c(model_dir: Path, interrupted_servers: list[SampleServer],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    servers = interrupted_servers
    assert main(["serve", str(model_dir), "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "serving" in out and "http://127.0.0.1:" in out and "stopped" in err
    assert servers[0].socket.fileno() == -1  # the socket is closed
    assert not servers[0].worker._thread.is_alive()


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_load_from_concurrent_clients(url: str) -> None:
    """4 clients x 50 requests of 4 samples: every one a 200, memory flat, latency reported."""
    clients, per_client = 4, 50
    for seed in range(20):  # warm up allocator and caches before measuring memory
        _get(f"{url}sample.png?seed={seed}&n=4")
    rss_before = _rss_mib()
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(per_client):
            start = time.perf_counter()
            status, _, body = _get(f"{url}sample.png?seed={k * 1000 + i}&n=4")
            elapsed = time.perf_counter() - start
            with lock:
                statuses.append(status if body.startswith(b"\x89PNG") else -status)
                latencies.append(elapsed)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    total = time.perf_counter() - start
    growth = _rss_mib() - rss_before
    latencies.sort()
    median = statistics.median(latencies) * 1000
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    print(f"\nserve load: {len(latencies)} requests in {total:.1f} s, median {median:.1f} ms, "
          f"p99 {p99:.1f} ms, RSS {rss_before:.0f} MiB -> {rss_before + growth:.0f} MiB")
    assert statuses == [200] * clients * per_client
    assert total < 60
    assert growth < 64


def test_cli_truncation_is_the_servers_default(
    model_dir: Path, interrupted_servers: list[SampleServer], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(model_dir), "--port", "0", "--truncation", "0.7"]) == 0
    assert interrupted_servers[0].renderer.info()["truncation"] == 0.7
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(model_dir), "--truncation", "-1"])
    assert exit_info.value.code == 2
    assert "argument --truncation" in _one_line_error(capsys)
