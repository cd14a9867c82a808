"""The names the data layer accepts (data set specs, the choices of `transgan prepare`), free
of torch so that the command line can list and check them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DIGITS_LOADER = "transgan.data.digits:DigitsDataset"


@dataclass(frozen=True)
class NamedSet:
    """A data set known by name: its loader ("module:name", called with the resolution, the
    channels and ``keywords``; also ``root`` and ``download`` when it ``downloads``)."""

    loader: str
    keywords: tuple[tuple[str, str | bool], ...]
    downloads: bool = False


# Every data set known by name, declared once: `--data NAME` reads it through its loader.
NAMED_SETS: dict[str, NamedSet] = {
    "digits": NamedSet(DIGITS_LOADER, (("split", "all"),)),
    "digits-train": NamedSet(DIGITS_LOADER, (("split", "train"),)),
    "digits-test": NamedSet(DIGITS_LOADER, (("split", "test"),)),
    "cifar10": NamedSet("transgan.data.torchvision_sets:load_cifar10", (("train", True),), True),
    "cifar10-test": NamedSet("transgan.data.torchvision_sets:load_cifar10", (("train", False),),
                             True),
    "stl10": NamedSet("transgan.data.torchvision_sets:load_stl10", (("split", "unlabeled"),),
                      True),
    "stl10-train": NamedSet("transgan.data.torchvision_sets:load_stl10", (("split", "train"),),
                            True),
}
# Data sets at a path, `KIND:PATH`: their loaders, called with the path, resolution, channels.
PATH_SETS: dict[str, str] = {"folder": "transgan.data.images:load_folder",
                             "zip": "transgan.data.zipped:open_zip"}
DATA_SPECS_HELP = (" | ".join([*NAMED_SETS, *(f"{kind}:PATH" for kind in PATH_SETS)])
                   + " (a bare path to a folder or a .zip file is read as one)")


def is_digits_spec(spec: str) -> bool:
    """Whether ``spec`` names (a split of) the embedded digits data set."""
    named = NAMED_SETS.get(spec.strip().lower())
    return named is not None and named.loader == DIGITS_LOADER


def data_spec_from_path(spec: str) -> str:
    """``spec`` as given, or for a bare path to an existing folder or ``.zip`` file (what
    users of other trainers type) the ``folder:`` or ``zip:`` spec that reads it; the named
    data sets keep their names even where a folder of that name exists."""
    text = spec.strip()
    if text.partition(":")[0].lower() in PATH_SETS or text.lower() in NAMED_SETS:
        return spec
    path = Path(text).expanduser()
    if path.is_dir():
        return f"folder:{text}"
    if path.suffix.lower() == ".zip" and path.is_file():
        return f"zip:{text}"
    return spec


def may_download(spec: str) -> bool:
    """Whether building ``spec`` may download it (the torchvision sets)."""
    named = NAMED_SETS.get(spec.strip().lower())
    return named is not None and named.downloads


# The choices of `transgan prepare`.
CROPS = ("center", "none")
DEFAULT_CROP = "center"
LABEL_MODES = ("none", "subfolders")
DEFAULT_LABELS = "none"
DEFAULT_CHANNELS = 3
