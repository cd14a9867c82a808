"""The feature extractors of an evaluation, from torch-fidelity's registry, and one feature pass.

Inception ("inception-v3-compat") and the digits classifier ("transgan-digits") are both
torch-fidelity feature extractors; :class:`Extractor` adds what the protocol records of each.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_fidelity import FeatureExtractorBase

from transgan.metrics.digits import DIGITS_FEATURES, DIGITS_NAME, DIGITS_RESIZE, digits_extractor
from transgan.metrics.inception import (
    INCEPTION_DIM,
    INCEPTION_LOGITS,
    INCEPTION_NAME,
    INCEPTION_POOL,
    INCEPTION_RESIZE,
    inception_extractor,
    resolve_inception_weights,
)
from transgan.progress import Progress


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


def build_extractors(
    families: set[str] | tuple[str, ...],
    device: str | torch.device,
    inception_weights: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
) -> dict[str, Extractor]:
    """The extractors of ``families`` ("inception", "digits") on ``device``, checked."""
    extractors: dict[str, Extractor] = {}
    device = torch.device(device)
    if "inception" in families:
        path = resolve_inception_weights(inception_weights)
        network, sha = inception_extractor(path, device)
        extractors["inception"] = Extractor(
            network, INCEPTION_NAME, sha, INCEPTION_RESIZE, INCEPTION_POOL, INCEPTION_LOGITS,
            INCEPTION_DIM, True, device,
        )
    if "digits" in families:
        network, sha = digits_extractor(cache_dir, device)
        extractors["digits"] = Extractor(
            network, DIGITS_NAME, sha, DIGITS_RESIZE, "features", "logits", DIGITS_FEATURES, False,
            device,
        )
    return extractors


def extract_features(
    extractors: dict[str, Extractor],
    batches: Iterable[Tensor],
    total: int,
    desc: str,
    progress: bool,
) -> dict[str, tuple[Tensor, Tensor]]:
    """(features, logits) of all uint8 image batches, per extractor."""
    parts: dict[str, list[tuple[Tensor, Tensor]]] = {family: [] for family in extractors}
    with Progress(total, desc, "img", enabled=progress) as bar:
        for images in batches:
            for family, extractor in extractors.items():
                parts[family].append(extractor(images))
            bar.update(len(images))
    return {
        family: (torch.cat([p[0] for p in got]), torch.cat([p[1] for p in got]))
        for family, got in parts.items()
    }
