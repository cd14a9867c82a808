"""Sharing a model: Hub-style model folders, save_pretrained / from_pretrained, ONNX export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
from conftest import TINY_RUN
from PIL import Image
from safetensors import safe_open

import transgan
from transgan.artifacts.onnx_export import ONNX_OPSET, export_onnx
from transgan.cli import main
from transgan.errors import CheckpointError, OnnxExportError
from transgan.models import CNNGenerator, TransformerGenerator, build_generator
from transgan.models.card import render_card
from transgan.sampling import latents

METRICS = {
    "images_trained": 64, "metrics": {"digits-fid": 12.5, "digits-is": 3.25},
    "protocol": {"num_samples": 100, "seed": 0, "reference": "digits",
                 "extractors": {"transgan-digits": {"weights_sha256": "0123456789abcdef00"}}},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny digits run of 64 images with a metrics file beside its checkpoint."""
    path = tmp_path_factory.mktemp("sharing") / "run"
    assert main(["train", *TINY_RUN, "--out", str(path), "--images", "64"]) == 0
    (path / "checkpoints" / "metrics-64.json").write_text(json.dumps(METRICS))
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("transgan: error: ") and err.count("\n") == 1
    return err


def test_model_folder_round_trip(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "digits-model"
    assert main(["export", str(run), "--out", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "model.safetensors", "README.md", "samples.png"}
    # Every file readable by those the model is shared with, the weights too.
    umask = os.umask(0)
    os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == dict.fromkeys(
        ("config.json", "model.safetensors", "README.md", "samples.png"), 0o666 & ~umask)
    single = tmp_path / "g.safetensors"
    assert main(["export", str(run), "--out", str(single)]) == 0
    assert single.stat().st_mode & 0o777 == 0o666 & ~umask
    config = json.loads((folder / "config.json").read_text())
    assert config["generator"]["type"] == "transformer-g"
    assert config["generator"]["latent_dim"] == 16
    assert (config["preset"], config["data"], config["images_trained"]) == (
        "digits-vit", "digits", 64)
    assert config["training"]["batch"] == 16 and config["weights"] == "ema"
    assert config["metrics"]["metrics"] == METRICS["metrics"]
    assert config["metrics"]["protocol"] == METRICS["protocol"]
    card = (folder / "README.md").read_text()
    assert "digits-fid | 12.5" in card and "100 samples" in card and "samples.png" in card
    assert "pipeline_tag: unconditional-image-generation" in card

    z = latents(4, 16, seed=3)
    with torch.no_grad():
        expected = transgan.load_generator(run)(z)
        assert torch.equal(transgan.load_generator(folder)(z), expected)
        assert torch.equal(TransformerGenerator.from_pretrained(folder)(z), expected)
    # the folder exports on as a model folder again, metrics and all
    again = tmp_path / "again"
    assert main(["export", str(folder), "--out", str(again)]) == 0
    assert json.loads((again / "config.json").read_text())["metrics"] == config["metrics"]
    assert main(["sample", str(folder), "--num", "2", "--out", str(tmp_path / "s")]) == 0


def test_a_conditional_model_card_is_truthful_and_holds_no_local_path(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, session_cache: Path
) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", "64", "--conditional",
                 "--mode-seeking", "0.5"]) == 0
    stats = session_cache / "reference-stats" / "digits-train.pt"
    protocol = {**METRICS["protocol"], "reference": f"folder:{tmp_path / 'pictures'}",
                "reference_stats": {"transgan-digits": str(stats)}}
    (run / "checkpoints" / "metrics-64.json").write_text(json.dumps(
        {**METRICS, "checkpoint": str(run / "checkpoints" / "latest.pt"), "protocol": protocol}))
    folder = tmp_path / "model"
    assert main(["export", str(run), "--out", str(folder)]) == 0

    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    assert "pipeline_tag" not in front and "- class-conditional" in front
    generator = transgan.load_generator(folder)
    params = sum(p.numel() for p in generator.parameters())
    assert params > 0 and f"{params:,} parameters" in card
    assert "one of 10 class labels" in card and "labels 0 to 9" in card
    assert "--class 3" in card and "torch.full((16,), 3)" in card
    for line in ("conditional: true", "mode_seeking: 0.5", "batch: 16", "n_critic: 2"):
        assert f"\n{line}\n" in card
    training = json.loads((folder / "config.json").read_text())["training"]
    assert training["conditional"] is True and training["mode_seeking"] == 0.5
    assert not {"out", "device", "log_every", "eval_ref"} & set(training)
    assert "against `folder:pictures`" in card
    tile = 64 + 2  # 16 px samples are enlarged to 64 px tiles with 2 px padding
    assert Image.open(folder / "samples.png").size == (8 * tile + 2, 10 * tile + 2)

    local = [p for p in (str(tmp_path_factory.getbasetemp()), str(Path.home())) if len(p) > 1]
    for path in folder.iterdir():
        content = path.read_bytes()
        assert not [place for place in local if place.encode() in content], path.name


def test_a_card_tags_named_data_sets_only() -> None:
    generator = {"type": "transformer-g", "num_classes": 0, "latent_dim": 64, "img_size": 32,
                 "channels": 3}
    config = {"generator": generator, "data": "folder:pics", "preset": "tiny-32"}
    front = render_card(config, 1000, False).split("---")[1]
    assert "folder:pics" not in front and "- transgan" in front
    front = render_card({**config, "data": "cifar10"}, 1000, False).split("---")[1]
    assert "\n- cifar10\n" in front


