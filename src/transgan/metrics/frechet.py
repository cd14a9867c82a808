"""Sample-quality statistics on feature vectors: Fréchet distance, Inception Score, KID.

Pure numpy/scipy, shared by every feature extractor so that Inception metrics, digits metrics
and cached reference statistics all go through one code path.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

# Added to both covariances when the first attempt is numerically unusable.
FRECHET_EPS = 1e-6


class MetricError(ValueError):
    """User-facing problem with an evaluation request; str() is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    feats = _features_2d(features, "features")
    if feats.shape[0] < 2:
        raise MetricError(f"need at least 2 feature vectors for statistics, got {feats.shape[0]}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False).reshape(feats.shape[1], -1)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrtm(sigma1 @ sigma2), via the symmetric sqrt(s1) sigma2 sqrt(s1) (same eigenvalues)."""
    root = _psd_sqrt(sigma1)
    values = np.linalg.eigvalsh(root @ sigma2 @ root)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ||mu1 - mu2||² + tr(s1 + s2 - 2 sqrtm(s1 s2)); the trace of the matrix square root is
    taken from symmetric eigenvalues, which equals scipy.linalg.sqrtm's trace but is exact-real
    and several times faster at D = 2048. Near-singular inputs retry with eps * I added.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    dim = mu1.shape[0]
    if mu1.shape != mu2.shape or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise MetricError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise MetricError("statistics contain NaN or infinite values")
    diff = mu1 - mu2
    try:
        trace_root = _trace_sqrt_product(sigma1, sigma2)
    except np.linalg.LinAlgError:
        trace_root = float("nan")
    if not np.isfinite(trace_root):
        offset = np.eye(dim) * FRECHET_EPS
        trace_root = _trace_sqrt_product(sigma1 + offset, sigma2 + offset)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root
    # Rounding can push a zero distance slightly below zero.
    return float(max(value, 0.0))


def frechet_distance_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance of the Gaussians fitted to two feature sets, for few samples.

    With centred, scaled features A1, A2 (sigma = A^T A), tr sqrtm(s1 s2) is the nuclear norm
    of A1 A2^T: exact, and cheap when both sets are smaller than the feature dimension.
    """
    f1, f2 = _features_2d(features1, "features1"), _features_2d(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise MetricError(f"feature sizes differ: {f1.shape[1]} vs {f2.shape[1]}")
    if min(f1.shape[0], f2.shape[0]) < 2:
        raise MetricError("need at least 2 feature vectors in each set for a Fréchet distance")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1 = (f1 - mu1) / np.sqrt(f1.shape[0] - 1)
    a2 = (f2 - mu2) / np.sqrt(f2.shape[0] - 1)
    trace_root = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()
    diff = mu1 - mu2
    value = diff @ diff + (a1 * a1).sum() + (a2 * a2).sum() - 2.0 * trace_root
    return float(max(value, 0.0))


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and std over ``splits`` contiguous chunks of exp(E[KL(p(y|x) || p(y))]).

    ``probs`` are (N, classes) class probabilities, each row summing to 1.
    """
    p = _features_2d(probs, "probs")
    if splits < 1 or splits > p.shape[0]:
        raise MetricError(f"splits must be between 1 and the sample count {len(p)}, got {splits}")
    if (p < 0).any():
        raise MetricError("class probabilities must be non-negative")
    n = p.shape[0]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits : (i + 1) * n // splits]
        marginal = chunk.mean(axis=0, keepdims=True)
        # xlogy makes 0 * log 0 = 0, so one-hot predictions are fine.
        kl = (xlogy(chunk, chunk) - xlogy(chunk, marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


# Above this many kernel entries for both sets together, kernels are computed per subset.
KID_GRAM_LIMIT = 25_000_000


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    return k * k * k


def _unbiased_mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m = k_xx.shape[0]
    same = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(same - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and std of the unbiased MMD² with kernel (x·y/d + 1)³ over random subsets.

    Each subset draws ``subset_size`` rows (capped at the smaller set) without replacement;
    small sets reuse one kernel matrix of all rows instead of recomputing it per subset.
    """
    f1, f2 = _features_2d(features1, "features1"), _features_2d(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise MetricError(f"feature sizes differ: {f1.shape[1]} vs {f2.shape[1]}")
    n1, n2 = f1.shape[0], f2.shape[0]
    size = min(subset_size, n1, n2)
    if size < 2 or subsets < 1:
        raise MetricError(f"KID needs subsets >= 1 of at least 2 samples, got {subsets} of {size}")
    both = np.concatenate([f1, f2])
    gram = _polynomial_kernel(both, both) if (n1 + n2) ** 2 <= KID_GRAM_LIMIT else None
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        a = rng.choice(n1, size, replace=False)
        b = rng.choice(n2, size, replace=False)
        if gram is not None:
            b = b + n1
            k_xx, k_yy, k_xy = gram[np.ix_(a, a)], gram[np.ix_(b, b)], gram[np.ix_(a, b)]
        else:
            x, y = f1[a], f2[b]
            k_xx, k_yy = _polynomial_kernel(x, x), _polynomial_kernel(y, y)
            k_xy = _polynomial_kernel(x, y)
        values[i] = _unbiased_mmd2(k_xx, k_yy, k_xy)
    return float(values.mean()), float(values.std())


def _features_2d(features: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise MetricError(f"{name} must be a non-empty (N, D) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise MetricError(f"{name} contain NaN or infinite values")
    return array
