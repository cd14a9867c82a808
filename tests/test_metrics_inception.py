"""The Inception path of ``evaluate_generator``: weights resolution, offline errors, end to end.

Real weights are not available offline, so a same-architecture network with random
(variance-preserving) weights is saved to a file and loaded through the real code path. The
299 px network is slow on a CPU (over half a second per image), hence the handful of images.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

from transgan.errors import MetricError
from transgan.metrics import inception as inception_mod
from transgan.metrics.evaluate import MetricOptions, evaluate_generator
from transgan.metrics.inception import (
    INCEPTION_FILE,
    PYTORCH_FID_FILE,
    WEIGHTS_ENV,
    resolve_inception_weights,
)
from transgan.metrics.precision_recall import precision_recall
from transgan.sampling import generate, latents, to_uint8


class StubGenerator(torch.nn.Module):
    """A tiny deterministic 'generator' of 16 px gray images; can refuse to be called."""

    latent_dim, img_size, channels = 8, 16, 1

    def __init__(self, explode: bool = False) -> None:
        super().__init__()
        self.explode = explode
        self.proj = torch.nn.Linear(self.latent_dim, self.img_size * self.img_size)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
        torch.nn.init.zeros_(self.proj.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.explode:
            raise AssertionError("the generator must not be called before the checks")
        return torch.tanh(self.proj(z)).view(-1, 1, self.img_size, self.img_size)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)

    def offline(url: str, dest: str, *args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's InceptionV3 with random weights, saved as a plain state dict.

    He-initialised convolutions keep the activations' scale through the 90-odd layers, so
    different images give different features.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict",
                      lambda self, state, *a, **k: None)
        torch.manual_seed(0)
        network = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


def _save_pngs(images: torch.Tensor, folder: Path) -> Path:
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def png_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return _save_pngs(torch.from_numpy(rng.integers(0, 256, (4, 1, 16, 16), dtype=np.uint8)),
                      tmp_path / "refs")


def _fid_numpy(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID by scipy's sqrtm, restricted to the span of the first set (fewer samples than D)."""
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    basis = np.linalg.svd(f1 - mu1, full_matrices=False)[2][: len(f1) - 1].T
    # s1 = B (B^T s1 B) B^T, so s1 s2 has the eigenvalues of (B^T s1 B)(B^T s2 B) besides 0.
    root = scipy.linalg.sqrtm(basis.T @ s1 @ basis @ basis.T @ s2 @ basis)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
                 - 2 * np.trace(root).real)


def test_inception_metrics_end_to_end(random_weights: Path, tmp_path: Path) -> None:
    """FID of the samples against themselves, and FID and KID against a brightened copy.

    The reference features (cached, path in the protocol) equal the samples' features, so
    the values can be checked by an independent numpy computation.
    """
    generator = StubGenerator()
    samples = to_uint8(generate(generator, latents(2, generator.latent_dim, 0)))
    same = _save_pngs(samples, tmp_path / "same")
    brighter = _save_pngs((samples.int() + 60).clamp(max=255).byte(), tmp_path / "brighter")
    kwargs = {"num": 2, "batch": 2, "inception_weights": random_weights,
              "cache_dir": tmp_path / "stats", "progress": False}
    to_self = evaluate_generator(generator, MetricOptions(("fid",), ref=f"folder:{same}",
                                                          **kwargs))
    shifted = evaluate_generator(generator, MetricOptions(("fid", "is", "kid"),
                                                          ref=f"folder:{brighter}", **kwargs))
    values = shifted["metrics"]
    assert set(values) == {"fid", "is", "is_std", "kid", "kid_std"}
    features = {
        name: torch.load(result["protocol"]["reference_stats"]["inception-v3-compat"]).double()
        for name, result in (("same", to_self), ("brighter", shifted))
    }
    assert features["same"].shape == (2, 2048) and features["same"].std(0).mean() > 1e-3
    fid = _fid_numpy(features["same"].numpy(), features["brighter"].numpy())
    assert to_self["metrics"]["fid"] < 1e-6 * fid
    assert values["fid"] == pytest.approx(fid, rel=1e-6)
    # Subsets of both samples: KID is the unbiased MMD² of the whole sets.
    kernel = (features["same"] @ features["brighter"].T / 2048 + 1) ** 3
    k_xx = (features["same"] @ features["same"].T / 2048 + 1) ** 3
    k_yy = (features["brighter"] @ features["brighter"].T / 2048 + 1) ** 3
    mmd = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / 2 - 2 * kernel.mean()
    assert values["kid"] == pytest.approx(float(mmd), rel=1e-9) and values["kid"] > 0
    protocol = shifted["protocol"]
    sha = hashlib.sha256(random_weights.read_bytes()).hexdigest()
    assert protocol["feature_extractor"] == "inception-v3-compat"
    assert protocol["weights_sha256"] == sha[:16]
    assert protocol["num_samples"] == 2 and protocol["reference_size"] == 2
    assert protocol["reference"] == f"folder:{brighter}"


