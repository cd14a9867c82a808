"""Class names of a labelled folder travel with the generator: checkpoint, export, card, ONNX
metadata, the server and the page's API, ``sample``/``interpolate --class NAME`` and file
names."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import TINY_RUN
from PIL import Image

import transgan
from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import main
from transgan.errors import ConfigError
from transgan.models import GeneratorConfig, config_from_dict, config_to_dict
from transgan.sampling import generate, latents, resolve_classes, seed_file_name
from transgan.serve import SampleServer

# Sorted as the class folders are: the label of a class is its place here.
NAMES = ["circle", "red triangle", "square"]


def _picture(kind: str, k: int) -> Image.Image:
    """A 16 px picture of ``kind``, shifted by ``k``."""
    image = np.zeros((16, 16), np.uint8)
    if kind == "square":
        image[3 + k % 3 : 12 + k % 3, 3:12] = 255
    elif kind == "circle":
        yy, xx = np.mgrid[:16, :16]
        image[(yy - 8) ** 2 + (xx - 7 - k % 3) ** 2 < 20] = 255
    else:
        for row in range(10):
            image[3 + row, 8 - row // 2 : 8 + row // 2 + 1] = 200
    return Image.fromarray(image)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional run on a folder with a subfolder per class."""
    root = tmp_path_factory.mktemp("names")
    for kind in NAMES:
        (root / "pictures" / kind).mkdir(parents=True)
        for k in range(12):
            _picture(kind, k).save(root / "pictures" / kind / f"{k}.png")
    out = root / "run"
    assert main(["train", *TINY_RUN, "--data", f"folder:{root / 'pictures'}", "--conditional",
                 "--images", "64", "--out", str(out)]) == 0
    return out


def _pixels(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path))).float()


def _as_png_values(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round()[:, 0]


def test_the_checkpoint_keeps_the_folder_names(run: Path) -> None:
    config = load_checkpoint(run / "checkpoints" / "latest.pt")["generator_config"]
    assert config["num_classes"] == 3 and config["class_names"] == NAMES
    assert transgan.load_generator(run).class_names == tuple(NAMES)


def test_sample_takes_a_class_by_name(run: Path, tmp_path: Path) -> None:
    G = transgan.load_generator(run)
    for name in ("square", "red triangle"):
        out = tmp_path / name
        assert main(["sample", str(run), "--num", "2", "--class", name, "--out", str(out)]) == 0
        label = NAMES.index(name)
        expected = _as_png_values(generate(G, latents(2, G.latent_dim, 0),
                                           labels=torch.full((2,), label)))
        files = sorted(out.glob("*.png"))
        assert all(torch.equal(_pixels(f), e) for f, e in zip(files, expected, strict=True))
    # By index, as before: the same pictures as by name.
    assert main(["sample", str(run), "--num", "2", "--class", "2", "--out",
                 str(tmp_path / "two")]) == 0
    for a, b in zip(sorted((tmp_path / "two").glob("*.png")),
                    sorted((tmp_path / "square").glob("*.png")), strict=True):
        assert torch.equal(_pixels(a), _pixels(b))


def test_seeded_files_say_the_class_name(run: Path, tmp_path: Path) -> None:
    assert main(["sample", str(run), "--seeds", "0-11", "--out", str(tmp_path / "s")]) == 0
    suffixes = {f.stem.split("-", 1)[1] for f in (tmp_path / "s").glob("*.png")}
    assert suffixes == {"circle", "red_triangle", "square"}
    assert seed_file_name(3, "a/b c") == "seed0003-a_b_c.png"


def test_a_misspelt_class_is_one_line_naming_the_classes(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(run), "--class", "sqaure", "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip() == (
        "transgan: error: class 'sqaure' is not one of the model's 3 classes "
        "(circle, red triangle, square)")
    assert main(["interpolate", str(run), "--class", "square", "--rows", "1", "--steps", "2",
                 "--out", str(tmp_path / "walk.png")]) == 0


def test_export_card_and_onnx_carry_the_names(run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    assert main(["export", str(run), "--out", str(folder)]) == 0
    assert json.loads((folder / "config.json").read_text())["generator"]["class_names"] == NAMES
    card = (folder / "README.md").read_text()
    assert "| 1 | red triangle |" in card and "--class square --num 16" in card
    assert transgan.load_generator(folder).class_names == tuple(NAMES)
    onnx_file = tmp_path / "g.onnx"
    assert main(["export", str(run), "--out", str(onnx_file)]) == 0
    meta = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]
                                        ).get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == NAMES and meta["latent_dim"] == "16"


def test_the_server_names_the_classes_and_takes_them(run: Path) -> None:
    server = SampleServer(transgan.load_generator(run), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def get(query: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"{server.url}{query}", timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    try:
        assert json.loads(get("info")[1])["classes"] == NAMES
        by_name = get("sample.png?n=4&class=red%20triangle")
        assert by_name == get("sample.png?n=4&class=1") and by_name[0] == 200
        assert Image.open(io.BytesIO(by_name[1])).size[0] > 0
        status, reason = get("sample.png?class=sqaure")
        assert status == 400 and b"'sqaure' is not one of the model's 3 classes" in reason
        # The page's address may hold the class by name.
        assert get("?class=square&seed=3")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_class_names_are_checked_and_left_out_of_configs_without_them() -> None:
    cfg = GeneratorConfig(img_size=16, channels=1, latent_dim=16, bottom=8, width=32,
                          depths=(1, 1), num_classes=2, class_names=("cat", "dog"))
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert "class_names" not in config_to_dict(GeneratorConfig())
    for names, problem in ((("cat",), "1 names for 2 classes"), (("cat", "cat"), "twice"),
                           (("cat", ""), "non-empty")):
        with pytest.raises(ConfigError, match=problem):
            GeneratorConfig(img_size=16, latent_dim=16, bottom=8, width=32, depths=(1, 1),
                            num_classes=2, class_names=names)
    with pytest.raises(ConfigError, match="list of strings"):
        transgan.build_generator("digits", num_classes=2, class_names=[1, 2])


def test_a_name_wins_over_an_index_and_an_unconditional_model_takes_none() -> None:
    assert resolve_classes(["1", "0"], ["1", "0"]) == [0, 1]
    assert resolve_classes(["1"], ["b", "a"]) == [1]
    assert resolve_classes(None, ["a"]) is None
    with pytest.raises(ConfigError, match="unconditional"):
        resolve_classes(["a"], [])
