"""scikit-learn's 8x8 handwritten digits: a tiny data set shipped with sklearn, for quick runs.

Splits follow sklearn's own ordering (no shuffling): the first 1437 images are "train",
the last 360 are "test", and "all" is all 1797.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from transgan.data.base import ImageDataset, resize_square
from transgan.errors import DataError

DIGITS_SPLITS = ("all", "train", "test")
DIGITS_TRAIN_SIZE = 1437
DIGITS_MAX_VALUE = 16
DIGITS_CLASSES = tuple(str(digit) for digit in range(10))


@lru_cache(maxsize=1)
def _load_all() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return images, labels


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 8, 8) with values 0..16, labels int64 (N,)) for "train", "test" or "all".

    Deterministic: "train" is sklearn's first 1437 images, "test" the remaining 360.
    """
    if split not in DIGITS_SPLITS:
        raise DataError(f"unknown digits split {split!r}; choose from {', '.join(DIGITS_SPLITS)}")
    images, labels = _load_all()
    if split == "train":
        part = slice(0, DIGITS_TRAIN_SIZE)
    elif split == "test":
        part = slice(DIGITS_TRAIN_SIZE, None)
    else:
        part = slice(None)
    return images[part].copy(), labels[part].copy()


class DigitsDataset(ImageDataset):
    """The digits as one precomputed (N, 1, R, R) tensor; ink is bright (+1) on black (-1).

    Labelled: class k is the digit k.
    """

    in_memory = True

    def __init__(
        self, resolution: int, channels: int, *, split: str = "all"
    ) -> None:
        super().__init__(resolution, channels)
        images, labels = load_digits_split(split)
        unit = torch.from_numpy(images).to(torch.float32).unsqueeze(1)
        unit = unit.mul_(2.0 / DIGITS_MAX_VALUE).sub_(1.0)
        # One channel is stored; RGB items repeat it, built per item to save memory.
        self.images = resize_square(unit, resolution).contiguous()
        name = "digits" if split == "all" else f"digits-{split}"
        self.description = f"{name}: {len(self.images)} images"
        self.set_labels(labels.tolist(), DIGITS_CLASSES)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        # Copies, so that callers editing an item in place cannot alter the stored set.
        image = self.images[index]
        return image.repeat(3, 1, 1) if self.channels == 3 else image.clone()
