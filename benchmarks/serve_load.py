"""Latency and memory of ``transgan serve`` under a few concurrent loopback clients.

Starts the server on an ephemeral port in this process, sends ``--clients`` x ``--requests``
``GET /sample.png?seed=S&n=N`` and prints the median and p99 latency and the RSS before/after.

    .venv/bin/python benchmarks/serve_load.py [--model RUN_OR_DIR] [--clients 4]
        [--requests 50] [--n 4]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

import transgan
from transgan.serve import SampleServer


def rss_mib() -> float:
    """This process's resident memory in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fetch(url: str) -> int:
    """The status of a GET of ``url``, the body read and checked to be a PNG."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status if response.read().startswith(b"\x89PNG") else -1
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run directory, checkpoint or model folder "
                        "(default: a tiny untrained digits generator)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--n", type=int, default=4, help="images per request")
    args = parser.parse_args()

    if args.model:
        generator = transgan.load_generator(args.model)
    else:
        torch.manual_seed(0)
        generator = transgan.build_generator("digits", width=32, depths=[1, 1], latent_dim=16)
        generator.eval().requires_grad_(False)
    server = SampleServer(generator, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"{server.url}sample.png?n={args.n}&seed="
    for seed in range(20):
        fetch(base + str(seed))
    before = rss_mib()
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(args.requests):
            start = time.perf_counter()
            status = fetch(base + str(k * 100_000 + i))
            with lock:
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    failures.append(status)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - start
    after = rss_mib()
    server.shutdown()
    server.server_close()

    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"{len(latencies)} requests ({args.clients} clients, n={args.n}) in {total:.2f} s "
          f"({len(latencies) / total:.0f} req/s), {len(failures)} not 200")
    print(f"latency: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms")
    print(f"RSS: {before:.0f} MiB before, {after:.0f} MiB after ({after - before:+.1f} MiB)")


if __name__ == "__main__":
    main()
