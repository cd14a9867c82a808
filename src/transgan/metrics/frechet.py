"""FID, IS and KID from feature vectors: torch-fidelity's computations, plus the few-sample FID.

Every extractor (Inception, digits) and every reference goes through these functions, so the
numbers are torch-fidelity's for the same features. Features are passed as float64, which
torch-fidelity keeps (its float32 path would round the means and the KID kernels).
"""

from __future__ import annotations

import numpy as np
import torch
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import (
    KEY_METRIC_ISC_MEAN,
    KEY_METRIC_ISC_STD,
    isc_features_to_metric,
)
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_features_to_metric,
)

from transgan.errors import MetricError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64 (torch-fidelity's)."""
    stats = fid_features_to_statistics(torch.from_numpy(np.asarray(features, np.float64)))
    return stats["mu"], np.atleast_2d(stats["sigma"])


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), by torch-fidelity."""
    stats = [{"mu": np.asarray(m, np.float64), "sigma": np.asarray(s, np.float64)}
             for m, s in ((mu1, sigma1), (mu2, sigma2))]
    value = fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID]
    # Rounding can push a zero distance slightly below zero.
    return float(max(value, 0.0))


def frechet_distance_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance of the Gaussians fitted to two feature sets of at most D vectors each.

    With centred, scaled features A1, A2 (sigma = A^T A), tr sqrtm(s1 s2) is the nuclear norm
    of A1 A2^T. Kept beside torch-fidelity's eigvals(s1 s2) because the covariances are then
    singular: for 4 vs 4 vectors in 2048 dimensions torch-fidelity gave 31.12998 against the
    exact 31.13476 (1.5e-4 relative) in 3.8 s; this form is exact and takes milliseconds.
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1 = (f1 - mu1) / np.sqrt(f1.shape[0] - 1)
    a2 = (f2 - mu2) / np.sqrt(f2.shape[0] - 1)
    trace_root = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()
    diff = mu1 - mu2
    value = diff @ diff + (a1 * a1).sum() + (a2 * a2).sum() - 2.0 * trace_root
    return float(max(value, 0.0))


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and std over ``splits`` contiguous chunks of exp(E[KL(p(y|x) || p(y))]).

    ``logits`` are (N, classes) class logits; torch-fidelity's computation without its shuffle.
    """
    if not 1 <= splits <= len(logits):
        raise MetricError(f"splits must be between 1 and the sample count {len(logits)}")
    out = isc_features_to_metric(torch.from_numpy(np.asarray(logits, np.float64)),
                                 splits=splits, shuffle=False)
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and std of the unbiased MMD² with kernel (x·y/d + 1)³ over random subsets.

    torch-fidelity's computation; the subset size is capped at the smaller set.
    """
    size = min(subset_size, len(features1), len(features2))
    if size < 2 or subsets < 1:
        raise MetricError(f"KID needs subsets >= 1 of at least 2 samples, got {subsets} of {size}")
    out = kid_features_to_metric(
        torch.from_numpy(np.asarray(features1, np.float64)),
        torch.from_numpy(np.asarray(features2, np.float64)),
        kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False,
    )
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]
