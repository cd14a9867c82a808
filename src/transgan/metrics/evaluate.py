"""Evaluate a generator: FID, IS and KID (Inception) and their digits-classifier versions.

Protocol: ``num`` samples from seeded latents, quantised to uint8 by rounding, features in
batches, compared with statistics of every image of a reference set (quantised the same way),
which are computed once and cached on disk keyed by their content. Everything that can fail
(metric names, reference, weights) is checked before sampling starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from transgan.data import DataError, build_dataset, is_digits_spec
from transgan.sampling import generate, latents, to_uint8

from .defaults import REFERENCES_HELP
from .frechet import (
    MetricError,
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)

INCEPTION_METRICS = ("fid", "is", "kid")
DIGITS_METRICS = ("digits-fid", "digits-is", "digits-kid")
METRICS = INCEPTION_METRICS + DIGITS_METRICS
# Named references of the standard protocol: (data spec, resolution, channels).
NAMED_REFERENCES = {
    "cifar10-train": ("cifar10", 32, 3),
    "cifar10-test": ("cifar10-test", 32, 3),
    "stl10-unlabeled": ("stl10", 48, 3),
}
COLOR_SPECS = ("cifar10", "cifar10-test", "stl10", "stl10-train")
IS_SPLITS = 10
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
QUANTIZATION = "uint8, round((x + 1) * 127.5)"
# Images hashed at each end of a reference set for its cache key.
FINGERPRINT_IMAGES = 16
STATS_VERSION = 1


class FeatureExtractor(Protocol):
    """What the pipeline needs of a feature extractor (Inception or digits)."""

    name: str
    resize: str
    features_name: str
    feature_dim: int
    weights_sha256: str

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 (B, C, H, W) -> (features (B, D), logits (B, K)) float32 on the CPU."""
        ...


@dataclass(frozen=True)
class Reference:
    """A resolved reference: a data spec read at a resolution, or a statistics file."""

    label: str
    spec: str | None
    npz: Path | None
    resolution: int
    channels: int


