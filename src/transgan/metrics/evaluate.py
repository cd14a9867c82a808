"""Evaluate a generator: FID, IS and KID (Inception) and their digits-classifier versions.

Protocol: ``num`` samples from seeded latents, quantised to uint8 by rounding, features in
batches from torch-fidelity's feature extractors (its registry holds Inception and the digits
classifier), compared with every image of a reference set (quantised the same way) whose
features are computed once and kept in torch-fidelity's cache under a name made of their
content. Everything that can fail (metric names, reference, weights) is checked before
sampling starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.metric_fid import fid_features_to_statistics
from torch_fidelity.utils import (
    cache_lookup_group_recompute_all_on_any_miss,
    cache_lookup_one_recompute_on_miss,
)
from tqdm import tqdm

from transgan.data import DataError, build_dataset, is_digits_spec
from transgan.sampling import generate, latents, to_uint8

from .digits import DIGITS_FEATURES, DIGITS_NAME, DIGITS_RESIZE, cache_root, digits_extractor
from .frechet import (
    MetricError,
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)
from .inception import (
    INCEPTION_DIM,
    INCEPTION_LOGITS,
    INCEPTION_NAME,
    INCEPTION_POOL,
    INCEPTION_RESIZE,
    inception_extractor,
    resolve_inception_weights,
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
REFERENCES_HELP = (
    "cifar10-train | cifar10-test | stl10-unlabeled | digits | digits-train | digits-test "
    "| cifar10 | stl10 | stl10-train | folder:PATH | zip:PATH | STATS.npz"
)
IS_SPLITS = 10
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
QUANTIZATION = "uint8, round((x + 1) * 127.5)"
# Images hashed at each end of a reference set for its cache key.
FINGERPRINT_IMAGES = 16
STATS_VERSION = 2


@dataclass(frozen=True)
class Extractor:
    """A torch-fidelity feature extractor and what the protocol records about it."""

    network: FeatureExtractorBase
    name: str
    weights_sha256: str
    resize: str
    features_name: str  # the layer FID and KID use
    logits_name: str  # the layer IS uses
    feature_dim: int
    rgb_only: bool  # gray images are repeated to 3 channels first
    device: torch.device

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 (B, C, H, W) -> (features (B, D), logits (B, K)) on the CPU."""
        if self.rgb_only and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        named = self.network.convert_features_tuple_to_dict(self.network(images.to(self.device)))
        return named[self.features_name].cpu(), named[self.logits_name].cpu()


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


def _uint8_batches(dataset: Dataset, batch: int) -> Iterator[Tensor]:
    """The data set's images, quantised to uint8, ``batch`` at a time, in order."""
    for images in DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0):
        yield to_uint8(images)


def _extract(
    extractors: dict[str, Extractor],
    batches: Iterable[Tensor],
    total: int,
    desc: str,
    progress: bool,
) -> dict[str, tuple[Tensor, Tensor]]:
    """(features, logits) of all uint8 image batches, per extractor."""
    parts: dict[str, list[tuple[Tensor, Tensor]]] = {family: [] for family in extractors}
    with tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not progress) as bar:
        for images in batches:
            for family, extractor in extractors.items():
                parts[family].append(extractor(images))
            bar.update(len(images))
    return {
        family: (torch.cat([p[0] for p in got]), torch.cat([p[1] for p in got]))
        for family, got in parts.items()
    }


def _fingerprint(dataset: Dataset) -> str:
    """Hash of the length and the first and last few quantised images of a data set."""
    n = len(dataset)  # type: ignore[arg-type]
    head = set(range(min(FINGERPRINT_IMAGES, n)))
    picks = sorted(head | set(range(max(0, n - FINGERPRINT_IMAGES), n)))
    digest = hashlib.sha256(str(n).encode())
    for index in picks:
        digest.update(to_uint8(dataset[index]).numpy().tobytes())
    return digest.hexdigest()


