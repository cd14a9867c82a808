"""The fidelity-variety trade-off of the truncation trick as a PNG: each metric against PSI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from transgan.metrics.registry import METRICS

PANEL_INCHES = 3.6


def plot_truncation(
    metrics: Sequence[str], results: Sequence[dict[str, Any]], path: Path, title: str = ""
) -> Path:
    """One panel per metric (precision and recall share one) of the metric values of
    ``results`` (one :func:`evaluate_generator` result per truncation) against PSI; the
    untruncated result, when there, is a dashed line."""
    psis = [result["protocol"]["truncation"] for result in results]
    truncated = [(psi, result["metrics"]) for psi, result in zip(psis, results, strict=True)
                 if psi is not None]
    truncated.sort(key=lambda item: item[0])
    plain = next((result["metrics"] for psi, result in zip(psis, results, strict=True)
                  if psi is None), None)
    figure = Figure(figsize=(PANEL_INCHES * len(metrics), PANEL_INCHES + 0.4),
                    layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for index, name in enumerate(METRICS[metric].values):
            color = f"C{index}"
            if truncated:
                x = [psi for psi, _ in truncated]
                y = [values[name] for _, values in truncated]
                errors = [values.get(f"{name}_std", 0.0) for _, values in truncated]
                ax.errorbar(x, y, yerr=errors if any(errors) else None, marker="o",
                            color=color, capsize=3, label=name)
            if plain is not None:
                ax.axhline(plain[name], color=color, linestyle="--",
                           label=f"{name}, no truncation")
        ax.set_xlabel("truncation PSI")
        ax.set_ylabel(" / ".join(METRICS[metric].values))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        figure.suptitle(title, fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path
