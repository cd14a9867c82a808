"""Paper experiments as commands: each arm x seed is an ordinary, resumable run directory.

``transgan experiment NAME`` trains every arm of a registered experiment (v1 Tables 1, 3 and 4)
and writes a report; ``transgan report DIR`` (re)writes the report of an experiment or a run.

Public names load their modules on first use; ``experiments.arms`` is free of torch.
"""

from __future__ import annotations

from transgan.lazy import lazy_attributes

# Public name -> module that defines it.
_EXPORTS = {
    "EXPERIMENTS": "transgan.experiments.arms",
    "ExperimentFailed": "transgan.errors",
    "ExperimentStopped": "transgan.errors",
    "experiment_arms": "transgan.experiments.arms",
    "run_experiment": "transgan.experiments.run",
    "run_options": "transgan.experiments.arms",
    "scaled_width": "transgan.experiments.arms",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
