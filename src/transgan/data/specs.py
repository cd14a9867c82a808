"""The names the data layer accepts (data set specs, the choices of `transgan prepare`), free
of torch so that the command line can list and check them."""

from __future__ import annotations

from pathlib import Path

DATA_SPECS_HELP = (
    "digits | digits-train | digits-test | cifar10 | cifar10-test | stl10 | stl10-train "
    "| folder:PATH | zip:PATH (a bare path to a folder or a .zip file is read as one)"
)

DIGITS_SPECS = {"digits": "all", "digits-train": "train", "digits-test": "test"}


def is_digits_spec(spec: str) -> bool:
    """Whether ``spec`` names (a split of) the embedded digits data set."""
    return spec.strip().lower() in DIGITS_SPECS


CIFAR10_SPECS = {"cifar10": True, "cifar10-test": False}
STL10_SPECS = {"stl10": "unlabeled", "stl10-train": "train"}


def data_spec_from_path(spec: str) -> str:
    """``spec`` as given, or for a bare path to an existing folder or ``.zip`` file (what
    users of other trainers type) the ``folder:`` or ``zip:`` spec that reads it; the named
    data sets keep their names even where a folder of that name exists."""
    text = spec.strip()
    named = {**DIGITS_SPECS, **CIFAR10_SPECS, **STL10_SPECS}
    if text.partition(":")[0].lower() in ("folder", "zip") or text.lower() in named:
        return spec
    path = Path(text).expanduser()
    if path.is_dir():
        return f"folder:{text}"
    if path.suffix.lower() == ".zip" and path.is_file():
        return f"zip:{text}"
    return spec


def may_download(spec: str) -> bool:
    """Whether building ``spec`` may download it (the torchvision sets)."""
    return spec.strip().lower() in {**CIFAR10_SPECS, **STL10_SPECS}


# The choices of `transgan prepare`.
CROPS = ("center", "none")
DEFAULT_CROP = "center"
LABEL_MODES = ("none", "subfolders")
DEFAULT_LABELS = "none"
DEFAULT_CHANNELS = 3
