"""Pack a folder or zip of images into a training archive of same-size PNGs plus dataset.json.

The layout follows StyleGAN2-ADA's dataset tool, so either tool's archives read alike: images
``00000/img00000000.png``, ``00000/img00000001.png``, ... (1000 per folder) and a
``dataset.json`` of ``{"labels": [[name, class index], ...]}`` or ``{"labels": null}``;
class folders also add ``"class_names"``. Every check of the options, the source and the
labels runs before any image is decoded.

Per image: EXIF orientation is applied; grayscale, palette, transparent (composited on white)
and 16-bit images are converted and counted; images smaller than the resolution are upscaled
and counted, unless their shorter side is below ``min_size`` (then skipped); unreadable or
truncated files and, with crop "none", non-square images are skipped and counted; a file whose
bytes repeat an earlier written one is dropped as a duplicate. The centre square (crop
"center") or the whole square image (crop "none") is resized with Lanczos. Every file that was
not written as it was (skipped, dropped, converted, upscaled) can be listed in a CSV report.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from transgan.data.base import check_image_args, colour_name
from transgan.data.images import (
    DECODE_THREADS,
    SIXTEEN_BIT_MODES,
    FolderSource,
    Source,
    ZipSource,
    centre_square,
    has_alpha,
    open_oriented,
    to_rgb_or_gray,
)
from transgan.data.specs import CROPS, DEFAULT_CHANNELS, DEFAULT_CROP, DEFAULT_LABELS, LABEL_MODES
from transgan.errors import DataError
from transgan.progress import Progress

DATASET_JSON = "dataset.json"
IMAGES_PER_FOLDER = 1000
RESAMPLE = Image.Resampling.LANCZOS
# Images decoded per batch of work: bounds the PNGs held in memory before they are written.
PACK_CHUNK = 256
# A fixed member timestamp, so that the same inputs give the same archive bytes.
MEMBER_TIME = (1980, 1, 1, 0, 0, 0)
MODE_NAMES = {"L": "grayscale", "1": "grayscale", "P": "palette", "RGB": "colour"}
# The report's detail of each skip status.
SKIP_REASONS = {"unreadable": "unreadable or truncated", "too_small": "{size}, smaller than "
                "--min-size {min_size}", "not_square": "{size}, not square (--crop none)"}


def archive_name(index: int) -> str:
    """The member name of the index-th image in a prepared archive."""
    return f"{index // IMAGES_PER_FOLDER:05d}/img{index:08d}.png"


REPORT_HEADER = ("file", "outcome", "detail")


@dataclass
class PrepareReport:
    """What a run of prepare wrote, skipped, dropped, converted and upscaled; ``files`` holds
    (source file, outcome, detail) for every file not written as it was."""

    written: int = 0
    classes: int = 0
    min_size: int = 0
    unreadable: int = 0
    too_small: int = 0
    not_square: int = 0
    duplicates: int = 0
    upscaled: int = 0
    converted: Counter[str] = field(default_factory=Counter)
    files: list[tuple[str, str, str]] = field(default_factory=list)

    def skipped(self) -> str:
        """The skipped files by reason, e.g. "2 unreadable, 1 smaller than 32"; "" if none."""
        counts = [(self.unreadable, "unreadable"),
                  (self.too_small, f"smaller than {self.min_size}"),
                  (self.not_square, "not square")]
        return ", ".join(f"{n} {why}" for n, why in counts if n)

    def summary(self, out: Path, resolution: int, channels: int) -> str:
        """One line for the user: what went into out and what did not."""
        kind = colour_name(channels)
        classes = f", {self.classes} classes" if self.classes else ""
        text = f"wrote {self.written} images ({resolution} px {kind}{classes}) to {out}"
        if self.skipped():
            text += f"; skipped {self.skipped()}"
        if self.duplicates:
            text += f"; dropped {self.duplicates} duplicates"
        if self.upscaled:
            text += f"; upscaled {self.upscaled} smaller than {resolution} px"
        if self.converted:
            changes = sorted(self.converted.items())
            text += "; converted " + ", ".join(f"{n} {kind}" for kind, n in changes)
        return text

    def write_csv(self, path: Path) -> None:
        """The files not written as they were, one CSV row each (file, outcome, detail)."""
        try:
            with path.open("w", newline="") as handle:
                rows = csv.writer(handle)
                rows.writerow(REPORT_HEADER)
                rows.writerows(self.files)
        except OSError as exc:
            raise DataError(f"cannot write report {path}: {exc.strerror or exc}") from None


class Packed(NamedTuple):
    """One source file's fate: status "ok" (with its PNG) or the reason it was skipped;
    ``size`` is the source's width x height."""

    status: str
    digest: bytes = b""
    png: bytes = b""
    conversion: str | None = None
    upscaled: bool = False
    size: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Plan:
    """The source's image files in order, with a class index each when labelled."""

    source: Source
    keys: list[str]
    labels: list[int] | None
    class_names: list[str] | None


