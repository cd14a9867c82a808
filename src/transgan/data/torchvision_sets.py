"""CIFAR-10 and STL-10 read through torchvision, kept in memory as uint8 and converted per item.

Missing files are downloaded when allowed; when they cannot be had, the DataError names the
folder torchvision expects and the archive URL, so offline users can place the files by hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from transgan.data.base import ImageDataset, resize_square, rgb_to_gray, uint8_to_unit
from transgan.errors import DataError

DATA_ROOT_ENV = "TRANSGAN_DATA"
# STL-10's classes in label order, for archives without their class_names.txt.
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
                 "truck")


def default_data_root() -> Path:
    """Where downloadable data sets live: $TRANSGAN_DATA if set, else ~/.cache/transgan/data."""
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "transgan" / "data"


class ArrayImageDataset(ImageDataset):
    """Images held as a uint8 (N, 3, H, W) tensor; grey conversion and resizing happen per item."""

    def __init__(
        self, images: Tensor, resolution: int, channels: int, description: str
    ) -> None:
        super().__init__(resolution, channels)
        self.images = images
        self.description = description

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        image = uint8_to_unit(self.images[index])
        if self.channels == 1:
            image = rgb_to_gray(image)
        return resize_square(image, self.resolution)


def _resolve_root(root: str | os.PathLike[str] | None) -> Path:
    return default_data_root() if root is None else Path(root).expanduser()


def _unavailable(name: str, root: Path, folder: str, url: str, reason: str) -> DataError:
    return DataError(
        f"{name}: data set files missing or corrupted in {root / folder} ({reason}); "
        f"download {url} and extract it into {root} (or point ${DATA_ROOT_ENV} at a folder with it)"
    )


def _open(name: str, cls: Any, base: Path, download: bool, **kwargs: Any) -> Any:
    """A torchvision data set under ``base``, or a DataError saying how to get it."""
    try:
        return cls(str(base), download=download, **kwargs)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        reason = f"{type(exc).__name__}: {exc}" if download else f"download disabled: {exc}"
        raise _unavailable(name, base, cls.base_folder, cls.url, reason) from exc


def load_cifar10(
    resolution: int,
    channels: int,
    *,
    root: str | os.PathLike[str] | None = None,
    train: bool = True,
    download: bool = True,
) -> ArrayImageDataset:
    """CIFAR-10's 50000 training (or 10000 test) 32x32 images, with their 10 classes."""
    from torchvision.datasets import CIFAR10

    base = _resolve_root(root)
    source = _open("cifar10", CIFAR10, base, download, train=train)
    # torchvision keeps (N, 32, 32, 3); store channels first, owned by torch so that
    # worker processes can share it.
    images = torch.from_numpy(source.data).permute(0, 3, 1, 2).contiguous()
    name = "cifar10" if train else "cifar10-test"
    dataset = ArrayImageDataset(images, resolution, channels,
                                f"{name}: {len(images)} images")
    dataset.set_labels(list(source.targets), source.classes)
    return dataset


def load_stl10(
    resolution: int,
    channels: int,
    *,
    root: str | os.PathLike[str] | None = None,
    split: str = "unlabeled",
    download: bool = True,
) -> ArrayImageDataset:
    """STL-10's 96x96 images of one torchvision split ("unlabeled": 100000, "train": 5000,
    the latter with its 10 classes)."""
    from torchvision.datasets import STL10

    base = _resolve_root(root)
    source = _open("stl10", STL10, base, download, split=split)
    images = torch.from_numpy(source.data).contiguous()
    labels = None if split == "unlabeled" else source.labels.tolist()
    classes = list(getattr(source, "classes", STL10_CLASSES))
    del source
    name = "stl10" if split == "unlabeled" else f"stl10-{split}"
    dataset = ArrayImageDataset(images, resolution, channels,
                                f"{name}: {len(images)} images")
    if labels is None:
        dataset.unlabelled_reason = "the unlabeled split has no class labels; use stl10-train"
    else:
        dataset.set_labels(labels, classes)
    return dataset
