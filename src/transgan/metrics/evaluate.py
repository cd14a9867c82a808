"""Evaluate a generator: FID, IS, KID and precision/recall (Inception) and their digits versions.

Protocol: ``num`` samples from seeded latents (plain, or truncated at one or more PSI),
quantised to uint8 by rounding, features in
batches from torch-fidelity's feature extractors (its registry holds Inception and the digits
classifier), compared with every image of a reference set (quantised the same way) whose
features are computed once and kept in torch-fidelity's cache under a name made of their
content. Everything that can fail (metric names, reference, weights) is checked before
sampling starts; with several truncations the reference is read once for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import torch
from torch import nn

from transgan.errors import ConfigError, MetricError
from transgan.metrics.extractors import Extractor, build_extractors, extract_features
from transgan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)
from transgan.metrics.precision_recall import PRC_NEIGHBOURS, Manifold, manifold, precision_recall
from transgan.metrics.references import (
    QUANTIZATION,
    Reference,
    ReferenceStats,
    reference_statistics,
    resolve_reference,
)
from transgan.metrics.registry import FAMILIES, METRICS, Metric, families, parse_metrics
from transgan.sampling import check_truncation, class_labels, generate, latents, to_uint8

__all__ = ["MetricOptions", "evaluate_generator", "evaluate_truncations"]

IS_SPLITS = 10
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class MetricOptions:
    """What an evaluation measures and how: metrics, samples, reference, seed and where it
    runs; checked when made (metric names are normalised), before anything is loaded."""

    metrics: tuple[str, ...]
    num: int
    ref: str
    seed: int = 0
    batch: int = 100
    device: str | torch.device = "cpu"
    inception_weights: str | os.PathLike[str] | None = None
    data_root: str | os.PathLike[str] | None = None
    cache_dir: str | os.PathLike[str] | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))
        num, batch = self.num, self.batch
        if isinstance(num, bool) or not isinstance(num, int) or num < 2:
            raise MetricError(f"the number of samples must be an integer >= 2, got {num!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise MetricError(f"batch must be a positive integer, got {batch!r}")
        if any(METRICS[m].kind == "prc" for m in self.metrics) and num <= PRC_NEIGHBOURS:
            raise MetricError(f"precision and recall need more than {PRC_NEIGHBOURS} samples")


@dataclass(frozen=True)
class _Setup:
    """What every truncation of one evaluation shares: extractors and reference."""

    reference: Reference
    extractors: dict[str, Extractor]
    ref_stats: dict[str, ReferenceStats]
    real_manifolds: dict[str, Manifold]


def evaluate_generator(generator: nn.Module, options: MetricOptions,
                       truncation: float | None = None) -> dict[str, Any]:
    """{"metrics": {...}, "protocol": {...}} of ``generator`` by ``options``, from latents
    truncated at ``truncation`` (None: plain normal).

    Metric values: "fid", "is" (+ "is_std"), "kid" (+ "kid_std"), "precision" and "recall"
    (metric "prc") and the "digits-" versions.
    """
    return evaluate_truncations(generator, options, [truncation])[0]


def evaluate_truncations(generator: nn.Module, options: MetricOptions,
                         truncations: Sequence[float | None]) -> list[dict[str, Any]]:
    """:func:`evaluate_generator`'s result for each truncation in turn, from the same seed,
    extractors and reference statistics (read once)."""
    if not truncations:
        raise MetricError("no truncation given")
    for psi in truncations:
        if psi is not None:
            try:
                check_truncation(psi)
            except ConfigError as exc:
                raise MetricError(str(exc)) from None
    setup = _prepare(generator, options)
    return [_evaluate(generator, setup, options, psi) for psi in truncations]


def _prepare(generator: nn.Module, options: MetricOptions) -> _Setup:
    """Load what every truncation shares, checked before any sampling."""
    chosen = [METRICS[name] for name in options.metrics]
    reference = resolve_reference(options.ref, int(generator.img_size), int(generator.channels))
    extractors = build_extractors(families(options.metrics), options.device,
                                  options.inception_weights, options.cache_dir)
    needs_ref = {m.family for m in chosen if m.needs_reference}
    if reference.npz is not None and len(needs_ref) > 1:
        raise MetricError("a .npz reference holds one feature extractor's statistics; "
                          "evaluate Inception and digits metrics separately")
    ref_stats: dict[str, ReferenceStats] = {}
    for family in sorted(needs_ref):
        ref_stats[family] = reference_statistics(
            reference, extractors[family], data_root=options.data_root,
            cache_dir=options.cache_dir, batch=options.batch, progress=options.progress,
        )
        dim = ref_stats[family].mu.shape
        if dim != (extractors[family].feature_dim,):
            raise MetricError(
                f"reference {reference.label} has {dim} features, "
                f"{extractors[family].name} gives {extractors[family].feature_dim}"
            )
    for metric in METRICS.values():
        if (metric in chosen and metric.needs_reference_features
                and ref_stats[metric.family].features is None):
            raise MetricError(f"{metric.name} needs reference features; "
                              f"{reference.label} has only mu and sigma")
    real_manifolds = {m.family: manifold(ref_stats[m.family].features, device=options.device)
                      for m in chosen if m.kind == "prc"}
    return _Setup(reference, extractors, ref_stats, real_manifolds)


def _evaluate(generator: nn.Module, setup: _Setup, options: MetricOptions,
              truncation: float | None) -> dict[str, Any]:
    """The metrics and protocol of one truncation."""
    extractors, ref_stats, num = setup.extractors, setup.ref_stats, options.num
    features, logits = _sample_features(generator, extractors, options, truncation)
    values: dict[str, float] = {}
    for name in options.metrics:
        metric = METRICS[name]
        values.update(_compute(
            metric, features[metric.family], logits[metric.family],
            ref_stats.get(metric.family), setup.real_manifolds.get(metric.family), options.seed,
        ))
    used = [extractors[f] for f in FAMILIES if f in extractors]
    splits = min(IS_SPLITS, num)
    return {
        "metrics": values,
        "protocol": {
            "num_samples": num,
            "reference": setup.reference.label,
            "reference_size": max((s.size for s in ref_stats.values()), default=None),
            "seed": options.seed,
            "truncation": truncation,
            "quantization": QUANTIZATION,
            "feature_extractor": ",".join(e.name for e in used),
            "weights_sha256": ",".join(e.weights_sha256[:16] for e in used),
            "resize": "; ".join(f"{e.name}: {e.resize}" for e in used),
            "splits": splits,
            "kid_subsets": KID_SUBSETS,
            "kid_subset_size": min(
                [KID_SUBSET_SIZE, num, *(s.size for s in ref_stats.values() if s.size)]
            ),
            "prc_neighbours": PRC_NEIGHBOURS,
            "extractors": {
                e.name: {"weights_sha256": e.weights_sha256, "features": e.features_name,
                         "resize": e.resize}
                for e in used
            },
            "reference_stats": {
                extractors[f].name: str(s.path) if s.path else None for f, s in ref_stats.items()
            },
        },
    }


@torch.no_grad()
def _sample_features(
    generator: nn.Module, extractors: dict[str, Extractor], options: MetricOptions,
    truncation: float | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features and logits of ``num`` seeded, uint8-quantised samples, per extractor."""
    was_training = generator.training
    generator.eval()
    num, batch, device = options.num, options.batch, options.device
    z = latents(num, int(generator.latent_dim), options.seed, device, truncation)
    # A class-conditional generator draws every class in turn: equal class shares.
    labels = class_labels(num, getattr(generator, "num_classes", 0), device=device)
    label_chunks = repeat(None) if labels is None else labels.split(batch)
    batches = (to_uint8(generate(generator, z_c, batch=batch, labels=y_c))
               for z_c, y_c in zip(z.split(batch), label_chunks, strict=False))
    try:
        got = extract_features(extractors, batches, num, "sampling", options.progress)
    finally:
        generator.train(was_training)
    return (
        {family: features.numpy() for family, (features, _) in got.items()},
        {family: logits.double().numpy() for family, (_, logits) in got.items()},
    )


def _compute(
    metric: Metric,
    features: np.ndarray,
    logits: np.ndarray,
    ref: ReferenceStats | None,
    real_manifold: Manifold | None,
    seed: int,
) -> dict[str, float]:
    if metric.kind == "is":
        mean, std = inception_score(logits, splits=min(IS_SPLITS, len(logits)))
        return {metric.name: mean, f"{metric.name}_std": std}
    if metric.kind == "prc":
        assert real_manifold is not None
        precision, recall = precision_recall(features, real_manifold)
        return dict(zip(metric.values, (precision, recall), strict=True))
    assert ref is not None
    if metric.kind == "fid":
        # Both ways give the same number; the feature form is much cheaper for few samples.
        if ref.features is not None and max(len(features), len(ref.features)) <= features.shape[1]:
            return {metric.name: frechet_distance_features(features, ref.features)}
        mu, sigma = feature_statistics(features)
        return {metric.name: frechet_distance(mu, sigma, ref.mu, ref.sigma)}
    assert ref.features is not None
    mean, std = kernel_inception_distance(
        features, ref.features, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=seed
    )
    return {metric.name: mean, f"{metric.name}_std": std}
