"""The names the data layer accepts (data set specs, the choices of `transgan prepare`), free
of torch so that the command line can list and check them."""

from __future__ import annotations

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


# The choices of `transgan prepare`.
CROPS = ("center", "none")
DEFAULT_CROP = "center"
LABEL_MODES = ("none", "subfolders")
DEFAULT_LABELS = "none"
DEFAULT_CHANNELS = 3
