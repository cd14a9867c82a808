"""Archives written by ``transgan prepare`` (or StyleGAN2-ADA's dataset tool), held in memory.

An archive with a ``dataset.json`` at its root is decoded once, when the data set is built,
into one uint8 tensor of N x channels x resolution x resolution bytes, so training steps pay
no decoding and need no loader workers. Its integer class labels, if any, are exposed as
``labels`` and ``num_classes``; items stay unlabelled image tensors like every data set's.
Other zip archives are read file by file (transgan.data.images).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from transgan.data.base import ImageDataset, uint8_to_unit
from transgan.data.images import ZipSource, check_zip_path, decode_uint8, load_zip, map_files
from transgan.data.prepare import DATASET_JSON, label_table
from transgan.errors import DataError


def is_prepared(archive: Path) -> bool:
    """Whether the zip archive has a dataset.json at its root."""
    with zipfile.ZipFile(archive) as opened:
        return DATASET_JSON in opened.namelist()


def read_labels(source: ZipSource) -> tuple[dict[str, int] | None, list[str] | None]:
    """The dataset.json's name -> class table (None when unlabelled) and its class names."""
    text = source.read(DATASET_JSON)
    table = label_table(text, f"{source.label}: {DATASET_JSON}")
    names = json.loads(text).get("class_names")
    class_names = [str(name) for name in names] if isinstance(names, list) else None
    return table, class_names


class PreparedZipDataset(ImageDataset):
    """A prepared archive's images as one uint8 tensor; `labels` gives each image's class.

    `labels` is None for unlabelled archives; `num_classes` is 0 then, else the number of
    class names (or the largest label + 1); `class_names` is None when the archive has none.
    """

    in_memory = True

    def __init__(self, archive: Path, resolution: int, channels: int) -> None:
        super().__init__(resolution, channels)
        source = ZipSource(archive)
        table, class_names = read_labels(source)
        keys = source.list_images()
        if not keys:
            raise DataError(f"{source.label}: no image files found")
        if table is not None:
            missing = [key for key in keys if key not in table]
            if missing or len(table) != len(keys):
                first = missing[0] if missing else sorted(set(table) - set(keys))[0]
                raise DataError(f"{source.label}: {DATASET_JSON} does not match the images "
                                f"(first mismatch: {first})")

        def decode(key: str) -> Tensor | None:
            try:
                return decode_uint8(source.open(key), resolution, channels)
            except Exception:  # decoders raise many types: OSError, ValueError, SyntaxError, ...
                return None

        decoded = map_files(keys, decode, f"loading {source.label}")
        source.close()
        kept = [i for i, image in enumerate(decoded) if image is not None]
        if not kept:
            raise DataError(f"{source.label}: {len(keys)} image files found, none readable")
        self.images = torch.stack([decoded[i] for i in kept])  # type: ignore[misc]
        self.skipped = len(keys) - len(kept)
        self.description = f"{source.label}: {len(kept)} images"
        if table is not None:
            labels = [table[keys[i]] for i in kept]
            count = max(len(class_names or ()), max(labels) + 1)
            self.set_labels(labels, class_names or [str(k) for k in range(count)])
        if self.num_classes:
            self.description += f", {self.num_classes} classes"
        if self.skipped:
            self.description += f" ({self.skipped} unreadable skipped)"

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return uint8_to_unit(self.images[index])


def open_zip(path: str, resolution: int, channels: int) -> ImageDataset:
    """A prepared archive in memory, any other zip archive file by file."""
    archive = check_zip_path(path)
    if is_prepared(archive):
        return PreparedZipDataset(archive, resolution, channels)
    return load_zip(str(archive), resolution, channels)
