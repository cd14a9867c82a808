"""Build a data set from its spec string."""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from transgan.data.base import check_image_args
from transgan.data.specs import DATA_SPECS_HELP, NAMED_SETS, PATH_SETS
from transgan.errors import DataError
from transgan.lazy import load


def build_dataset(
    spec: str,
    resolution: int,
    channels: int,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """Dataset whose items are float32 tensors (channels, resolution, resolution) in [-1, 1].

    `root` holds downloadable sets (cifar10, stl10); folder:/zip: specs carry their own path.
    A zip: archive made by ``transgan prepare`` is decoded into memory once.
    """
    check_image_args(resolution, channels)
    text = spec.strip()
    kind, _, path = text.partition(":")
    if path and kind.lower() in PATH_SETS:
        return load(PATH_SETS[kind.lower()])(path, resolution, channels)
    named = NAMED_SETS.get(text.lower())
    if named is None:
        raise DataError(f"unknown data spec {spec!r}; expected one of: {DATA_SPECS_HELP}")
    where = {"root": root, "download": download} if named.downloads else {}
    return load(named.loader)(resolution, channels, **dict(named.keywords), **where)
