"""The numpy statistics of metrics.frechet: Frechet distance, Inception score and KID against
closed forms and direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from transgan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)


def test_frechet_matches_closed_form_for_diagonal_gaussians() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.5, 2.0, size=6), rng.uniform(0.5, 2.0, size=6)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_frechet_matches_scipy_sqrtm_for_full_covariances() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) * 1.5 + 0.3
    (mu1, s1), (mu2, s2) = feature_statistics(a), feature_statistics(b)
    root = np.real(scipy.linalg.sqrtm(s1 @ s2))
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
    assert frechet_distance_features(a, b) == pytest.approx(reference, rel=1e-8)


def test_frechet_from_few_features_equals_statistics_form() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 50)), rng.normal(size=(12, 50)) + 0.2
    expected = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert frechet_distance_features(a, b) == pytest.approx(expected, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    features = np.random.default_rng(3).normal(size=(200, 16))
    stats = feature_statistics(features)
    assert frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_features(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_handles_singular_covariances() -> None:
    features = np.random.default_rng(4).normal(size=(5, 32))  # rank 4 covariance in 32 dims
    stats = feature_statistics(features)
    value = frechet_distance(*stats, *feature_statistics(features + 1.0))
    assert value == pytest.approx(32.0, rel=1e-6)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_inception_score_equals_a_direct_numpy_computation() -> None:
    logits = np.random.default_rng(7).normal(size=(60, 5)) * 3
    scores = []
    for chunk in np.split(_softmax(logits), 4):
        kl = (chunk * np.log(chunk / chunk.mean(axis=0))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    mean, std = inception_score(logits, splits=4)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)


def test_inception_score_of_confident_balanced_predictions_is_class_count() -> None:
    logits = 50.0 * np.eye(10)[np.tile(np.arange(10), 20)]  # every split holds each class twice
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(10.0)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_a_uniform_or_constant_classifier_is_one() -> None:
    mean, std = inception_score(np.zeros((50, 10)), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    constant = np.tile(np.log([[0.7, 0.2, 0.1]]), (50, 1))
    assert inception_score(constant, splits=5)[0] == pytest.approx(1.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / a.shape[1] + 1) ** 3

    m = len(x)
    k_xx, k_yy = kernel(x, x), kernel(y, y)
    same = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(same - 2 * kernel(x, y).mean())


def test_kid_of_whole_sets_equals_a_direct_numpy_computation() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(30, 6)) + 0.5
    mean, std = kernel_inception_distance(x, y, subsets=5, subset_size=30)
    assert mean == pytest.approx(_mmd2_unbiased(x, y), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    small, _ = kernel_inception_distance(a, b + 0.5, subsets=20, subset_size=200)
    large, _ = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert 10 * abs(same) < small < large


def test_kid_caps_subset_size_at_the_smaller_set() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(50, 4))
    capped, _ = kernel_inception_distance(x, y, subsets=3, subset_size=1000)
    assert capped == kernel_inception_distance(x, y, subsets=3, subset_size=20)[0]
