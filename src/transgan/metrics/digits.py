"""The embedded digits metric: a small CNN trained on the digits train split, as feature extractor.

Inception features say little about 16 px gray digits, so ``digits-fid``, ``digits-kid`` and
``digits-is`` use this classifier's penultimate layer and class probabilities instead. It is
trained deterministically on first use (seconds on a CPU) and cached, keyed by its recipe.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.utils import create_feature_extractor

from transgan.data import load_digits_split
from transgan.data.base import resize_square, rgb_to_gray
from transgan.data.digits import DigitsDataset
from transgan.errors import MetricError
from transgan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from transgan.metrics.inception import file_sha256
from transgan.metrics.precision_recall import precision_recall
from transgan.metrics.registry import FAMILIES
from transgan.sampling import to_uint8

CACHE_ENV = "TRANSGAN_CACHE"
DIGITS_NAME = FAMILIES["digits"].extractor
DIGITS_INPUT = 16
DIGITS_FEATURES = 64
DIGITS_CLASSES = 10
DIGITS_RESIZE = f"gray, bilinear (antialiased when shrinking) to {DIGITS_INPUT} px"
# Everything that determines the trained weights; its hash names the cache file.
RECIPE = {
    "version": 1,
    "arch": f"conv16-bn-pool-conv32-bn-pool-conv64-bn-fc{DIGITS_FEATURES}-fc10",
    "input": DIGITS_INPUT,
    "train": "digits-train, uint8-quantized",
    "augment": "affine: rotate 15 deg, scale 0.85-1.15, shear 0.2, shift 1.5 px",
    "optimizer": "adam, one-cycle lr 2e-3",
    "epochs": 25,
    "batch": 64,
    "seed": 0,
    "threads": 1,
}


def cache_root() -> Path:
    """transgan's cache folder: $TRANSGAN_CACHE, else ~/.cache/transgan."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "transgan"


class DigitsNet(nn.Module):
    """Small CNN on (B, 1, 16, 16) inputs in [-1, 1]; returns (features, logits).

    Features are the penultimate activations times ``feature_scale``, fixed after training so
    that their mean square on the train split is 1 (KID's kernel assumes features of order 1).
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * (DIGITS_INPUT // 4) ** 2, DIGITS_FEATURES), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(DIGITS_FEATURES, DIGITS_CLASSES)
        self.register_buffer("feature_scale", torch.ones(()))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.body(x)
        return hidden * self.feature_scale, self.head(hidden)


def prepare_digits(images: Tensor) -> Tensor:
    """uint8 (B, 1|3, H, W) -> float (B, 1, 16, 16) in [-1, 1], the classifier's input."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise MetricError(f"expected uint8 images (B, 1|3, H, W), got {tuple(images.shape)}")
    unit = images.float().div(127.5).sub(1.0)
    if unit.shape[1] == 3:
        unit = rgb_to_gray(unit)
    return resize_square(unit, DIGITS_INPUT)


def digits_split_uint8(split: str, resolution: int = DIGITS_INPUT) -> tuple[Tensor, Tensor]:
    """(uint8 (N, 1, R, R) images as the trainer sees them, labels) of a digits split."""
    images = DigitsDataset(resolution, 1, split=split).images
    _, labels = load_digits_split(split)
    return to_uint8(images), torch.from_numpy(labels)


