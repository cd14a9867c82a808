"""Image data sets for TransGAN, chosen by a spec string, and their seeded loaders.

Items are unlabelled float32 tensors (channels, resolution, resolution) in [-1, 1]; sets with
classes (digits, cifar10, stl10-train, folders of class subfolders, prepared zips) pair them
with labels through ``dataset.labelled()``.
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from .base import DataError, ImageDataset, LabelledDataset, check_image_args, colour_name
from .digits import DigitsDataset, load_digits_split
from .images import IMAGE_EXTENSIONS, load_folder
from .loader import default_num_workers
from .torchvision_sets import default_data_root, load_cifar10, load_stl10
from .zipped import PreparedZipDataset, open_zip

__all__ = [
    "DATA_SPECS_HELP",
    "IMAGE_EXTENSIONS",
    "DataError",
    "ImageDataset",
    "LabelledDataset",
    "PreparedZipDataset",
    "build_dataset",
    "colour_name",
    "default_data_root",
    "default_num_workers",
    "is_digits_spec",
    "load_digits_split",
    "may_download",
]

DATA_SPECS_HELP = (
    "digits | digits-train | digits-test | cifar10 | cifar10-test | stl10 | stl10-train "
    "| folder:PATH | zip:PATH"
)

DIGITS_SPECS = {"digits": "all", "digits-train": "train", "digits-test": "test"}


def is_digits_spec(spec: str) -> bool:
    """Whether ``spec`` names (a split of) the embedded digits data set."""
    return spec.strip().lower() in DIGITS_SPECS
CIFAR10_SPECS = {"cifar10": True, "cifar10-test": False}
STL10_SPECS = {"stl10": "unlabeled", "stl10-train": "train"}


def may_download(spec: str) -> bool:
    """Whether building ``spec`` may download it (the torchvision sets)."""
    return spec.strip().lower() in {**CIFAR10_SPECS, **STL10_SPECS}


def build_dataset(
    spec: str,
    resolution: int,
    channels: int,
    *,
    root: str | os.PathLike[str] | None = None,
    hflip: bool = False,
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
        return loader(path, resolution, channels, hflip=hflip)
    name = text.lower()
    if name in DIGITS_SPECS:
        return DigitsDataset(resolution, channels, split=DIGITS_SPECS[name], hflip=hflip)
    if name in CIFAR10_SPECS:
        return load_cifar10(
            resolution,
            channels,
            root=root,
            train=CIFAR10_SPECS[name],
            hflip=hflip,
            download=download,
        )
    if name in STL10_SPECS:
        return load_stl10(
            resolution,
            channels,
            root=root,
            split=STL10_SPECS[name],
            hflip=hflip,
            download=download,
        )
    raise DataError(f"unknown data spec {spec!r}; expected one of: {DATA_SPECS_HELP}")
