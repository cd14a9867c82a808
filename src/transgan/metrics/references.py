"""Reference sets: what a --ref names, and its features and statistics, cached by content.

Features of every image of a reference (quantised like the samples) are computed once and
kept in torch-fidelity's cache (its file names, under $TRANSGAN_CACHE/reference-stats), named
by a hash of the data spec, size, extractor weights, quantisation and a fingerprint of the
images. A .npz file of mu and sigma (and optionally features) is read as given.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torch_fidelity.metric_fid import fid_features_to_statistics
from torch_fidelity.utils import (
    cache_lookup_group_recompute_all_on_any_miss,
    cache_lookup_one_recompute_on_miss,
)

from transgan.data import build_dataset, is_digits_spec
from transgan.errors import DataError, MetricError, first_line
from transgan.metrics.defaults import REFERENCES_HELP
from transgan.metrics.digits import cache_root
from transgan.metrics.extractors import Extractor, extract_features
from transgan.sampling import to_uint8

# Named references of the standard protocol: (data spec, resolution, channels).
NAMED_REFERENCES = {
    "cifar10-train": ("cifar10", 32, 3),
    "cifar10-test": ("cifar10-test", 32, 3),
    "stl10-unlabeled": ("stl10", 48, 3),
}
COLOR_SPECS = ("cifar10", "cifar10-test", "stl10", "stl10-train")
QUANTIZATION = "uint8, round((x + 1) * 127.5)"
# Images hashed at each end of a reference set for its cache key.
FINGERPRINT_IMAGES = 16
STATS_VERSION = 2


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
        first = first_line(exc)
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
        got = extract_features({"ref": extractor}, batches, len(dataset), desc, progress)
        features, logits = got["ref"]
        return {extractor.features_name: features, extractor.logits_name: logits}

    layer = extractor.features_name

    def lookup() -> tuple[Tensor, dict[str, Tensor]]:
        features = cache_lookup_group_recompute_all_on_any_miss(
            f"{name}-features-", [layer, extractor.logits_name], extract, **cache
        )[layer]
        stats = cache_lookup_one_recompute_on_miss(
            f"{name}-stat-fid-{layer}", lambda: fid_features_to_statistics(features.double()),
            **cache,
        )
        return features, stats

    try:
        features, stats = lookup()
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        # A damaged cache file (e.g. a killed write): drop this reference's files, recompute.
        for stale in root.glob(f"{name}-*"):
            stale.unlink()
        features, stats = lookup()
    return ReferenceStats(
        stats["mu"], stats["sigma"], features.numpy(), len(features),
        root / f"{name}-features-{layer}.pt",
    )
