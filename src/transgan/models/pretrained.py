"""``save_pretrained`` / ``from_pretrained`` for generators, after huggingface_hub's
``PyTorchModelHubMixin`` convention, on local model folders only (no network)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from transgan.models.folder import load_model_folder, write_model_folder

_Model = TypeVar("_Model", bound="PretrainedMixin")


class PretrainedMixin:
    """Write and read a model folder (``config.json``, ``model.safetensors``, ``README.md``)."""

    def save_pretrained(
        self, save_directory: str | Path, info: Mapping[str, Any] | None = None,
        samples: bool = False,
    ) -> list[Path]:
        """Write this generator to ``save_directory``; ``info`` goes into ``config.json`` and
        the model card, ``samples`` adds ``samples.png``. Uploading stays a separate step."""
        return write_model_folder(Path(save_directory), self, info, samples)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(
        cls: type[_Model], pretrained_model_name_or_path: str | Path,
        device: str | torch.device = "cpu",
    ) -> _Model:
        """The eval-mode generator of a local model folder; it must be of this class."""
        return load_model_folder(pretrained_model_name_or_path, device, cls)
