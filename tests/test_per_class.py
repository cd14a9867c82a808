"""Per-class digits metrics of class-conditional and unconditional generators."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from transgan.data.digits import DigitsDataset
from transgan.data.digits import load_digits_split as split
from transgan.errors import MetricError
from transgan.metrics.per_class import per_class_digits


class RealDigits(nn.Module):
    """Draws real train digits: of the requested class, or of ``fixed`` whatever is asked."""

    def __init__(self, num_classes: int, fixed: int | None = None) -> None:
        super().__init__()
        self.num_classes, self.latent_dim, self.fixed = num_classes, 4, fixed
        self.anchor = nn.Parameter(torch.zeros(()))
        self.images = DigitsDataset(16, 1, split="train").images
        self.labels = torch.from_numpy(split("train")[1])

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        wanted = labels if self.fixed is None else torch.full((len(z),), self.fixed)
        if wanted is None:
            pick = (z[:, 0].abs() * 1e4).long() % len(self.images)
            return self.images[pick]
        out = []
        for i, k in enumerate(wanted.tolist()):
            pool = self.images[self.labels == k]
            out.append(pool[int(z[i, 0].abs() * 1e4) % len(pool)])
        return torch.stack(out)


def test_a_generator_that_draws_the_asked_class_scores_near_the_classifier(
        digits_cache: Path) -> None:
    report = per_class_digits(RealDigits(10), num=60)
    assert report["accuracy"] > 0.95
    assert all(row["digits-fid"] < 5.0 for row in report["classes"])
    assert all(0.6 < row["diversity"] < 1.5 for row in report["classes"])


def test_one_drawing_per_class_has_no_diversity(digits_cache: Path) -> None:
    class Collapsed(RealDigits):
        def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
            return super().forward(torch.zeros_like(z), labels)

    report = per_class_digits(Collapsed(10), num=20)
    assert report["accuracy"] > 0.9
    assert all(row["diversity"] < 1e-6 for row in report["classes"])


def test_a_generator_that_ignores_the_class_scores_one_in_ten(digits_cache: Path) -> None:
    report = per_class_digits(RealDigits(10, fixed=3), num=60)
    assert report["accuracy"] == pytest.approx(0.1, abs=0.03)
    fids = {row["class"]: row["digits-fid"] for row in report["classes"]}
    assert fids[3] < 5.0 and min(v for k, v in fids.items() if k != 3) > 20.0


def test_unconditional_samples_are_grouped_by_the_predicted_class(digits_cache: Path) -> None:
    report = per_class_digits(RealDigits(0), num=40)
    assert report["accuracy"] is None
    assert sum(row["samples"] for row in report["classes"]) == 400
    assert all(row["samples"] > 10 for row in report["classes"])


def test_other_class_counts_are_refused(digits_cache: Path) -> None:
    with pytest.raises(MetricError, match="10"):
        per_class_digits(RealDigits(7), num=10)
