"""The Inception-v3 weights of the standard FID/IS/KID protocol, for torch-fidelity's extractor.

Weights come from an explicit file, else $TRANSGAN_INCEPTION_WEIGHTS, else torch's hub cache,
where torch-fidelity's own loader downloads them once when possible. Every problem is a
one-line :class:`MetricError` raised before any sampling starts.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch
from torch import Tensor
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.utils import create_feature_extractor

from transgan.errors import MetricError, first_line
from transgan.metrics.registry import FAMILIES

WEIGHTS_ENV = "TRANSGAN_INCEPTION_WEIGHTS"
INCEPTION_URL = URL_INCEPTION_V3
INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[1]
# pytorch-fid's conversion of the same graph has the same state-dict keys and is accepted too.
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"

# torch-fidelity's registry name, its pool and logits layers, and what its forward does.
INCEPTION_NAME = FAMILIES["inception"].extractor
INCEPTION_POOL = "2048"
INCEPTION_LOGITS = "logits_unbiased"
INCEPTION_DIM = 2048
INCEPTION_RESIZE = "bilinear to 299 px (TF1-compatible, torch-fidelity)"


def inception_cache_dir() -> Path:
    """Where torch-fidelity's loader (torch.hub) caches the weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights_file(path: Path, source: str) -> None:
    """Raise MetricError unless ``path`` holds a state dict that torch loads weights-only."""
    if not path.is_file():
        raise MetricError(f"Inception weights file not found: {path} (from {source})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, truncated or foreign files fail in many ways
        raise MetricError(
            f"cannot load Inception weights {path} (from {source}): {first_line(exc)}"
        ) from None
    if not isinstance(state, dict) or not state or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        raise MetricError(f"Inception weights {path} (from {source}) are not a state dict")


def _download() -> Path:
    """torch-fidelity's weights into the torch hub cache, by the loader it uses itself."""
    torch.hub.load_state_dict_from_url(INCEPTION_URL, map_location="cpu", weights_only=True)
    return inception_cache_dir() / INCEPTION_FILE


def _missing_weights_error(reason: str) -> MetricError:
    cache = inception_cache_dir()
    return MetricError(
        f"Inception weights are not available offline and could not be downloaded ({reason}): "
        f"download {INCEPTION_URL} (or pytorch-fid's {PYTORCH_FID_FILE}) and put it in "
        f"{cache}/ as {INCEPTION_FILE}, or pass --inception-weights PATH, "
        f"or set {WEIGHTS_ENV}=PATH"
    )


def resolve_inception_weights(
    path: str | os.PathLike[str] | None = None, *, download: bool = True
) -> str:
    """A verified Inception weights file: ``path``, else $TRANSGAN_INCEPTION_WEIGHTS, else cache.

    With neither given and nothing cached, downloads into the torch hub cache unless
    ``download`` is False; failures raise one-line MetricError.
    """
    env_value = os.environ.get(WEIGHTS_ENV, "").strip()
    if path is not None and str(path).strip():
        explicit, source = Path(path).expanduser(), "--inception-weights"
    elif env_value:
        explicit, source = Path(env_value).expanduser(), f"${WEIGHTS_ENV}"
    else:
        explicit, source = None, "the torch hub cache"
    if explicit is not None:
        check_weights_file(explicit, source)
        return str(explicit)
    cache = inception_cache_dir()
    for name in (INCEPTION_FILE, PYTORCH_FID_FILE):
        if (cache / name).is_file():
            check_weights_file(cache / name, source)
            return str(cache / name)
    if not download:
        raise _missing_weights_error("downloads disabled")
    print(f"downloading Inception weights {INCEPTION_URL} to {cache}", file=sys.stderr)
    try:
        target = _download()
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        raise _missing_weights_error(first_line(exc)) from None
    check_weights_file(target, f"download of {INCEPTION_URL}")
    return str(target)


def inception_extractor(
    weights_path: str, device: str | torch.device = "cpu"
) -> tuple[FeatureExtractorBase, str]:
    """torch-fidelity's Inception extractor with these weights, and their SHA-256.

    Its features are (INCEPTION_POOL, INCEPTION_LOGITS); inputs are uint8 (B, 3, H, W).
    """
    try:
        network = create_feature_extractor(
            INCEPTION_NAME, [INCEPTION_POOL, INCEPTION_LOGITS], cuda=False,
            feature_extractor_weights_path=weights_path, verbose=False,
        )
    except Exception as exc:  # e.g. a state dict of another network: load_state_dict fails
        raise MetricError(
            f"Inception weights {weights_path} do not fit torch-fidelity's InceptionV3: "
            f"{first_line(exc)}"
        ) from None
    return network.to(device), file_sha256(weights_path)
