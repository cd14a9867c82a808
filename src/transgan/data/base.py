"""Shared pieces of the data sets: the user-facing error, the base class and tensor helpers.

Every data set yields unlabelled float32 images of shape (channels, resolution, resolution)
with values in [-1, 1], and reports how many unreadable files it skipped. Sets with classes
also carry ``labels``; :meth:`ImageDataset.labelled` pairs every image with its label.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from transgan.errors import DataError

# ITU-R BT.601 luma weights, the same ones PIL uses for RGB -> L.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def check_image_args(resolution: int, channels: int) -> None:
    """Raise DataError unless resolution is a positive int and channels is 1 or 3."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0:
        raise DataError(f"resolution must be a positive integer, got {resolution!r}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")


def colour_name(channels: int) -> str:
    """How images of ``channels`` channels are called in messages: RGB or grayscale."""
    return "RGB" if channels == 3 else "grayscale"


def uint8_to_unit(images: Tensor) -> Tensor:
    """Map uint8 values 0..255 to float32 in [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def rgb_to_gray(images: Tensor) -> Tensor:
    """Luma of (..., 3, H, W) float images, keeping a channel axis of size 1."""
    r, g, b = images.unbind(dim=-3)
    gray = LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b
    return gray.unsqueeze(-3)


def resize_square(images: Tensor, resolution: int) -> Tensor:
    """Bilinear resize of (N, C, H, W) or (C, H, W) float images to resolution x resolution.

    Antialiasing is used when any side shrinks; the result is clamped to [-1, 1].
    """
    if images.shape[-2:] == (resolution, resolution):
        return images
    batched = images if images.dim() == 4 else images.unsqueeze(0)
    shrinking = min(batched.shape[-2:]) > resolution
    out = F.interpolate(
        batched,
        size=(resolution, resolution),
        mode="bilinear",
        align_corners=False,
        antialias=shrinking,
    ).clamp_(-1.0, 1.0)
    return out if images.dim() == 4 else out.squeeze(0)


class ImageDataset(Dataset[Tensor]):
    """Base for image sets: subclasses implement `__len__` and `__getitem__`.

    `in_memory` is True when items are ready-made tensors, so loading needs no worker
    processes; `skipped` counts unreadable files; `description` is a one-line summary.
    `labels` holds the class index of every item, or None (`unlabelled_reason` says why);
    `num_classes` is 0 then, and `class_names` None.
    """

    in_memory: bool = False

    def __init__(self, resolution: int, channels: int) -> None:
        check_image_args(resolution, channels)
        self.resolution = resolution
        self.channels = channels
        self.skipped = 0
        self.description = ""
        self.labels: list[int] | None = None
        self.num_classes = 0
        self.class_names: list[str] | None = None
        self.unlabelled_reason = "has no class labels"

    def set_labels(self, labels: Sequence[int], class_names: Sequence[str]) -> None:
        """Give every item a class index into ``class_names``; DataError when they do not fit."""
        what = self.description or type(self).__name__
        if len(labels) != len(self):
            raise DataError(f"{what}: {len(labels)} labels for {len(self)} images")
        bad = [label for label in labels if not 0 <= label < len(class_names)]
        if bad:
            raise DataError(f"{what}: label {bad[0]} is not one of the {len(class_names)} classes")
        self.labels = [int(label) for label in labels]
        self.num_classes = len(class_names)
        self.class_names = list(class_names)

    def require_labels(self) -> list[int]:
        """``labels``, or a DataError saying why this set has none."""
        if self.labels is None:
            raise DataError(f"{self.description or type(self).__name__}: "
                            f"{self.unlabelled_reason}")
        return self.labels

    def label_tensor(self, indices: Sequence[int] | Tensor) -> Tensor:
        """int64 class indices of the items at ``indices``."""
        labels = self.require_labels()
        return torch.tensor([labels[int(i)] for i in indices], dtype=torch.long)

    def labelled(self) -> LabelledDataset:
        """This set with items ``(image, label)``: the same images."""
        return LabelledDataset(self)

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tensor:
        """The item at index: float32 (C, R, R) in [-1, 1]."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"


class LabelledDataset(Dataset[tuple[Tensor, Tensor]]):
    """Items ``(image, label)`` of a labelled :class:`ImageDataset`; batches collate to
    ``(images, labels)`` with labels int64 (B,). Built by :meth:`ImageDataset.labelled`."""

    def __init__(self, images: ImageDataset) -> None:
        self.images = images
        self.labels = torch.tensor(images.require_labels(), dtype=torch.long)
        self.num_classes = images.num_classes
        self.class_names = images.class_names
        self.in_memory = images.in_memory
        self.description = images.description

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"