def test_inception_precision_recall(random_weights: Path, tmp_path: Path) -> None:
    """prc on Inception pool features: 1 and 1 against the samples themselves, and against
    a brightened copy the numbers of the features the protocol points at."""
    generator = StubGenerator()
    samples = to_uint8(generate(generator, latents(5, generator.latent_dim, 0)))
    same = _save_pngs(samples, tmp_path / "same")
    brighter = _save_pngs((samples.int() + 60).clamp(max=255).byte(), tmp_path / "brighter")
    kwargs = {"metrics": ("prc",), "num": 5, "batch": 5, "inception_weights": random_weights,
              "cache_dir": tmp_path / "stats", "progress": False}
    to_self = evaluate_generator(generator, MetricOptions(ref=f"folder:{same}", **kwargs))
    assert to_self["metrics"] == {"precision": 1.0, "recall": 1.0}
    shifted = evaluate_generator(generator, MetricOptions(ref=f"folder:{brighter}", **kwargs))
    features = [torch.load(result["protocol"]["reference_stats"]["inception-v3-compat"])
                for result in (to_self, shifted)]
    assert features[0].shape == (5, 2048)
    expected = precision_recall(features[0].numpy(), features[1].numpy())
    assert (shifted["metrics"]["precision"], shifted["metrics"]["recall"]) == expected


@pytest.mark.parametrize("kind", ["missing", "garbage", "not-a-state-dict"])
def test_bad_weights_file_fails_before_sampling(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "weights.pth"
    if kind == "garbage":
        path.write_bytes(b"\x00not a torch file" * 10)
    elif kind == "not-a-state-dict":
        torch.save([1, 2, 3], path)
    with pytest.raises(MetricError) as info:
        evaluate_generator(StubGenerator(explode=True), MetricOptions(
            ("fid",), 10, "digits-train", inception_weights=path, progress=False))
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_weights_of_another_network_fail_before_sampling(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(MetricError, match="do not fit") as info:
        evaluate_generator(StubGenerator(explode=True), MetricOptions(
            ("is",), 10, "digits-train", inception_weights=path, progress=False))
    assert "\n" not in str(info.value)


def test_offline_without_weights_names_the_file_url_and_places(tmp_path: Path) -> None:
    with pytest.raises(MetricError) as info:
        evaluate_generator(StubGenerator(explode=True), MetricOptions(
            ("fid", "is"), 10, "digits-train", progress=False))
    message = str(info.value)
    assert PYTORCH_FID_FILE in message and INCEPTION_FILE in message
    assert "https://github.com/" in message
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in message
    assert WEIGHTS_ENV in message and "--inception-weights" in message
    assert "network is unreachable" in message and "\n" not in message


def test_weights_come_from_env_then_hub_cache(
    random_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(random_weights))
    assert resolve_inception_weights() == str(random_weights)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(MetricError, match=WEIGHTS_ENV):
        resolve_inception_weights()
    monkeypatch.delenv(WEIGHTS_ENV)
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    os.symlink(random_weights, cache / PYTORCH_FID_FILE)
    assert resolve_inception_weights() == str(cache / PYTORCH_FID_FILE)
    # An explicit path wins over the cache.
    assert resolve_inception_weights(random_weights) == str(random_weights)


def test_download_lands_in_the_hub_cache(
    random_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_download(url: str, dest: str, *args: object, **kwargs: object) -> None:
        assert url == inception_mod.INCEPTION_URL and url.endswith(INCEPTION_FILE)
        os.symlink(random_weights, dest)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    expected = tmp_path / "torch-home" / "hub" / "checkpoints" / INCEPTION_FILE
    assert resolve_inception_weights() == str(expected)


def test_eval_accepts_a_converted_official_checkpoint(
    random_weights: Path, png_folder: Path, tmp_path: Path
) -> None:
    from transgan.cli import main

    official = Path(__file__).parent / "fixtures" / "official-transgan" / "v2-small.pth"
    folder = tmp_path / "converted"
    assert main(["convert", str(official), "--out", str(folder)]) == 0
    assert main(["eval", str(folder), "--metrics", "fid", "--num", "4", "--batch", "4",
                 "--ref", f"folder:{png_folder}", "--inception-weights",
                 str(random_weights)]) == 0
    record = json.loads((folder / "metrics-0.json").read_text())
    assert math.isfinite(record["metrics"]["fid"])
    assert record["checkpoint"] == str(folder / "model.safetensors")
