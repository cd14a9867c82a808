"""The Inception-v3 feature extractor of the standard FID/IS/KID protocol, via torch-fidelity.

Weights come from an explicit file, else $TRANSGAN_INCEPTION_WEIGHTS, else torch's hub cache
(downloaded there once when possible). Every problem is a one-line :class:`MetricError`
raised before any sampling starts.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

import torch
from torch import Tensor

from .frechet import MetricError

WEIGHTS_ENV = "TRANSGAN_INCEPTION_WEIGHTS"
# torch-fidelity's conversion of the TF 2015-12-05 graph, and its own file name in the cache.
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
# pytorch-fid's conversion of the same graph has the same state-dict keys and is accepted too.
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
DOWNLOAD_TIMEOUT_S = 10.0

INCEPTION_NAME = "inception-v3-compat"
INCEPTION_POOL = "2048"
INCEPTION_LOGITS = "logits_unbiased"
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_weights_file(path: Path, source: str) -> None:
    """Raise MetricError unless ``path`` holds a state dict that torch loads weights-only."""
    if not path.is_file():
        raise MetricError(f"Inception weights file not found: {path} (from {source})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, truncated or foreign files fail in many ways
        raise MetricError(
            f"cannot load Inception weights {path} (from {source}): {_first_line(exc)}"
        ) from None
    if not isinstance(state, dict) or not state or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        raise MetricError(f"Inception weights {path} (from {source}) are not a state dict")


def _download(url: str, dest: Path, timeout: float) -> None:
    """Fetch ``url`` into ``dest`` via a temporary file; raises OSError on any failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


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

    With neither given and nothing cached, downloads into the torch hub cache (short socket
    timeout) unless ``download`` is False; failures raise one-line MetricError.
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
    target = cache / INCEPTION_FILE
    print(f"downloading Inception weights {INCEPTION_URL} to {target}", file=sys.stderr)
    try:
        _download(INCEPTION_URL, target, DOWNLOAD_TIMEOUT_S)
    except (OSError, ValueError) as exc:  # URLError and socket timeouts are OSErrors
        raise _missing_weights_error(_first_line(exc)) from None
    check_weights_file(target, f"download of {INCEPTION_URL}")
    return str(target)


class InceptionExtractor:
    """Pool (2048) features and unbiased logits of uint8 images through torch-fidelity's net."""

    name = INCEPTION_NAME
    resize = INCEPTION_RESIZE
    features_name = INCEPTION_POOL
    feature_dim = 2048

    def __init__(self, weights_path: str, device: str | torch.device = "cpu") -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.weights_path = weights_path
        self.weights_sha256 = file_sha256(weights_path)
        self.device = torch.device(device)
        try:
            network = FeatureExtractorInceptionV3(
                INCEPTION_NAME,
                [INCEPTION_POOL, INCEPTION_LOGITS],
                feature_extractor_weights_path=weights_path,
            )
        except Exception as exc:  # e.g. a state dict of another network: load_state_dict fails
            raise MetricError(
                f"Inception weights {weights_path} do not fit torch-fidelity's InceptionV3: "
                f"{_first_line(exc)}"
            ) from None
        self.network = network.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(pool features (B, 2048), logits (B, 1008)) as float32 CPU tensors."""
        images = as_rgb_uint8(images).to(self.device)
        pool, logits = self.network(images)
        return pool.float().cpu(), logits.float().cpu()


def as_rgb_uint8(images: Tensor) -> Tensor:
    """uint8 (B, 1|3, H, W) -> (B, 3, H, W), repeating a gray channel."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise MetricError(
            f"expected uint8 images (B, 1|3, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
