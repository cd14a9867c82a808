"""Build a data set from its spec string."""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from transgan.data.base import check_image_args
from transgan.data.digits import DigitsDataset
from transgan.data.images import load_folder
from transgan.data.specs import CIFAR10_SPECS, DATA_SPECS_HELP, DIGITS_SPECS, STL10_SPECS
from transgan.data.torchvision_sets import load_cifar10, load_stl10
from transgan.data.zipped import open_zip
from transgan.errors import DataError


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
    if path and kind.lower() in ("folder", "zip"):
        loader = load_folder if kind.lower() == "folder" else open_zip
        return loader(path, resolution, channels)
    name = text.lower()
    if name in DIGITS_SPECS:
        return DigitsDataset(resolution, channels, split=DIGITS_SPECS[name])
    if name in CIFAR10_SPECS:
        return load_cifar10(
            resolution,
            channels,
            root=root,
            train=CIFAR10_SPECS[name],
            download=download,
        )
    if name in STL10_SPECS:
        return load_stl10(
            resolution,
            channels,
            root=root,
            split=STL10_SPECS[name],
            download=download,
        )
    raise DataError(f"unknown data spec {spec!r}; expected one of: {DATA_SPECS_HELP}")
