"""Improved precision and recall: known answers, blocked distances, torch-fidelity's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_prc import prc_features_to_metric

from transgan.errors import MetricError
from transgan.metrics import precision_recall as prc_mod
from transgan.metrics.precision_recall import manifold, precision_recall


def _points(*values: float) -> np.ndarray:
    """Points on a line, as (N, 1) features."""
    return np.array(values, dtype=np.float32)[:, None]


def test_identical_sets_give_one_and_far_apart_sets_give_zero() -> None:
    features = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    assert precision_recall(features, features) == (1.0, 1.0)
    assert precision_recall(features + 1000, features) == (0.0, 0.0)


@pytest.mark.parametrize(("k", "expected"), [(1, (0.5, 0.25)), (3, (0.5, 1.0))])
def test_a_hand_computed_case(k: int, expected: tuple[float, float]) -> None:
    real, fake = _points(0, 1, 2, 3), _points(3.5, 4, 8, 9)
    # k=1: real balls of radius 1 cover [-1, 4], so 3.5 and 4 (on a surface) are in;
    #      fake radii 0.5, 0.5, 1, 1 cover [3, 4.5] and [7, 10], so of the real only 3 is in.
    # k=3: real radii 3, 2, 2, 3 cover [-3, 6]: 3.5 and 4 are in, 8 and 9 not;
    #      fake radii 5.5, 5, 4.5, 5.5 cover [-2, 14.5]: every real point.
    assert precision_recall(fake, real, k=k) == expected


def test_radii_are_the_kth_neighbours_distance() -> None:
    ball = manifold(_points(0, 1, 2, 3), k=3)
    assert ball.radii.tolist() == [3.0, 2.0, 2.0, 3.0]


def test_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    fake = rng.standard_normal((70, 5)).astype(np.float32)
    real = (rng.standard_normal((90, 5)) * 1.3 + 0.4).astype(np.float32)
    whole = precision_recall(fake, real)
    monkeypatch.setattr(prc_mod, "BLOCK_ELEMENTS", 7)  # blocks of one row
    assert precision_recall(fake, real) == whole
    assert 0 < whole[0] < 1 and 0 < whole[1] < 1


def test_agrees_with_torch_fidelity() -> None:
    rng = np.random.default_rng(2)
    fake = rng.standard_normal((300, 16)).astype(np.float32)
    real = (rng.standard_normal((400, 16)) * 1.2 + 0.2).astype(np.float32)
    theirs = prc_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real),
                                    verbose=False)
    ours = precision_recall(fake, real)
    assert ours == pytest.approx((theirs["precision"], theirs["recall"]), abs=1 / 400)


def test_a_reused_real_manifold_gives_the_same_answer() -> None:
    rng = np.random.default_rng(3)
    fake, real = rng.standard_normal((40, 4)), rng.standard_normal((50, 4))
    assert precision_recall(fake, manifold(real)) == precision_recall(fake, real)


def test_too_few_or_mismatched_features_are_metric_errors() -> None:
    with pytest.raises(MetricError, match="more than k=3"):
        precision_recall(_points(0, 1, 2), _points(0, 1, 2, 3, 4))
    with pytest.raises(MetricError, match="feature dimensions"):
        precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
