"""The metrics ``transgan eval --metrics`` and ``--eval-metrics`` take, each declared once and
free of torch: whose features it compares (its family) and how (its kind)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from transgan.errors import MetricError


@dataclass(frozen=True)
class Family:
    """Features that metrics compare: torch-fidelity's name of their extractor, and the
    prefix of those metrics' names."""

    extractor: str
    prefix: str


# The families by name, as metrics.extractors builds their extractors.
FAMILIES: dict[str, Family] = {
    "inception": Family("inception-v3-compat", ""),
    "digits": Family("transgan-digits", "digits-"),
}
# How features are compared: Frechet distance, Inception score, kernel distance (KID), and
# improved precision and recall (prc). Every family has every kind.
KINDS: tuple[str, ...] = ("fid", "is", "kid", "prc")


@dataclass(frozen=True)
class Metric:
    """One metric: the features of ``family`` compared by ``kind``."""

    family: str
    kind: str

    @property
    def name(self) -> str:
        return FAMILIES[self.family].prefix + self.kind

    @property
    def extractor(self) -> str:
        """torch-fidelity's name of the extractor whose features it compares."""
        return FAMILIES[self.family].extractor

    @property
    def values(self) -> tuple[str, ...]:
        """The values it reports (besides "_std" ones): prc gives precision and recall, every
        other metric its own name."""
        if self.kind == "prc":
            prefix = FAMILIES[self.family].prefix
            return (f"{prefix}precision", f"{prefix}recall")
        return (self.name,)

    @property
    def needs_reference(self) -> bool:
        """Whether it compares with a reference set (IS scores the samples alone)."""
        return self.kind != "is"

    @property
    def needs_reference_features(self) -> bool:
        """Whether it needs the reference's features, not just their mean and covariance."""
        return self.kind in ("kid", "prc")


METRICS: dict[str, Metric] = {metric.name: metric for metric in (
    Metric(family, kind) for family in FAMILIES for kind in KINDS)}


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


def families(names: Iterable[str]) -> set[str]:
    """The feature families of the metrics named."""
    return {METRICS[name].family for name in names}
