"""What a data set holds, read cheaply before anything is built: how many images, colour or
grayscale, their typical size and whether they carry class labels.

Folders and archives are judged on an evenly spaced sample of their files (headers for the
size, small decodes for the colour), so profiling a large set costs a fraction of a second.
The embedded and torchvision sets are known without reading them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from transgan.data.images import FolderSource, Source, ZipSource, check_zip_path
from transgan.data.prepare import DATASET_JSON, label_table, subfolder_labels
from transgan.errors import DataError

# Files looked at to judge a folder or archive.
PROFILE_SAMPLE = 64
# A picture counts as colour when some pixel's channels differ by more than this (of 255):
# grayscale pictures saved as RGB JPEGs differ by a few levels at most.
COLOUR_TOLERANCE = 12
# Side to which a sampled picture is decoded for the colour check.
COLOUR_CHECK_SIDE = 32
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


@dataclass(frozen=True)
class DataProfile:
    """A data set's image count, channels (3 colour, 1 gray), median shorter side in pixels
    and whether it has class labels."""

    count: int
    channels: int
    side: int
    labelled: bool

    @property
    def colour(self) -> str:
        return "colour" if self.channels == 3 else "grayscale"

    def describe(self) -> str:
        """e.g. '400 colour images of 50 px (median side), no class labels'."""
        labels = "class labels" if self.labelled else "no class labels"
        return f"{self.count} {self.colour} images of {self.side} px (median side), {labels}"


# The embedded and torchvision sets: (images, channels, side, labelled).
KNOWN_SETS: dict[str, DataProfile] = {
    "digits": DataProfile(1797, 1, 8, True),
    "digits-train": DataProfile(1437, 1, 8, True),
    "digits-test": DataProfile(360, 1, 8, True),
    "cifar10": DataProfile(50000, 3, 32, True),
    "cifar10-test": DataProfile(10000, 3, 32, True),
    "stl10": DataProfile(100000, 3, 96, False),
    "stl10-train": DataProfile(5000, 3, 96, True),
}


def is_colour(img: Image.Image) -> bool:
    """Whether a picture shows colour (not just gray levels stored as RGB)."""
    if img.mode in GRAY_MODES:
        return False
    small = img.convert("RGB")
    small.thumbnail((COLOUR_CHECK_SIDE, COLOUR_CHECK_SIDE))
    pixels = np.asarray(small, dtype=np.int16)
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)
    return bool((spread > COLOUR_TOLERANCE).any())


def _sample(keys: list[str], count: int) -> list[str]:
    if len(keys) <= count:
        return keys
    step = len(keys) / count
    return [keys[int(i * step)] for i in range(count)]


def _labelled(source: Source, keys: list[str]) -> bool:
    """Whether the trainer would find class labels: a prepared archive's dataset.json, or
    every image in a first-level subfolder of a folder, none of them empty."""
    try:
        if isinstance(source, ZipSource):
            return label_table(source.read(DATASET_JSON), DATASET_JSON) is not None
        subfolder_labels(source, keys)
    except (KeyError, DataError):  # KeyError: an archive without dataset.json
        return False
    return True


def profile_files(source: Source) -> DataProfile | None:
    """The profile of a folder or archive from a sample of its files; None when it has no
    readable image (the data set's own checks then say why)."""
    try:
        keys = source.list_images()
        sides, colour = [], False
        for key in _sample(keys, PROFILE_SAMPLE):
            try:
                with Image.open(source.open(key)) as img:
                    side = min(img.size)
                    img.draft("RGB", (COLOUR_CHECK_SIDE, COLOUR_CHECK_SIDE))
                    img.load()
                    colour = colour or is_colour(img)
            except Exception:  # decoders raise many types; unreadable files are the data set's
                continue
            sides.append(side)
        if not sides:
            return None
        median = int(statistics.median(sides))
        return DataProfile(len(keys), 3 if colour else 1, median, _labelled(source, keys))
    finally:
        source.close()


def profile_data(spec: str) -> DataProfile | None:
    """The profile of the data set a spec names; None when it cannot be read (building the
    data set then reports the problem)."""
    text = spec.strip()
    if text.lower() in KNOWN_SETS:
        return KNOWN_SETS[text.lower()]
    kind, _, path = text.partition(":")
    try:
        if kind.lower() == "folder" and path and Path(path).expanduser().is_dir():
            return profile_files(FolderSource(Path(path).expanduser()))
        if kind.lower() == "zip" and path:
            return profile_files(ZipSource(check_zip_path(path)))
    except (OSError, ValueError):
        return None
    return None
