"""Paper experiments as commands: each arm x seed is an ordinary, resumable run directory.

``transgan experiment NAME`` trains every arm of a registered experiment (v1 Tables 1, 3 and 4)
and writes a report; ``transgan report DIR`` (re)writes the report of an experiment or a run.

Public names load their modules on first use; ``experiments.arms`` is free of torch.
"""

from __future__ import annotations

from transgan.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "transgan.experiments.arms": ("experiment_arms", "run_options", "scaled_width"),
    "transgan.experiments.run": ("run_experiment",),
})
