"""Training options in YAML files: read for ``--config``, written as a run's options.yaml
(flat option names, as on the command line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from transgan.errors import OptionsError, first_line
from transgan.train.options import TrainOptions


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Options from a YAML mapping file; OptionsError for unreadable or malformed files."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise OptionsError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = first_line(exc)
        raise OptionsError(f"config file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"config file {path} must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def save_yaml(options: TrainOptions, path: Path) -> None:
    """Write the options as YAML (readable, and loadable with ``--config``)."""
    path.write_text(yaml.safe_dump(options.to_dict(), sort_keys=False))
