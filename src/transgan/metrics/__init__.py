"""Sample-quality evaluation: FID, IS, KID and precision/recall by the standard protocol, plus
digits metrics.

Submodules load on first use, so importing the package (e.g. for the CLI parser) is cheap.
"""

from __future__ import annotations

from transgan.lazy import lazy_attributes

# Public name -> submodule that defines it.
_EXPORTS = {
    "MetricError": "errors",
    "feature_statistics": "frechet",
    "frechet_distance": "frechet",
    "frechet_distance_features": "frechet",
    "inception_score": "frechet",
    "kernel_inception_distance": "frechet",
    "inception_extractor": "inception",
    "Extractor": "extractors",
    "build_extractors": "extractors",
    "resolve_inception_weights": "inception",
    "inception_cache_dir": "inception",
    "digits_extractor": "digits",
    "load_digits_classifier": "digits",
    "digits_real_floor": "digits",
    "cache_root": "digits",
    "METRICS": "defaults",
    "evaluate_generator": "evaluate",
    "evaluate_truncations": "evaluate",
    "reference_statistics": "references",
    "resolve_reference": "references",
    "DEFAULT_NUM": "defaults",
    "default_metrics": "defaults",
    "default_reference": "defaults",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(
    __name__, {name: "transgan.errors" if module == "errors" else f"{__name__}.{module}"
               for name, module in _EXPORTS.items()})
