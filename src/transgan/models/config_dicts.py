"""Model configs as plain data and back: the type tag each is saved with (checkpoints, model
folders), overrides checked field by field, and dicts for JSON, YAML and checkpoints."""

from __future__ import annotations

import dataclasses
from typing import Any

from transgan.errors import ConfigError
from transgan.models.configs import (
    CNNDiscriminatorConfig,
    CNNGeneratorConfig,
    DiscriminatorConfig,
    GeneratorConfig,
)

# The type tag each config is saved with (checkpoints, model folders) -> its class.
CONFIG_TYPES: dict[str, type] = {
    "transformer-g": GeneratorConfig,
    "cnn-g": CNNGeneratorConfig,
    "transformer-d": DiscriminatorConfig,
    "cnn-d": CNNDiscriminatorConfig,
}
CONFIG_TAGS = {cls: tag for tag, cls in CONFIG_TYPES.items()}


def apply_overrides(cfg: Any, overrides: dict[str, Any], what: str) -> Any:
    """A copy of dataclass ``cfg`` with ``overrides``; unknown keys give a one-line ConfigError.

    ``attention`` is accepted for every model and ignored by the CNN baselines.
    """
    names = {f.name for f in dataclasses.fields(cfg)}
    overrides = {k: v for k, v in overrides.items() if k in names or k != "attention"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(
            f"unknown {what} option '{unknown[0]}'; valid: {', '.join(sorted(names))}"
        )
    for name, value in overrides.items():
        _check_type(name, value, getattr(cfg, name), what)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    try:
        return dataclasses.replace(cfg, **overrides)
    except TypeError as exc:
        raise ConfigError(f"bad {what} option: {exc}") from None


# Config fields that hold a list of strings (every other tuple field holds integers).
_TEXT_LISTS = ("class_names",)


def _check_type(name: str, value: Any, default: Any, what: str) -> None:
    """ConfigError unless ``value`` has the type of the field's ``default``."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int | float):
        allowed = int if isinstance(default, int) else int | float
        ok = isinstance(value, allowed) and not isinstance(value, bool)
    elif name in _TEXT_LISTS:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = ("a list of strings" if name in _TEXT_LISTS else
                "a list of integers" if isinstance(default, tuple) else type(default).__name__)
        raise ConfigError(f"bad {what} option {name}={value!r}: expected {kind}, "
                          f"like the default {default!r}")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict with a ``type`` tag, suitable for JSON, YAML and checkpoints; ``class_names``
    only where the classes have names, so configs of other models read as they always have."""
    data = dataclasses.asdict(cfg)
    if "depths" in data:
        data["depths"] = list(data["depths"])
    if "class_names" in data:
        names = data.pop("class_names")
        if names:
            data["class_names"] = list(names)
    return {"type": CONFIG_TAGS[type(cfg)], **data}


def config_from_dict(data: dict[str, Any]) -> Any:
    """Inverse of :func:`config_to_dict`; ConfigError on unknown types or fields."""
    data = dict(data)
    type_name = data.pop("type", None)
    if type_name not in CONFIG_TYPES:
        raise ConfigError(f"unknown model config type '{type_name}'")
    return apply_overrides(CONFIG_TYPES[type_name](), data, type_name)