@pytest.mark.parametrize(("classes", "example", "rows"), [(2, 1, "every class"),
                                                         (30, 3, "classes 0 to 19")])
def test_card_examples_fit_the_class_count(classes: int, example: int, rows: str) -> None:
    generator = {"type": "cnn-g", "latent_dim": 8, "img_size": 16, "channels": 3,
                 "num_classes": classes}
    card = render_card({"generator": generator, "data": "folder:pets"}, 1000, samples=True)
    assert f"labels 0 to {classes - 1} in the class order of its training data" in card
    assert f"torch.full((16,), {example})" in card and f"--class {example} " in card
    assert f"One row per class, {rows} in turn" in card and "digit" not in card


def test_card_without_metrics_says_so(run: Path, tmp_path: Path) -> None:
    ckpt = run / "checkpoints" / "latest.pt"
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "latest.pt").write_bytes(ckpt.read_bytes())
    assert main(["export", str(alone / "latest.pt"), "--out", str(tmp_path / "m")]) == 0
    assert "metrics" not in json.loads((tmp_path / "m" / "config.json").read_text())
    assert "Not evaluated yet" in (tmp_path / "m" / "README.md").read_text()


@pytest.mark.parametrize("preset", ["digits", "digits-cnn"])
def test_save_pretrained_from_pretrained_fresh_model(preset: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = build_generator(preset).eval()
    generator.save_pretrained(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "config.json", "model.safetensors", "README.md"}
    cls = type(generator)
    loaded = cls.from_pretrained(tmp_path / "m")
    assert type(loaded) is cls and not loaded.training
    z = latents(3, generator.latent_dim, seed=1)
    with torch.no_grad():
        assert torch.equal(loaded(z), generator(z))
    other = CNNGenerator if cls is TransformerGenerator else TransformerGenerator
    with pytest.raises(CheckpointError, match="not a"):
        other.from_pretrained(tmp_path / "m")


def test_from_pretrained_needs_a_local_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a local model folder"):
        TransformerGenerator.from_pretrained("someone/transgan-digits")
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="cannot read"):
        transgan.load_generator(tmp_path)


def test_single_files_and_older_convert_folders_still_load(run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    assert main(["export", str(run), "--out", str(old / "generator.safetensors")]) == 0
    z = latents(2, 16, seed=0)
    with torch.no_grad():
        assert torch.equal(transgan.load_generator(old)(z), transgan.load_generator(run)(z))


@pytest.mark.parametrize("preset", ["digits", "transgan-s"])
def test_onnx_matches_pytorch_with_a_dynamic_batch(preset: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = build_generator(preset).eval()
    path = tmp_path / "g.onnx"
    assert export_onnx(generator, path) <= 1e-4
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        z = latents(batch, generator.latent_dim, seed=10 + batch)
        got = torch.from_numpy(session.run(None, {"z": z.numpy()})[0])
        with torch.no_grad():
            want = generator(z)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() <= 1e-4


def test_onnx_export_command(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "G.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z = latents(3, 16, seed=2)
    with torch.no_grad():
        want = transgan.load_generator(run)(z)
    got = torch.from_numpy(session.run(None, {"z": z.numpy()})[0])
    assert (got - want).abs().max().item() <= 1e-4


def test_onnx_failures_are_one_line_errors(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = build_generator("digits").eval()

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Unsupported operator\nmore detail")

    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, "export", refuse)
        with pytest.raises(OnnxExportError, match=r"^cannot export .*: Unsupported operator$"):
            export_onnx(generator, tmp_path / "g.onnx")
    with monkeypatch.context() as patch:
        patch.setattr("transgan.artifacts.onnx_export.ONNX_TOLERANCE", -1.0)
        with pytest.raises(OnnxExportError, match="differs from PyTorch"):
            export_onnx(generator, tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_export_mistakes_are_one_line_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "g")])
    assert exit_info.value.code == 2
    assert "invalid choice" in _one_line_error(capsys)
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "g.pt")]) == 2
    assert ".onnx" in _one_line_error(capsys)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker / "model", blocker / "g.safetensors", blocker / "g.onnx"):
        assert main(["export", str(run), "--out", str(out)]) == 2
        assert "cannot write" in _one_line_error(capsys)
    assert main(["export", str(run), "--out", str(blocker)]) == 2
    assert "a .safetensors file or a folder" in _one_line_error(capsys)


def test_converted_official_checkpoints_are_model_folders(tmp_path: Path) -> None:
    official = Path(__file__).parent / "fixtures" / "official-transgan" / "v2-small.pth"
    folder = tmp_path / "converted"
    assert main(["convert", str(official), "--out", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "model.safetensors", "README.md", "samples.png",
        "discriminator.safetensors"}
    config = json.loads((folder / "config.json").read_text())
    assert (config["source"], config["official_version"], config["weights"]) == (
        "v2-small.pth", "v2", "ema")
    assert "v2-small.pth" in (folder / "README.md").read_text()
    with safe_open(str(folder / "discriminator.safetensors"), framework="pt") as handle:
        assert handle.metadata()["source"] == "v2-small.pth"
    z = latents(2, 32, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(TransformerGenerator.from_pretrained(folder)(z),
                                   transgan.load_generator(official)(z))
