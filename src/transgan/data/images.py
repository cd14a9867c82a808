"""Image files from a folder tree or a zip archive, converted to square [-1, 1] tensors.

Readability is decided once, at construction: every candidate file is fully decoded (with
PIL's truncated-image tolerance left off), in a thread pool with a progress bar on large sets,
and unreadable ones are skipped and counted. Sets small enough keep the decoded images in
memory; for larger ones, should a file still fail later (changed on disk), `__getitem__` warns
and deterministically returns the next readable item of the same class instead of raising.

A folder whose images all lie in first-level subfolders is labelled: each subfolder is a
class, in sorted order of names (hidden ones left out).

Conversion: EXIF orientation is applied; transparency (RGBA, LA, palette or colour-key) is
composited onto white; 16-bit grey is scaled to 8 bits; then the shorter side is resized
(bicubic, antialiased) to the resolution and the centre square is kept.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from transgan.data.base import ImageDataset, uint8_to_unit
from transgan.errors import DataError
from transgan.progress import Progress

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Below this many files the scan is quick enough not to need a progress bar.
PROGRESS_MIN_FILES = 1000
SCAN_CHUNK = 64
# Folders and archives whose decoded images take at most this many bytes are held in memory.
IN_MEMORY_BYTES = 512 * 2**20
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
DECODE_THREADS = min(8, os.cpu_count() or 1)
T = TypeVar("T")


def has_image_extension(name: str) -> bool:
    """True when name ends with one of IMAGE_EXTENSIONS, ignoring case."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _scale_sixteen_bit(img: Image.Image) -> Image.Image:
    # Mode "I" here comes from 16-bit PNGs, so it is scaled like I;16 rather than clipped.
    values = np.asarray(img, dtype=np.float64) / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb_or_gray(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to "RGB" (channels 3) or "L" (channels 1), alpha composited on white."""
    if img.mode in SIXTEEN_BIT_MODES:
        img = _scale_sixteen_bit(img)
    elif has_alpha(img):
        img = _on_white(img)
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    target = "RGB" if channels == 3 else "L"
    return img if img.mode == target else img.convert(target)


def centre_square(
    img: Image.Image, resolution: int, resample: Image.Resampling = Image.Resampling.BICUBIC
) -> Image.Image:
    """Resize the shorter side to resolution (antialiased) and keep the centre square."""
    width, height = img.size
    side = min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    # Resizing only the centre box is the same as resizing then cropping, in one pass.
    return img.resize(
        (resolution, resolution),
        resample,
        box=(left, top, left + side, top + side),
    )


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block should not make a decodable image unusable
        return img


def open_oriented(source: str | IO[bytes], resolution: int) -> Image.Image:
    """Fully decode an image file (EXIF orientation applied), at no less than resolution."""
    with Image.open(source) as opened:
        # JPEGs can decode at 1/2, 1/4 or 1/8 scale, never below the requested size.
        opened.draft(None, (resolution, resolution))
        opened.load()
        return _apply_orientation(opened)


def to_uint8_tensor(img: Image.Image) -> Tensor:
    """An "L" or "RGB" image as a uint8 (channels, height, width) tensor."""
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))
    pixels = pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)
    return pixels.contiguous()


def decode_uint8(source: str | IO[bytes], resolution: int, channels: int) -> Tensor:
    """Fully decode one image file into a uint8 (channels, resolution, resolution) tensor."""
    img = open_oriented(source, resolution)
    return to_uint8_tensor(centre_square(to_rgb_or_gray(img, channels), resolution))


def decode_image(source: str | IO[bytes], resolution: int, channels: int) -> Tensor:
    """Fully decode one image file into a float32 (channels, resolution, resolution) tensor."""
    return uint8_to_unit(decode_uint8(source, resolution, channels))


class FolderSource:
    """Image files below a folder, found by a recursive, sorted scan."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = f"folder:{root}"

    def list_images(self) -> list[str]:
        """Paths relative to the root of every file with an image extension, sorted."""
        found = [
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if has_image_extension(path.name) and path.is_file()
        ]
        return sorted(found)

    def open(self, key: str) -> str:
        """Something PIL can open for the file key."""
        return str(self.root / key)

    def read(self, key: str) -> bytes:
        """The bytes of the file key."""
        return (self.root / key).read_bytes()

    def top_folders(self) -> list[str]:
        """Names of the root's subfolders, hidden ones left out, sorted."""
        return sorted(
            path.name
            for path in self.root.iterdir()
            if path.is_dir() and not path.name.startswith(".")
        )

    def close(self) -> None:
        """Nothing to release: PIL opens and closes each file."""


class ZipSource:
    """Image members of a zip archive; each process and thread uses its own ZipFile handle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"zip:{path}"
        self._handles: dict[tuple[int, int], zipfile.ZipFile] = {}
        self._lock = threading.Lock()

    def _handle(self) -> zipfile.ZipFile:
        # Keyed by process id too: a handle inherited through fork shares its file offset
        # with the parent, so a forked worker must open its own.
        key = (os.getpid(), threading.get_ident())
        handle = self._handles.get(key)
        if handle is None:
            handle = zipfile.ZipFile(self.path)
            with self._lock:
                self._handles[key] = handle
        return handle

    def list_images(self) -> list[str]:
        """Names of members with an image extension, sorted; macOS metadata is left out."""
        names = [
            info.filename
            for info in self._handle().infolist()
            if not info.is_dir()
            and has_image_extension(info.filename)
            and not info.filename.startswith("__MACOSX/")
        ]
        return sorted(names)

    def open(self, key: str) -> IO[bytes]:
        """The member's bytes as an in-memory file."""
        return io.BytesIO(self.read(key))

    def read(self, key: str) -> bytes:
        """The bytes of the member key."""
        return self._handle().read(key)

    def top_folders(self) -> list[str]:
        """Names of the archive's first-level folders, macOS and hidden ones left out, sorted."""
        folders = {name.split("/", 1)[0] for name in self._handle().namelist() if "/" in name}
        return sorted(f for f in folders if f and f != "__MACOSX" and not f.startswith("."))

    def close(self) -> None:
        """Close the handles this process opened."""
        with self._lock:
            handles, self._handles = self._handles, {}
        pid = os.getpid()
        for (owner, _), handle in handles.items():
            if owner == pid:
                handle.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.label = state["label"]
        self._handles = {}
        self._lock = threading.Lock()


Source = FolderSource | ZipSource


def map_files(keys: Sequence[str], work: Callable[[str], T], desc: str) -> list[T]:
    """work(key) for every key, in order, on a thread pool (PIL decodes without the GIL).

    Progress labelled desc shows when there are many keys.
    """
    chunks = [keys[i : i + SCAN_CHUNK] for i in range(0, len(keys), SCAN_CHUNK)]
    results: list[T] = []
    progress = Progress(len(keys), desc, "file", enabled=len(keys) >= PROGRESS_MIN_FILES)
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool, progress:
        for done in pool.map(lambda chunk: [work(key) for key in chunk], chunks):
            results.extend(done)
            progress.update(len(done))
    return results


class ImageFilesDataset(ImageDataset):
    """Readable images of a folder or zip source; `unreadable` lists the skipped file keys.

    When the decoded images fit in IN_MEMORY_BYTES they are kept from the readability scan,
    so training decodes nothing and needs no loader workers (``in_memory``).
    """

    def __init__(self, source: Source, resolution: int, channels: int) -> None:
        super().__init__(resolution, channels)
        self.source = source
        candidates = source.list_images()
        if not candidates:
            raise DataError(
                f"{source.label}: no image files found (looked for {', '.join(IMAGE_EXTENSIONS)}, "
                "any letter case)"
            )
        self.in_memory = len(candidates) * channels * resolution**2 <= IN_MEMORY_BYTES
        decoded = map_files(candidates, self._try_decode, f"checking {source.label}")
        source.close()
        readable = [image is not None for image in decoded]
        self.keys = [key for key, ok in zip(candidates, readable, strict=True) if ok]
        self.images = (torch.stack([image for image in decoded if image is not None])
                       if self.in_memory and self.keys else None)
        self.unreadable = [key for key, ok in zip(candidates, readable, strict=True) if not ok]
        self.skipped = len(self.unreadable)
        if not self.keys:
            raise DataError(f"{source.label}: {len(candidates)} image files found, none readable")
        self.description = f"{source.label}: {len(self.keys)} images"
        if self.skipped:
            self.description += f" ({self.skipped} unreadable skipped)"
        self._warned = False

    def _try_decode(self, key: str) -> Tensor | None:
        """The uint8 image (an empty tensor unless kept in memory), None when unreadable."""
        try:
            image = decode_uint8(self.source.open(key), self.resolution, self.channels)
        except Exception:  # decoders raise many types: OSError, ValueError, SyntaxError, ...
            return None
        return image if self.in_memory else torch.empty(0, dtype=torch.uint8)

    def _decode(self, key: str) -> Tensor:
        return decode_image(self.source.open(key), self.resolution, self.channels)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> Tensor:
        if self.images is not None:
            return uint8_to_unit(self.images[index])
        count = len(self.keys)
        for offset in range(count):
            other = (index + offset) % count
            if self.labels is not None and self.labels[other] != self.labels[index]:
                continue
            key = self.keys[other]
            try:
                return self._decode(key)
            except Exception as exc:  # see _readable; substitute instead of killing training
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"{self.source.label}: {key} became unreadable ({exc}); "
                        "substituting the next image",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        raise DataError(f"{self.source.label}: no image is readable any more")


def label_by_subfolder(dataset: ImageFilesDataset, root: Path) -> None:
    """Label ``dataset`` (read from folder ``root``) by the first-level subfolder of each
    image; otherwise leave it unlabelled with the reason."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    index = {name: i for i, name in enumerate(classes)}
    labels = [index.get(key.split("/", 1)[0], -1) if "/" in key else -1 for key in dataset.keys]
    if not classes:
        dataset.unlabelled_reason = "has no class subfolders"
    elif -1 in labels:
        loose = dataset.keys[labels.index(-1)]
        dataset.unlabelled_reason = f"{loose} is not in a class subfolder"
    else:
        counts = [0] * len(classes)
        for value in labels:
            counts[value] += 1
        if 0 in counts:
            empty = classes[counts.index(0)]
            dataset.unlabelled_reason = f"class folder {empty!r} has no readable images"
        else:
            dataset.set_labels(labels, classes)


def load_folder(
    path: str, resolution: int, channels: int
) -> ImageFilesDataset:
    """Every readable image below the folder at path, recursively."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    if not root.is_dir():
        raise DataError(f"folder:{root}: not a folder (use zip:PATH for archives)")
    dataset = ImageFilesDataset(FolderSource(root), resolution, channels)
    label_by_subfolder(dataset, root)
    return dataset


def check_zip_path(path: str | Path) -> Path:
    """The expanded path, after checking that it names an existing zip archive."""
    archive = Path(path).expanduser()
    if not archive.exists():
        raise DataError(f"data path does not exist: {archive}")
    if not archive.is_file() or not zipfile.is_zipfile(archive):
        raise DataError(f"zip:{archive}: not a zip archive")
    return archive


def load_zip(
    path: str, resolution: int, channels: int
) -> ImageFilesDataset:
    """Every readable image member of the zip archive at path."""
    return ImageFilesDataset(ZipSource(check_zip_path(path)), resolution, channels)