def _load_npz_stats(path: Path, extractor: Extractor) -> ReferenceStats:
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
    except Exception as exc:  # not a zip, truncated, object arrays, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MetricError(f"cannot read reference statistics {path}: {first}") from None
    if "mu" not in content or "sigma" not in content:
        raise MetricError(f"reference statistics {path} lack 'mu' and 'sigma' arrays")
    mu, sigma = content["mu"], content["sigma"]
    if mu.ndim != 1 or sigma.shape != mu.shape * 2:
        raise MetricError(f"reference statistics {path}: mu {mu.shape} and sigma {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise MetricError(f"reference statistics {path} contain NaN or infinite values")
    made_by = str(content["feature_extractor"]) if "feature_extractor" in content else None
    if made_by is not None and made_by != extractor.name:
        raise MetricError(
            f"reference statistics {path} were made with {made_by}, not {extractor.name}"
        )
    features = content.get("features")
    known = len(features) if features is not None else 0
    size = int(content["num"]) if "num" in content else known
    return ReferenceStats(
        mu=mu.astype(np.float64),
        sigma=sigma.astype(np.float64),
        features=None if features is None else features.astype(np.float32),
        size=size,
        path=path,
    )


def reference_statistics(
    reference: Reference,
    extractor: Extractor,
    *,
    data_root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    batch: int = 100,
    progress: bool = True,
) -> ReferenceStats:
    """Statistics of all images of ``reference``, from torch-fidelity's on-disk cache when there."""
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
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in reference.label)[:40]
    # torch-fidelity's cache file names: {input}-{extractor}-features-{layer}, ...-stat-fid-{layer}.
    name = f"{slug}-{key[:16]}-{extractor.name}"
    root = (Path(cache_dir) if cache_dir is not None else cache_root()) / "reference-stats"
    cache = {"cache_root": str(root), "verbose": False}

    def extract() -> dict[str, Tensor]:
        batches = _uint8_batches(dataset, batch)
        desc = f"{reference.label} ({extractor.name})"
        got = _extract({"ref": extractor}, batches, len(dataset), desc, progress)
        features, logits = got["ref"]
        return {extractor.features_name: features, extractor.logits_name: logits}

    layer = extractor.features_name
    features = cache_lookup_group_recompute_all_on_any_miss(
        f"{name}-features-", [layer, extractor.logits_name], extract, **cache
    )[layer]
    stats = cache_lookup_one_recompute_on_miss(
        f"{name}-stat-fid-{layer}", lambda: fid_features_to_statistics(features.double()), **cache
    )
    return ReferenceStats(
        stats["mu"], stats["sigma"], features.numpy(), len(features),
        root / f"{name}-features-{layer}.pt",
    )


def _build_extractors(
    names: tuple[str, ...],
    device: str | torch.device,
    inception_weights: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
) -> dict[str, Extractor]:
    extractors: dict[str, Extractor] = {}
    device = torch.device(device)
    if any(name in INCEPTION_METRICS for name in names):
        path = resolve_inception_weights(inception_weights)
        network, sha = inception_extractor(path, device)
        extractors["inception"] = Extractor(
            network, INCEPTION_NAME, sha, INCEPTION_RESIZE, INCEPTION_POOL, INCEPTION_LOGITS,
            INCEPTION_DIM, True, device,
        )
    if any(name in DIGITS_METRICS for name in names):
        network, sha = digits_extractor(cache_dir, device)
        extractors["digits"] = Extractor(
            network, DIGITS_NAME, sha, DIGITS_RESIZE, "features", "logits", DIGITS_FEATURES, False,
            device,
        )
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
    extractors: dict[str, Extractor],
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
    z = latents(num, int(generator.latent_dim), seed, device)
    batches = (to_uint8(generate(generator, chunk, batch=batch)) for chunk in z.split(batch))
    try:
        got = _extract(extractors, batches, num, "sampling", progress)
    finally:
        generator.train(was_training)
    return (
        {family: features.numpy() for family, (features, _) in got.items()},
        {family: logits.double().numpy() for family, (_, logits) in got.items()},
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
        mean, std = inception_score(logits, splits=min(IS_SPLITS, len(logits)))
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
