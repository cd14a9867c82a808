"""Shared fixtures: a tiny digits model so end-to-end runs take seconds."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from transgan.metrics.digits import load_digits_classifier
from transgan.train.recipes import options_for
from transgan.train.step import GANStep, StepImpl
from transgan.train.training import build_run


def _share_the_cores() -> None:
    """Under pytest-xdist, each worker and the commands it starts use their share of the
    cores, so that tests running side by side do not oversubscribe them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


_share_the_cores()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The README's examples first: the longest file, it should not start last on a worker."""
    items.sort(key=lambda item: item.path.name != "test_readme.py")

# A 16 px digits model small enough for a few training steps per second on one core.
TINY_MODEL = [
    "--gen", "width=32", "--gen", "depths=[1,1]", "--gen", "latent_dim=16",
    "--disc", "width=32", "--disc", "depth=1", "--disc", "patch=4",
]
TINY_RUN = [
    "--preset", "digits-vit", "--batch", "16", "--n-critic", "2", "--log-every", "64",
    "--sample-every", "128", "--checkpoint-every", "128", "--num-samples", "16",
    "--no-progress", *TINY_MODEL,
]


# The same tiny run as options, for tests that build a run without the command line.
TINY_OPTIONS = {
    "batch": 16, "n_critic": 2, "log_every": 64, "sample_every": 128, "checkpoint_every": 128,
    "num_samples": 16, "progress": False,
    "generator": {"width": 32, "depths": [1, 1], "latent_dim": 16},
    "discriminator": {"width": 32, "depth": 1, "patch": 4},
}


def tiny_step(impl: StepImpl | None = None, preset: str = "digits-vit", **updates: Any) -> GANStep:
    """The GAN step of a tiny fp32 run of ``preset`` with option ``updates``: built from the
    options alone, without the command line or a run directory."""
    opts = options_for(preset, {**TINY_OPTIONS, "precision": "fp32", **updates})
    return build_run(opts, impl=impl).step


def weights_after_cycles(step: GANStep, real: torch.Tensor,
                         cycles: int = 2) -> dict[str, torch.Tensor]:
    """Copies of G's, D's and the EMA's weights after ``cycles`` training cycles of ``step`` on
    ``real`` (its random draws are fixed by the seed the run was built with)."""
    for _ in range(cycles):
        step.cycle(lambda: real)
    return {f"{name}.{key}": value.clone() for name in ("G", "D", "G_ema")
            for key, value in getattr(step, name).state_dict().items()}


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    """Write name -> bytes below root (creating folders) and return root."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def free_port() -> int:
    """A TCP port free on this machine now, for a process group's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tiny_run_args() -> list[str]:
    return list(TINY_RUN)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transgan-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches (digits classifier, reference statistics) never touch the user's home."""
    monkeypatch.setenv("TRANSGAN_CACHE", str(session_cache))


@pytest.fixture(scope="session")
def digits_cache(session_cache: Path) -> Path:
    """The session's cache with the digits classifier trained once."""
    load_digits_classifier(session_cache)
    return session_cache
