"""A new user's first run on their own pictures, measured: no preset, no option but the length.

Draws a folder of simple objects (benchmarks/objects.py: apples, trees, houses, stars; 40-72 px,
half PNG at the top, half JPEG in subfolders), runs

    transgan train --data folder:DIR --images N --out RUN

as a user would, with its wall time, then judges the EMA generator's samples with a classifier
trained on freshly drawn pictures: the share it recognises with confidence >= 0.9, against the
same share on fresh real pictures, and the kinds among the recognised samples.

    .venv/bin/python benchmarks/own_pictures.py [--per-kind 100] [--images 60000]
        [--out runs/own-pictures] [--samples 1000] [--grid docs/own-pictures-samples.png]
        [--json benchmarks/results/own_pictures_cpu.json] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from objects import KINDS, fresh_batch, recognised, train_classifier, write_folder

from transgan import load_generator
from transgan.sampling import generate, latents, save_grid

# Seeds of the pictures the classifier learns from and of the real pictures it is scored on;
# the training folder uses seed 0.
CLASSIFIER_SEED, REAL_SEED, SAMPLE_SEED = 1, 2, 3


def train(data: Path, run: Path, images: int) -> float:
    """Run the user's command; its wall time in seconds."""
    command = [sys.executable, "-m", "transgan.cli", "train", "--data", f"folder:{data}",
               "--images", str(images), "--out", str(run)]
    print("$ transgan " + " ".join(command[3:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def judge(run: Path, samples: int, grid: Path) -> dict[str, object]:
    """The classifier's confident share of real pictures and of samples, and a sample grid."""
    G = load_generator(run)
    resolution = G.config.img_size
    with torch.no_grad():
        fakes = generate(G, latents(samples, G.latent_dim, SAMPLE_SEED)).clamp(-1, 1)
    save_grid(fakes[:64], grid, nrow=8)
    classifier = train_classifier(resolution, seed=CLASSIFIER_SEED)
    reals, _ = fresh_batch(samples, resolution, REAL_SEED)
    real_rate, real_kinds = recognised(classifier, reals)
    fake_rate, fake_kinds = recognised(classifier, fakes)
    return {
        "resolution": resolution, "channels": G.config.channels, "samples": samples,
        "real_recognised": real_rate, "samples_recognised": fake_rate,
        "ratio": fake_rate / real_rate,
        "real_kinds": dict(zip(KINDS, real_kinds, strict=True)),
        "sample_kinds": dict(zip(KINDS, fake_kinds, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=100)
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--out", type=Path, default=Path("runs/own-pictures"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--grid", type=Path, default=Path("docs/own-pictures-samples.png"))
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/own_pictures_cpu.json"))
    parser.add_argument("--skip-train", action="store_true", help="judge an existing run")
    args = parser.parse_args()

    data, run = args.out / "pictures", args.out / "run"
    result: dict[str, object] = {"images": args.images}
    if not args.skip_train:
        shutil.rmtree(args.out, ignore_errors=True)
        result["pictures"] = write_folder(data, args.per_kind)
        result["wall_s"] = train(data, run, args.images)
    result.update(judge(run, args.samples, args.grid))
    log = (run / "log.txt").read_text().splitlines()
    result["log_start"] = [line.split(" ", 2)[-1] for line in log[:4]]
    print(json.dumps(result, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
