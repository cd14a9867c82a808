"""The Inception path of ``evaluate_generator``: weights resolution, offline errors, end to end.

Real weights are not available offline, so a same-architecture network with random weights is
saved to a file and loaded through the real code path. The 299 px network is slow on a CPU
(about half a second per image), hence the handful of images.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

from transgan.metrics import inception as inception_mod
from transgan.metrics.evaluate import evaluate_generator
from transgan.metrics.frechet import MetricError
from transgan.metrics.inception import (
    INCEPTION_FILE,
    PYTORCH_FID_FILE,
    WEIGHTS_ENV,
    resolve_inception_weights,
)


class StubGenerator(torch.nn.Module):
    """A tiny deterministic 'generator' of 16 px gray images; can refuse to be called."""

    latent_dim, img_size, channels = 8, 16, 1

    def __init__(self, explode: bool = False) -> None:
        super().__init__()
        self.explode = explode
        self.proj = torch.nn.Linear(self.latent_dim, self.img_size * self.img_size)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.explode:
            raise AssertionError("the generator must not be called before the checks")
        return torch.tanh(self.proj(z)).view(-1, 1, self.img_size, self.img_size)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)

    def offline(url: str, dest: Path, timeout: float) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(inception_mod, "_download", offline)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's InceptionV3 with random weights, saved as a plain state dict."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict",
                      lambda self, state, *a, **k: None)
        torch.manual_seed(0)
        network = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture
def png_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_inception_metrics_end_to_end(
    random_weights: Path, png_folder: Path, tmp_path: Path
) -> None:
    result = evaluate_generator(
        StubGenerator(), metrics="fid,is,kid", num=4, ref=f"folder:{png_folder}",
        inception_weights=random_weights, batch=4, cache_dir=tmp_path / "stats", progress=False,
    )
    values = result["metrics"]
    assert set(values) == {"fid", "is", "is_std", "kid", "kid_std"}
    assert all(math.isfinite(v) for v in values.values())
    assert values["fid"] >= 0 and values["is"] >= 1
    protocol = result["protocol"]
    sha = hashlib.sha256(random_weights.read_bytes()).hexdigest()
    assert protocol["feature_extractor"] == "inception-v3-compat"
    assert protocol["weights_sha256"] == sha[:16]
    assert protocol["num_samples"] == 4 and protocol["reference_size"] == 4
    assert protocol["reference"] == f"folder:{png_folder}"
    assert Path(protocol["reference_stats"]["inception-v3-compat"]).is_file()


@pytest.mark.parametrize("kind", ["missing", "garbage", "not-a-state-dict"])
def test_bad_weights_file_fails_before_sampling(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "weights.pth"
    if kind == "garbage":
        path.write_bytes(b"\x00not a torch file" * 10)
    elif kind == "not-a-state-dict":
        torch.save([1, 2, 3], path)
    with pytest.raises(MetricError) as info:
        evaluate_generator(StubGenerator(explode=True), metrics="fid", num=10, ref="digits-train",
                           inception_weights=path, progress=False)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_weights_of_another_network_fail_before_sampling(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(MetricError, match="do not fit") as info:
        evaluate_generator(StubGenerator(explode=True), metrics="is", num=10, ref="digits-train",
                           inception_weights=path, progress=False)
    assert "\n" not in str(info.value)


def test_offline_without_weights_names_the_file_url_and_places(tmp_path: Path) -> None:
    with pytest.raises(MetricError) as info:
        evaluate_generator(StubGenerator(explode=True), metrics="fid,is", num=10,
                           ref="digits-train", progress=False)
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
    def fake_download(url: str, dest: Path, timeout: float) -> None:
        assert url.endswith(INCEPTION_FILE) and timeout <= 30
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(random_weights, dest)

    monkeypatch.setattr(inception_mod, "_download", fake_download)
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
