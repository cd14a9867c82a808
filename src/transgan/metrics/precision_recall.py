"""Improved precision and recall (Kynkäänniemi et al. 2019) of generated against real features.

A set of feature vectors stands for the manifold made of a ball around each vector reaching
its k-th nearest neighbour in the set (k = 3, the paper's and torch-fidelity's default).
Precision is the share of generated vectors inside the real manifold (are samples realistic?),
recall the share of real vectors inside the generated one (is the real variety covered?).
Distances are computed a block of rows at a time, so 50k x 50k sets never hold a full matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from transgan.errors import MetricError

PRC_NEIGHBOURS = 3
# Distances held at once: 2**24 float32 values, 64 MiB.
BLOCK_ELEMENTS = 2**24


def _distance_blocks(rows: Tensor, cols: Tensor) -> Iterator[Tensor]:
    """Euclidean distances from ``rows`` to ``cols``, a block of whole rows at a time."""
    step = max(1, BLOCK_ELEMENTS // max(1, len(cols)))
    for start in range(0, len(rows), step):
        yield torch.cdist(rows[start : start + step], cols)


@dataclass(frozen=True)
class Manifold:
    """Feature vectors and the radius of the ball around each (its k-th neighbour's distance)."""

    features: Tensor
    radii: Tensor

    def share_inside(self, queries: Tensor) -> float:
        """The share of ``queries`` in at least one ball (a point on a ball's surface is in)."""
        queries = queries.to(self.features)
        inside = [(d <= self.radii).any(dim=1) for d in _distance_blocks(queries, self.features)]
        return float(torch.cat(inside).double().mean())


def manifold(
    features: np.ndarray | Tensor, k: int = PRC_NEIGHBOURS, device: str | torch.device = "cpu"
) -> Manifold:
    """The k-nearest-neighbour manifold of (N, D) ``features``, computed on ``device``."""
    points = torch.as_tensor(np.asarray(features), dtype=torch.float32, device=device)
    if points.ndim != 2 or not 1 <= k < len(points):
        raise MetricError(f"precision and recall need more than k={k} feature vectors per set, "
                          f"got {tuple(points.shape)}")
    # Each row's own zero distance is its smallest, so the (k + 1)-th is the k-th neighbour.
    radii = torch.cat([d.kthvalue(k + 1, dim=1).values for d in _distance_blocks(points, points)])
    return Manifold(points, radii)


def precision_recall(
    fake: np.ndarray | Tensor,
    real: np.ndarray | Tensor | Manifold,
    k: int = PRC_NEIGHBOURS,
    device: str | torch.device = "cpu",
) -> tuple[float, float]:
    """(precision, recall) of generated features ``fake`` against ``real`` (features, or their
    manifold when it is reused across evaluations)."""
    real_manifold = real if isinstance(real, Manifold) else manifold(real, k, device)
    fake_manifold = manifold(fake, k, real_manifold.features.device)
    if fake_manifold.features.shape[1] != real_manifold.features.shape[1]:
        raise MetricError(f"{fake_manifold.features.shape[1]} generated against "
                          f"{real_manifold.features.shape[1]} real feature dimensions")
    precision = real_manifold.share_inside(fake_manifold.features)
    recall = fake_manifold.share_inside(real_manifold.features)
    return precision, recall
