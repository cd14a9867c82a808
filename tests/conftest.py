"""Shared fixtures: a tiny digits model so end-to-end runs take seconds."""

from __future__ import annotations

import pytest

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


@pytest.fixture
def tiny_run_args() -> list[str]:
    return list(TINY_RUN)