def recipe_hash() -> str:
    """Hash of the training recipe and the training data: the classifier's cache key."""
    images, labels = digits_split_uint8("train")
    digest = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode())
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    return digest.hexdigest()


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random rotation, scale, shear and shift of a (B, 1, 16, 16) batch; background stays -1."""
    n = x.shape[0]

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=gen) * 2 - 1

    angle = uniform(n) * math.radians(15)
    scale = 1 + 0.15 * uniform(n)
    shear = 0.2 * uniform(n)
    shift = uniform(n, 2) * (2 * 1.5 / DIGITS_INPUT)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, shear - sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Zero padding of (x + 1) is background (-1) after shifting back.
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


def train_digits_classifier() -> DigitsNet:
    """Train the classifier by RECIPE: fixed seed and batch order, one CPU thread, deterministic."""
    images, labels = digits_split_uint8("train")
    inputs = prepare_digits(images)
    epochs, batch, seed = int(RECIPE["epochs"]), int(RECIPE["batch"]), int(RECIPE["seed"])
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        # One thread: the same reduction order on any machine, and faster for this tiny net.
        torch.set_num_threads(int(RECIPE["threads"]))
        try:
            gen = torch.Generator().manual_seed(seed)
            model = DigitsNet()
            steps = epochs * ((len(inputs) + batch - 1) // batch)
            optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps)
            model.train()
            for _ in range(epochs):
                order = torch.randperm(len(inputs), generator=gen)
                for index in order.split(batch):
                    _, logits = model(_augment(inputs[index], gen))
                    loss = F.cross_entropy(logits, labels[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
            model.eval().requires_grad_(False)
            features, _ = model(inputs)
            model.feature_scale.fill_(features.square().mean().rsqrt())
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            torch.set_num_threads(threads)
    return model


@torch.no_grad()
def classifier_accuracy(model: nn.Module, split: str = "test") -> float:
    """Fraction of a digits split (default: the held-out test split) classified correctly."""
    images, labels = digits_split_uint8(split)
    _, logits = model(prepare_digits(images).to(_device_of(model)))
    return float((logits.argmax(1).cpu() == labels).float().mean())


@dataclass
class DigitsClassifier:
    """The trained classifier, where its weights live, their hash and held-out accuracy."""

    model: DigitsNet
    path: Path
    weights_sha256: str
    test_accuracy: float
    trained_now: bool
    train_seconds: float = 0.0


def classifier_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Cache file of the classifier for the current recipe."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / f"digits-classifier-{recipe_hash()[:16]}.safetensors"


def _load_weights(path: Path) -> DigitsNet | None:
    """The cached classifier, or None when the file is missing or unusable."""
    if not path.is_file():
        return None
    try:
        model = DigitsNet()
        model.load_state_dict(load_file(str(path)))
    except Exception:  # corrupt or stale cache files are simply retrained
        return None
    return model.eval().requires_grad_(False)


def load_digits_classifier(
    cache_dir: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> DigitsClassifier:
    """The cached digits classifier, trained (and cached) first when missing."""
    path = classifier_path(cache_dir)
    model = _load_weights(path)
    trained_now, seconds = model is None, 0.0
    if model is None:
        start = time.perf_counter()
        model = train_digits_classifier()
        seconds = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp), metadata={"recipe": json.dumps(RECIPE, sort_keys=True)})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    accuracy = classifier_accuracy(model)
    return DigitsClassifier(
        model=model.to(device),
        path=path,
        weights_sha256=file_sha256(path),
        test_accuracy=accuracy,
        trained_now=trained_now,
        train_seconds=seconds,
    )


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def digits_extractor(
    cache_dir: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> tuple[FeatureExtractorBase, str]:
    """torch-fidelity's "transgan-digits" extractor of the cached classifier, and its SHA-256.

    Its features are ("features", "logits"): penultimate activations (64) and class logits.
    """
    classifier = load_digits_classifier(cache_dir)
    network = create_feature_extractor(
        DIGITS_NAME, ["features", "logits"], cuda=False,
        feature_extractor_weights_path=str(classifier.path), verbose=False,
    )
    return network.to(device), classifier.weights_sha256


@torch.no_grad()
def _split_features(network: FeatureExtractorBase, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = digits_split_uint8(split)[0]
    parts = [network(chunk) for chunk in images.split(500)]
    return tuple(torch.cat([p[i] for p in parts]).numpy() for i in (0, 1))  # type: ignore[return-value]


def digits_real_floor(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Digits metrics of real held-out digits (test split) against the train split.

    The floor a perfect generator would reach given the finite sample sizes.
    """
    network, _ = digits_extractor(cache_dir)
    f_train, _ = _split_features(network, "train")
    f_test, test_logits = _split_features(network, "test")
    kid, kid_std = kernel_inception_distance(
        f_test, f_train, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
    )
    is_mean, is_std = inception_score(test_logits, splits=min(splits, len(test_logits)))
    fid = frechet_distance(*feature_statistics(f_test), *feature_statistics(f_train))
    precision, recall = precision_recall(f_test, f_train)
    return {
        "digits-fid": fid,
        "digits-is": is_mean,
        "digits-is_std": is_std,
        "digits-kid": kid,
        "digits-kid_std": kid_std,
        "digits-precision": precision,
        "digits-recall": recall,
    }


class TorchFidelityDigits(FeatureExtractorBase):
    """The digits classifier as a torch-fidelity feature extractor ("transgan-digits").

    Features: "features" (penultimate, for FID/KID/PRC) and "logits" (for ISC).
    """

    def __init__(
        self,
        name: str,
        features_list: list[str],
        feature_extractor_weights_path: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            self.net = load_digits_classifier().model
        else:
            self.net = DigitsNet()
            self.net.load_state_dict(load_file(feature_extractor_weights_path))
        self.net.eval().requires_grad_(False)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 3, DIGITS_INPUT, DIGITS_INPUT, dtype=torch.uint8)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        features, logits = self.net(prepare_digits(x))
        named = {"features": features, "logits": logits}
        return tuple(named[name] for name in self.features_list)


def register_with_torch_fidelity() -> None:
    """Register "transgan-digits" in torch-fidelity's registry (once)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if DIGITS_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(DIGITS_NAME, TorchFidelityDigits)


register_with_torch_fidelity()

__all__ = [
    "DIGITS_NAME",
    "DigitsClassifier",
    "DigitsNet",
    "cache_root",
    "classifier_accuracy",
    "digits_extractor",
    "digits_real_floor",
    "load_digits_classifier",
    "prepare_digits",
]
