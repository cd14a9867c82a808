"""Per-class digits metrics: does G draw the digit asked for, and how well is each digit drawn?

A class-conditional generator is asked for ``num`` samples of each class; the digits classifier
says which digit each sample shows (accuracy = the share that shows the requested one) and
its features give each class's digits-FID against the train images of that class. An
unconditional generator is sampled once and its samples grouped by the predicted class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transgan.errors import MetricError
from transgan.metrics.digits import DIGITS_CLASSES, digits_extractor, digits_split_uint8
from transgan.metrics.frechet import feature_statistics, frechet_distance
from transgan.sampling import generate, latents, to_uint8


@torch.no_grad()
def per_class_digits(
    generator: nn.Module, num: int = 1000, seed: int = 0, batch: int = 250,
    truncation: float | None = None,
) -> dict[str, object]:
    """{"accuracy": share of samples showing the requested class (None if unconditional),
    "classes": [{"class", "samples", "accuracy", "digits-fid", "diversity"}, ...]} against
    digits-train, from latents truncated at ``truncation`` (None: plain normal)."""
    classes = generator.num_classes
    if classes not in (0, DIGITS_CLASSES):
        raise MetricError(f"the generator has {classes} classes; digits have {DIGITS_CLASSES}")
    if num < 2:
        raise MetricError("at least 2 samples per class are needed")
    network, _ = digits_extractor()
    device = next(generator.parameters()).device
    real, real_labels = digits_split_uint8("train")
    real_features = network(real)[0].numpy()

    def features_of(labels: torch.Tensor | None, count: int, offset: int) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
        z = latents(count, generator.latent_dim, seed + offset, device, truncation)
        images = to_uint8(generate(generator, z, batch=batch, labels=labels))
        parts = [network(chunk) for chunk in images.split(500)]
        return (torch.cat([p[0] for p in parts]).numpy(),
                torch.cat([p[1] for p in parts]).argmax(1).numpy())

    rows: list[dict[str, object]] = []
    if classes:
        hits = 0
        for k in range(classes):
            labels = torch.full((num,), k, dtype=torch.long, device=device)
            features, predicted = features_of(labels, num, k)
            correct = int((predicted == k).sum())
            hits += correct
            rows.append(_row(k, features, real_features[real_labels.numpy() == k],
                             correct / num))
        return {"accuracy": hits / (num * classes), "classes": rows}
    features, predicted = features_of(None, num * DIGITS_CLASSES, 0)
    for k in range(DIGITS_CLASSES):
        rows.append(_row(k, features[predicted == k], real_features[real_labels.numpy() == k],
                         None))
    return {"accuracy": None, "classes": rows}


def _row(k: int, fake: np.ndarray, real: np.ndarray, accuracy: float | None
         ) -> dict[str, object]:
    """One class's figures; diversity = trace of the samples' feature covariance over the real
    images' (1: as varied as the real digits, near 0: one drawing whatever the latent)."""
    if len(fake) < 2:
        return {"class": k, "samples": len(fake), "accuracy": accuracy, "digits-fid": None,
                "diversity": None}
    mu_f, sigma_f = feature_statistics(fake)
    mu_r, sigma_r = feature_statistics(real)
    return {"class": k, "samples": len(fake), "accuracy": accuracy,
            "digits-fid": frechet_distance(mu_f, sigma_f, mu_r, sigma_r),
            "diversity": float(np.trace(sigma_f) / np.trace(sigma_r))}
