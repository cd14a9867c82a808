"""Evaluation defaults: sample counts, metrics and the reference set a run is compared with.

One home for them: ``transgan eval``, the trainer's options and experiments all read it.
"""

from __future__ import annotations

from typing import Any

from transgan.data.specs import is_digits_spec
from transgan.errors import ConfigError
from transgan.models.presets import get_preset

# Samples of a standard FID/IS/KID evaluation (`transgan eval`).
DEFAULT_NUM = 50_000
# Samples when only digits metrics are asked for.
DEFAULT_NUM_DIGITS = 10_000
# Samples per class of `transgan eval --per-class` when --num is not given.
PER_CLASS_NUM = 1_000
# Samples of each periodic evaluation during training (`--eval-num`).
TRAINING_NUM = 10_000
# Samples of each periodic evaluation of a digits experiment run (CPU budgets).
TRAINING_NUM_DIGITS = 2_000

REFERENCES_HELP = (
    "cifar10-train | cifar10-test | stl10-unlabeled | digits | digits-train | digits-test "
    "| cifar10 | stl10 | stl10-train | folder:PATH | zip:PATH | STATS.npz"
)
# The standard reference for runs trained on these data specs.
DEFAULT_REFERENCES = {
    "digits": "digits-train",
    "digits-train": "digits-train",
    "digits-test": "digits-train",
    "cifar10": "cifar10-train",
    "cifar10-test": "cifar10-test",
    "stl10": "stl10-unlabeled",
}


def run_data(checkpoint: dict[str, Any]) -> str | None:
    """The data spec a run trained on: its option, else its preset's default data."""
    options = checkpoint.get("options") or {}
    data = options.get("data")
    if data:
        return str(data)
    preset = options.get("preset")
    if not preset:
        return None
    try:
        return get_preset(str(preset)).data
    except ConfigError:
        return None


def default_metrics(data: str | None) -> tuple[str, ...]:
    """digits-fid and digits-is for runs on the digits, else FID and IS."""
    is_digits = data is not None and is_digits_spec(data)
    return ("digits-fid", "digits-is") if is_digits else ("fid", "is")


def default_reference(data: str) -> str:
    """The standard reference set for a run trained on ``data``."""
    return DEFAULT_REFERENCES.get(data.strip().lower(), data)


def default_num(only_digits: bool) -> int:
    """Samples of an evaluation: fewer when every metric is a digits metric."""
    return DEFAULT_NUM_DIGITS if only_digits else DEFAULT_NUM