def open_source(path: Path) -> Source:
    """The folder or zip archive at path as an image source."""
    if not path.exists():
        raise DataError(f"source does not exist: {path}")
    if path.is_dir():
        return FolderSource(path)
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    raise DataError(f"source {path} is neither a folder nor a zip archive")


def label_table(text: str | bytes, where: str) -> dict[str, int] | None:
    """The name -> class index table of a dataset.json text; None when its labels are null.

    Only integer class labels are supported (StyleGAN2-ADA also allows label vectors).
    """
    try:
        content = json.loads(text)
    except ValueError:
        raise DataError(f"{where} is not valid JSON") from None
    if not isinstance(content, dict) or "labels" not in content:
        raise DataError(f'{where}: expected {{"labels": [[name, class index], ...]}} or null')
    entries = content["labels"]
    if entries is None:
        return None
    table: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else [entries]:
        valid = (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                 and type(entry[1]) is int and entry[1] >= 0)
        if not valid:
            raise DataError(f"{where}: entry {entry!r} is not [name, class index >= 0]")
        table[entry[0]] = entry[1]
    return table


def read_label_file(path: Path, keys: Sequence[str]) -> list[int]:
    """The class index of every key from a {"labels": [[name, class], ...]} JSON file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"cannot read label file {path}: {exc.strerror or exc}") from None
    table = label_table(text, f"label file {path}")
    if table is None:
        raise DataError(f"label file {path} has no labels (\"labels\": null)")
    unlabelled = [key for key in keys if key not in table]
    if unlabelled:
        raise DataError(f"label file {path} does not match the images: {len(unlabelled)} have "
                        f"no label (first: {unlabelled[0]})")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise DataError(f"label file {path} does not match the images: {len(unknown)} labelled "
                        f"names are no image file of the source (first: {unknown[0]})")
    return [table[key] for key in keys]


def subfolder_labels(source: Source, keys: Sequence[str]) -> tuple[list[int], list[str]]:
    """Class indices from the first-level folders (sorted by name) and the folder names."""
    folders = source.top_folders()
    if not folders:
        raise DataError(f"--labels subfolders: {source.label} has no subfolders")
    index = {name: i for i, name in enumerate(folders)}
    loose = [key for key in keys if key.split("/", 1)[0] not in index or "/" not in key]
    if loose:
        raise DataError(f"--labels subfolders: {len(loose)} images are not in a class folder "
                        f"(first: {loose[0]})")
    labels = [index[key.split("/", 1)[0]] for key in keys]
    counts = Counter(labels)
    empty = [name for i, name in enumerate(folders) if not counts[i]]
    if empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise DataError(f"--labels subfolders: class folder {empty[0]!r} has no images{more}")
    return labels, folders


def plan(source_path: Path, labels: str) -> Plan:
    """The images of the source and their labels, or a DataError; decodes nothing."""
    source = open_source(source_path)
    keys = source.list_images()
    if not keys:
        raise DataError(f"{source.label}: no image files found")
    if labels == "none":
        return Plan(source, keys, None, None)
    if labels == "subfolders":
        classes, names = subfolder_labels(source, keys)
        return Plan(source, keys, classes, names)
    label_file = Path(labels).expanduser()
    if not label_file.is_file():
        raise DataError(f"--labels {labels}: no such file (expected {' | '.join(LABEL_MODES)} "
                        "or a JSON label file)")
    return Plan(source, keys, read_label_file(label_file, keys), None)


def conversion(img: Image.Image, channels: int) -> str | None:
    """What converting img to the output mode changes, or None when it is already that mode."""
    if img.mode in SIXTEEN_BIT_MODES:
        return "16-bit"
    if has_alpha(img):
        return "transparent"
    if img.mode == ("RGB" if channels == 3 else "L"):
        return None
    return MODE_NAMES.get(img.mode, img.mode)


def pack_image(data: bytes, resolution: int, channels: int, crop: str,
               min_size: int = 0) -> Packed:
    """Decode one file's bytes and encode the output PNG (upscaling a smaller image), or say
    why it is skipped."""
    try:
        img = open_oriented(io.BytesIO(data), resolution)
    except Exception:  # decoders raise many types: OSError, ValueError, SyntaxError, ...
        return Packed("unreadable")
    size = img.size
    if crop == "none" and size[0] != size[1]:
        return Packed("not_square", size=size)
    if min(size) < min_size:
        return Packed("too_small", size=size)
    changed = conversion(img, channels)
    out = centre_square(to_rgb_or_gray(img, channels), resolution, RESAMPLE)
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return Packed("ok", hashlib.sha256(data).digest(), buffer.getvalue(), changed,
                  min(size) < resolution, size)


def check_out(out: Path) -> Path:
    """Create the temporary archive next to out (so unwritable places fail early) and return it."""
    if out.suffix.lower() != ".zip":
        raise DataError(f"--out {out}: must end in .zip")
    if out.is_dir():
        raise DataError(f"--out {out}: is a folder")
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
    return partial


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    # PNGs are compressed already; stored members read back faster.
    archive.writestr(zipfile.ZipInfo(name, MEMBER_TIME), data, zipfile.ZIP_STORED)


def prepare(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    resolution: int,
    *,
    crop: str = DEFAULT_CROP,
    labels: str = DEFAULT_LABELS,
    channels: int = DEFAULT_CHANNELS,
    min_size: int = 0,
    report_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Write the archive out from the images of source; see the module docstring for the rules.

    min_size: skip images whose shorter side is below it (0: upscale every smaller image);
    report_path: a CSV of the files not written as they were; progress: a bar on a
    terminal stderr, else a plain line at every tenth.
    """
    check_image_args(resolution, channels)
    if crop not in CROPS:
        raise DataError(f"--crop {crop!r}: expected one of {', '.join(CROPS)}")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise DataError(f"--min-size must be a whole number of pixels >= 0, got {min_size!r}")
    work = plan(Path(source).expanduser(), labels)
    out_path = Path(out).expanduser()
    try:
        partial = check_out(out_path)
        try:
            report = _pack(work, partial, resolution, channels, crop, min_size, progress)
            if report_path is not None:
                report.write_csv(Path(report_path).expanduser())
            if not report.written:
                raise DataError(f"{work.source.label}: no usable image among {len(work.keys)} "
                                f"files ({report.skipped()})")
            os.replace(partial, out_path)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        work.source.close()
    return report