@dataclass
class ReferenceStats:
    """Statistics of a reference under one feature extractor (features kept for KID)."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None
    size: int
    path: Path | None


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """Metric names from "fid,is" or a sequence; unknown or no names raise MetricError."""
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = []
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        if name not in METRICS:
            raise MetricError(f"unknown metric {item!r}; choose from {', '.join(METRICS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise MetricError(f"no metrics given; choose from {', '.join(METRICS)}")
    return tuple(names)


def resolve_reference(ref: str, resolution: int, channels: int) -> Reference:
    """What ``ref`` names; data specs other than the named ones are read at the generator's size."""
    text = str(ref).strip()
    name = text.lower()
    if name in NAMED_REFERENCES:
        spec, res, ch = NAMED_REFERENCES[name]
        return Reference(name, spec, None, res, ch)
    if name.endswith(".npz"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise MetricError(f"reference statistics file not found: {path}")
        return Reference(text, None, path, resolution, channels)
    kind, _, path_part = text.partition(":")
    if kind.lower() in ("folder", "zip") and path_part:
        return Reference(text, text, None, resolution, channels)
    if is_digits_spec(name):
        return Reference(name, name, None, resolution, 1)
    if name in COLOR_SPECS:
        return Reference(name, name, None, resolution, 3)
    raise MetricError(f"unknown reference {ref!r}; expected one of: {REFERENCES_HELP}")


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _uint8_batches(dataset: Dataset, batch: int, progress: bool, desc: str) -> Iterator[Tensor]:
    """The data set's images, quantised to uint8, ``batch`` at a time, in order."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    for images in tqdm(loader, desc=desc, unit="batch", file=sys.stderr, disable=not progress):
        yield to_uint8(images)


def _fingerprint(dataset: Dataset) -> str:
    """Hash of the length and the first and last few quantised images of a data set."""
    n = len(dataset)  # type: ignore[arg-type]
    head = set(range(min(FINGERPRINT_IMAGES, n)))
    picks = sorted(head | set(range(max(0, n - FINGERPRINT_IMAGES), n)))
    digest = hashlib.sha256(str(n).encode())
    for index in picks:
        digest.update(to_uint8(dataset[index]).numpy().tobytes())
    return digest.hexdigest()


def _load_npz_stats(path: Path, extractor: FeatureExtractor) -> ReferenceStats:
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
    except Exception as exc:  # not a zip, truncated, object arrays, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MetricError(f"cannot read reference statistics {path}: {first}") from None
    if "mu" not in content or "sigma" not in content:
        raise MetricError(f"reference statistics {path} lack 'mu' and 'sigma' arrays")
    made_by = str(content["feature_extractor"]) if "feature_extractor" in content else None
    if made_by is not None and made_by != extractor.name:
        raise MetricError(
            f"reference statistics {path} were made with {made_by}, not {extractor.name}"
        )
    features = content.get("features")
    known = len(features) if features is not None else 0
    size = int(content["num"]) if "num" in content else known
    return ReferenceStats(
        mu=content["mu"].astype(np.float64),
        sigma=content["sigma"].astype(np.float64),
        features=None if features is None else features.astype(np.float32),
        size=size,
        path=path,
    )


def _save_npz_stats(
    path: Path, stats: ReferenceStats, extractor: FeatureExtractor, ref: str
) -> None:
    arrays: dict[str, np.ndarray] = {
        "mu": stats.mu,
        "sigma": stats.sigma,
        "num": np.int64(stats.size),
        "feature_extractor": np.str_(extractor.name),
        "weights_sha256": np.str_(extractor.weights_sha256),
        "reference": np.str_(ref),
    }
    if stats.features is not None:
        arrays["features"] = stats.features
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def reference_statistics(
    reference: Reference,
    extractor: FeatureExtractor,
    *,
    data_root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    batch: int = 100,
    progress: bool = True,
) -> ReferenceStats:
    """Statistics of all images of ``reference``, from the on-disk cache when present."""
    if reference.npz is not None:
        return _load_npz_stats(reference.npz, extractor)
    assert reference.spec is not None
    try:
        dataset = build_dataset(
            reference.spec, reference.resolution, reference.channels, root=data_root
        )
    except DataError as exc:
        raise MetricError(f"reference {reference.label}: {exc}") from None
    if len(dataset) < 2:  # type: ignore[arg-type]
        raise MetricError(f"reference {reference.label} has fewer than 2 images")
    key = _sha256_json(
        {
            "version": STATS_VERSION,
            "spec": reference.spec,
            "resolution": reference.resolution,
            "channels": reference.channels,
            "extractor": extractor.name,
            "weights": extractor.weights_sha256,
            "quantization": QUANTIZATION,
            "fingerprint": _fingerprint(dataset),
        }
    )
    root = Path(cache_dir) if cache_dir is not None else _default_cache()
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in reference.label)[:40]
    path = root / "reference-stats" / f"{extractor.name}-{slug}-{key[:16]}.npz"
    if path.is_file():
        try:
            return _load_npz_stats(path, extractor)
        except MetricError:
            pass  # a damaged cache file is recomputed
    parts = [
        extractor(images)[0]
        for images in _uint8_batches(
            dataset, batch, progress, f"{reference.label} ({extractor.name})"
        )
    ]
    features = torch.cat(parts).numpy().astype(np.float32)
    mu, sigma = feature_statistics(features)
    stats = ReferenceStats(mu, sigma, features, len(features), path)
    _save_npz_stats(path, stats, extractor, reference.label)
    return stats


def _default_cache() -> Path:
    from .digits import cache_root

    return cache_root()


def _build_extractors(
    names: tuple[str, ...],
    device: str | torch.device,
    inception_weights: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
) -> dict[str, FeatureExtractor]:
    extractors: dict[str, FeatureExtractor] = {}
    if any(name in INCEPTION_METRICS for name in names):
        from .inception import InceptionExtractor, resolve_inception_weights

        extractors["inception"] = InceptionExtractor(
            resolve_inception_weights(inception_weights), device
        )
    if any(name in DIGITS_METRICS for name in names):
        from .digits import DigitsExtractor

        extractors["digits"] = DigitsExtractor(cache_dir, device)
    return extractors


def _family(metric: str) -> tuple[str, str]:
    """("inception" | "digits", base metric name "fid" | "is" | "kid")."""
    if metric.startswith("digits-"):
        return "digits", metric.removeprefix("digits-")
    return "inception", metric


def evaluate_generator(
    generator: nn.Module,
    *,
    metrics: str | Sequence[str],
    num: int,
    ref: str,
    seed: int = 0,
    batch: int = 100,
    device: str | torch.device = "cpu",
    inception_weights: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """{"metrics": {...}, "protocol": {...}} for ``num`` samples of ``generator`` (on ``device``).

    Metric values: "fid", "is" (+ "is_std"), "kid" (+ "kid_std") and the "digits-" versions.
    """
    names = parse_metrics(metrics)
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise MetricError(f"the number of samples must be an integer >= 2, got {num!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise MetricError(f"batch must be a positive integer, got {batch!r}")
    reference = resolve_reference(ref, int(generator.img_size), int(generator.channels))
    extractors = _build_extractors(names, device, inception_weights, cache_dir)
    needs_ref = {_family(m)[0] for m in names if _family(m)[1] in ("fid", "kid")}
    if reference.npz is not None and len(needs_ref) > 1:
        raise MetricError("a .npz reference holds one feature extractor's statistics; "
                          "evaluate Inception and digits metrics separately")
    ref_stats: dict[str, ReferenceStats] = {}
    for family in sorted(needs_ref):
        ref_stats[family] = reference_statistics(
            reference, extractors[family], data_root=data_root, cache_dir=cache_dir,
            batch=batch, progress=progress,
        )
        dim = ref_stats[family].mu.shape
        if dim != (extractors[family].feature_dim,):
            raise MetricError(
                f"reference {reference.label} has {dim} features, "
                f"{extractors[family].name} gives {extractors[family].feature_dim}"
            )
        kid = "kid" if family == "inception" else "digits-kid"
        if kid in names and ref_stats[family].features is None:
            raise MetricError(
                f"{kid} needs reference features; {reference.label} has only mu and sigma"
            )

    features, logits = _sample_features(
        generator, extractors, num=num, seed=seed, batch=batch, device=device, progress=progress
    )
    values: dict[str, float] = {}
    for metric in names:
        family, base = _family(metric)
        values.update(
            _compute(metric, base, features[family], logits[family], ref_stats.get(family), seed)
        )
    used = [extractors[f] for f in ("inception", "digits") if f in extractors]
    splits = min(IS_SPLITS, num)
    return {
        "metrics": values,
        "protocol": {
            "num_samples": num,
            "reference": reference.label,
            "reference_size": max((s.size for s in ref_stats.values()), default=None),
            "seed": seed,
            "quantization": QUANTIZATION,
            "feature_extractor": ",".join(e.name for e in used),
            "weights_sha256": ",".join(e.weights_sha256[:16] for e in used),
            "resize": "; ".join(f"{e.name}: {e.resize}" for e in used),
            "splits": splits,
            "kid_subsets": KID_SUBSETS,
            "kid_subset_size": min(
                [KID_SUBSET_SIZE, num, *(s.size for s in ref_stats.values() if s.size)]
            ),
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
    generator: nn.Module,
    extractors: dict[str, FeatureExtractor],
    *,
    num: int,
    seed: int,
    batch: int,
    device: str | torch.device,
    progress: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features and logits of ``num`` seeded, uint8-quantised samples, per extractor."""
    was_training = generator.training
    generator.eval()
    feats: dict[str, list[Tensor]] = {family: [] for family in extractors}
    logits: dict[str, list[Tensor]] = {family: [] for family in extractors}
    z = latents(num, int(generator.latent_dim), seed, device)
    try:
        with tqdm(total=num, desc="sampling", unit="img", file=sys.stderr,
                  disable=not progress) as bar:
            for chunk in z.split(batch):
                images = to_uint8(generate(generator, chunk, batch=batch))
                for family, extractor in extractors.items():
                    f, lg = extractor(images)
                    feats[family].append(f)
                    logits[family].append(lg)
                bar.update(len(chunk))
    finally:
        generator.train(was_training)
    return (
        {k: torch.cat(v).numpy() for k, v in feats.items()},
        {k: torch.cat(v).double().numpy() for k, v in logits.items()},
    )


def _compute(
    metric: str,
    base: str,
    features: np.ndarray,
    logits: np.ndarray,
    ref: ReferenceStats | None,
    seed: int,
) -> dict[str, float]:
    if base == "is":
        probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        mean, std = inception_score(probs, splits=min(IS_SPLITS, len(probs)))
        return {metric: mean, f"{metric}_std": std}
    assert ref is not None
    if base == "fid":
        # Both ways give the same number; the feature form is much cheaper for few samples.
        if ref.features is not None and max(len(features), len(ref.features)) <= features.shape[1]:
            return {metric: frechet_distance_features(features, ref.features)}
        mu, sigma = feature_statistics(features)
        return {metric: frechet_distance(mu, sigma, ref.mu, ref.sigma)}
    assert ref.features is not None
    mean, std = kernel_inception_distance(
        features, ref.features, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=seed
    )
    return {metric: mean, f"{metric}_std": std}
