"""Seed offsets of a run's random streams, kept apart from one another and from --seed."""

from __future__ import annotations

# The latent and flip generators of the training step: --seed plus these.
LATENT_SEED = 1_000_003
FLIP_SEED = 2_000_003
# A prime step between the seeds of successive rollbacks (fresh randomness, so the same steps
# are not replayed into the same failure) and between the data loader seeds of the ranks.
SEED_STRIDE = 7919
