"""Images per second of the trainer's data path for ``zip:`` (a prepared archive) vs ``folder:``.

Writes ``--images`` generated PNGs to a temporary folder, packs them with ``transgan prepare``,
builds both data sets as the trainer does and reads batches through the trainer's batch stream
with the default worker count of each (folder: decodes per step in worker processes; prepared
zip: decoded once into memory, no workers). Rounds alternate between the two; the median is
printed with the one-time cost of building each data set.

    .venv/bin/python benchmarks/data_speed.py [--images 2000] [--resolution 32] [--batch 64]
        [--batches 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from transgan.data import build_dataset, default_num_workers
from transgan.data.prepare import prepare
from transgan.train.batches import batch_stream


def write_images(folder: Path, count: int, side: int) -> None:
    """count smooth random colour images (photo-like PNG sizes, not incompressible noise)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        smooth = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
        grain = rng.integers(-8, 9, size=(side, side, 3))
        pixels = np.clip(np.asarray(smooth, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")


def images_per_second(spec: str, resolution: int, batch: int, batches: int) -> tuple[float, int]:
    """(img/s over `batches` batches after the first, workers used) for the data spec."""
    dataset = build_dataset(spec, resolution, 3)
    workers = default_num_workers(dataset)
    stream = batch_stream(dataset, batch, rank=0, world_size=1, seed=0, start=0,
                          workers=workers, pin_memory=False)
    next(stream)  # worker start-up is paid once per run, not per step
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    elapsed = time.perf_counter() - start
    del stream
    return batches * batch / elapsed, workers


def build_seconds(spec: str, resolution: int) -> float:
    start = time.perf_counter()
    build_dataset(spec, resolution, 3)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=50, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder, archive = Path(tmp) / "images", Path(tmp) / "data.zip"
        write_images(folder, args.images, args.resolution)
        start = time.perf_counter()
        report = prepare(folder, archive, args.resolution, progress=False)
        packing = time.perf_counter() - start
        print(report.summary(archive, args.resolution, 3))
        print(f"cpus: {os.cpu_count()}; prepare took {packing:.2f} s")
        specs = {"folder": f"folder:{folder}", "zip": f"zip:{archive}"}
        for name, spec in specs.items():
            seconds = build_seconds(spec, args.resolution)
            print(f"{name}: building the data set took {seconds:.2f} s")
        rates: dict[str, list[float]] = {name: [] for name in specs}
        workers: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, spec in specs.items():
                rate, workers[name] = images_per_second(spec, args.resolution, args.batch,
                                                        args.batches)
                rates[name].append(rate)
        for name in specs:
            runs = ", ".join(f"{r:.0f}" for r in rates[name])
            print(f"{name}: {statistics.median(rates[name]):.0f} img/s median "
                  f"(rounds: {runs}; {workers[name]} loader workers)")
        ratio = statistics.median(rates["zip"]) / statistics.median(rates["folder"])
        print(f"zip / folder: {ratio:.1f}x")


if __name__ == "__main__":
    main()