def _pack(
    work: Plan, partial: Path, resolution: int, channels: int, crop: str, min_size: int,
    progress: bool
) -> PrepareReport:
    classes = work.class_names or sorted(set(work.labels or []))
    report = PrepareReport(classes=len(classes), min_size=min_size)
    labels = work.labels or [-1] * len(work.keys)
    labelled: list[tuple[str, int]] = []
    seen: set[bytes] = set()

    def pack(key: str) -> Packed:
        return pack_image(work.source.read(key), resolution, channels, crop, min_size)

    bar = Progress(len(work.keys), "packing", "img", enabled=progress)
    with (zipfile.ZipFile(partial, "w") as archive,
          ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool, bar):
        for start in range(0, len(work.keys), PACK_CHUNK):
            chunk = work.keys[start : start + PACK_CHUNK]
            chunk_labels = labels[start : start + PACK_CHUNK]
            packs = pool.map(pack, chunk)
            for key, label, packed in zip(chunk, chunk_labels, packs, strict=True):
                bar.update(1)
                if packed.status != "ok":  # the statuses name the report's skip counters
                    setattr(report, packed.status, getattr(report, packed.status) + 1)
                    report.files.append((key, "skipped", SKIP_REASONS[packed.status].format(
                        size="x".join(map(str, packed.size)), min_size=min_size)))
                    continue
                if packed.digest in seen:
                    report.duplicates += 1
                    report.files.append((key, "dropped", "duplicate of an earlier file"))
                    continue
                seen.add(packed.digest)
                if packed.conversion:
                    report.converted[packed.conversion] += 1
                    report.files.append((key, "converted", f"{packed.conversion} to "
                                         f"{colour_name(channels)}"))
                if packed.upscaled:
                    report.upscaled += 1
                    report.files.append((key, "upscaled", f"{'x'.join(map(str, packed.size))} "
                                         f"to {resolution}x{resolution}"))
                name = archive_name(report.written)
                _write_member(archive, name, packed.png)
                labelled.append((name, label))
                report.written += 1
        meta: dict[str, object] = {"labels": labelled if work.labels else None}
        if work.class_names:
            meta["class_names"] = work.class_names
        _write_member(archive, DATASET_JSON, json.dumps(meta, indent=1).encode())
    return report
