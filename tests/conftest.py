"""Shared fixtures: a tiny digits model so end-to-end runs take seconds."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from transgan.metrics.digits import load_digits_classifier

# A 16 px digits model small enough for a few training steps per second on one core.
TINY_MODEL = [
    "--gen", "width=32", "--gen", "depths=[1,1]", "--gen", "latent_dim=16",
    "--disc", "width=32", "--disc", "depth=1", "--disc", "patch=4",
]
TINY_RUN = [
    "--preset", "digits", "--batch", "16", "--n-critic", "2", "--log-every", "64",
    "--sample-every", "128", "--checkpoint-every", "128", "--num-samples", "16",
    "--no-progress", *TINY_MODEL,
]


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
