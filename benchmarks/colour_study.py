"""Why colour is lost on pictures whose colour does not follow their kind: the own-pictures
command on a folder of objects in random hues (benchmarks/objects.py, ``any_colour``), one
factor changed per arm, each run's samples against fresh reals in mean colour saturation and in
the share a classifier recognises.

    .venv/bin/python benchmarks/colour_study.py [--per-kind 150] [--images 30000] [--jobs 2]
        [--out runs/colour-study] [--json benchmarks/results/colour_study_cpu.json]

Each run is ``transgan train --data folder:DIR --images N --out OUT/ARM [ARM'S OPTIONS]`` with
one thread; running the script again resumes unfinished runs and judges them all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from objects import KINDS, fresh_batch, recognised, train_classifier, write_folder
from torch import Tensor

from transgan import load_generator
from transgan.models.presets import DIGITS_GAMMA, R3GAN_RECIPE
from transgan.sampling import generate, latents, save_grid


def option_flags(options: Mapping[str, object]) -> list[str]:
    """``transgan train`` flags that set ``options`` (name -> value)."""
    return [part for name, value in options.items()
            for part in (f"--{name.replace('_', '-')}", str(value))]


# One factor each: DiffAugment's colour transform (on every sample by default), all of
# DiffAugment, the objective (R3GAN's relativistic pairing with R1 + R2).
ARMS: dict[str, list[str]] = {
    "user-command": [],
    "no-colour-augment": ["--augment", "translation,cutout"],
    "no-augment": ["--augment", "none"],
    "rpgan": ["--loss", "rpgan"],
    # The digits screen's best discriminator option, alone and with the objective it won with
    # there (docs/results/discriminators.md).
    "rope": ["--disc", "rope=true"],
    # A finer D: 4 px patches, 64 tokens where the 8 px patches give 16.
    "patch4": ["--disc", "patch=4"],
    "rope-pairing": ["--disc", "rope=true", *option_flags({
        **R3GAN_RECIPE, "r1_gamma": DIGITS_GAMMA, "r2_gamma": DIGITS_GAMMA,
        "gamma_schedule": "constant"})],
}
CLASSIFIER_SEED, REAL_SEED, SAMPLE_SEED = 1, 2, 3


def saturation(images: Tensor) -> float:
    """Mean HSV saturation, (max - min) / max over the channels, of images in [-1, 1]."""
    rgb = (images.clamp(-1, 1) + 1) / 2
    high, low = rgb.amax(dim=1), rgb.amin(dim=1)
    return float(((high - low) / high.clamp_min(1e-6)).mean())


def train(data: Path, run: Path, images: int, extra: list[str]) -> None:
    command = [sys.executable, "-m", "transgan.cli", "train", "--data", f"folder:{data}",
               "--images", str(images), "--out", str(run), "--no-progress", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(run.parent / f"{run.name}.log", "a") as log:
        subprocess.run(command, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)


def judge(run: Path, classifier: torch.nn.Module, real_rate: float, samples: int) -> dict:
    G = load_generator(run)
    with torch.no_grad():
        fakes = generate(G, latents(samples, G.latent_dim, SAMPLE_SEED)).clamp(-1, 1)
    save_grid(fakes[:64], run.parent / f"{run.name}-samples.png", nrow=8)
    fake_rate, _ = recognised(classifier, fakes)
    return {"saturation": saturation(fakes), "recognised": fake_rate,
            "recognised_ratio": fake_rate / real_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=150)
    parser.add_argument("--images", type=int, default=30_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/colour-study"))
    parser.add_argument("--arms", default=",".join(ARMS),
                        help="comma list of the arms to train now; every arm on disk is judged")
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/colour_study_cpu.json"))
    args = parser.parse_args()

    data = args.out / "pictures"
    if not data.exists():
        write_folder(data, args.per_kind, any_colour=True)
    chosen = args.arms.split(",")
    if unknown := set(chosen) - set(ARMS):
        parser.error(f"unknown arms {', '.join(sorted(unknown))}; choose from {', '.join(ARMS)}")
    with ThreadPoolExecutor(args.jobs) as pool:
        done = [pool.submit(train, data, args.out / arm, args.images, ARMS[arm])
                for arm in chosen]
        for future in done:
            future.result()
    judged = {arm: extra for arm, extra in ARMS.items() if (args.out / arm).is_dir()}
    resolution = load_generator(args.out / chosen[0]).config.img_size
    classifier = train_classifier(resolution, seed=CLASSIFIER_SEED)
    reals, _ = fresh_batch(args.samples, resolution, REAL_SEED, any_colour=True)
    real_rate, _ = recognised(classifier, reals)
    result = {"images": args.images, "pictures": len(KINDS) * args.per_kind,
              "resolution": resolution,
              "reals": {"saturation": saturation(reals), "recognised": real_rate},
              "arms": {arm: {"options": extra, **judge(args.out / arm, classifier, real_rate,
                                                        args.samples)}
                       for arm, extra in judged.items()}}
    print(json.dumps(result, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
