"""Class-conditional sampling from the command line and the sampling server."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import transgan
from transgan.cli import main
from transgan.sampling import generate, latents
from transgan.serve import SampleServer

TILE = 64 + 2  # 16 px samples are enlarged to 64 px tiles with 2 px padding
CLASSES = 10


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained conditional digits generator saved as a model folder."""
    path = tmp_path_factory.mktemp("conditional") / "model"
    torch.manual_seed(0)
    transgan.build_generator("digits", width=32, depths=[1, 1], latent_dim=16,
                             num_classes=CLASSES).save_pretrained(path)
    return path


def _png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path))).float()


def test_sample_class_draws_that_class(model_dir: Path, tmp_path: Path) -> None:
    assert main(["sample", str(model_dir), "--num", "3", "--class", "7", "--out",
                 str(tmp_path / "seven")]) == 0
    G = transgan.load_generator(model_dir)
    z = latents(3, G.latent_dim, 0)
    for label in (7, 2):
        expected = generate(G, z, labels=torch.full((3,), label))
        expected = ((expected.clamp(-1, 1) + 1) * 127.5).round()[:, 0]
        files = sorted((tmp_path / "seven").glob("*.png"))
        same = all(torch.equal(_png(f), e) for f, e in zip(files, expected, strict=True))
        assert same == (label == 7)


def test_a_seeds_class_and_sample_depend_on_the_seed_alone(model_dir: Path,
                                                           tmp_path: Path) -> None:
    assert main(["sample", str(model_dir), "--seeds", "0-35", "--out", str(tmp_path / "a")]) == 0
    assert main(["sample", str(model_dir), "--seeds", "1", "--out", str(tmp_path / "b")]) == 0
    files = {f.name.split("-")[0]: f for f in (tmp_path / "a").glob("*.png")}
    (alone,) = (tmp_path / "b").glob("*.png")
    assert alone.name == files["seed0001"].name  # the same class, said in the file name
    assert torch.equal(_png(alone), _png(files["seed0001"]))
    # Drawn, not cycled: 36 seeds over 10 classes reach every class.
    drawn = {int(f.stem.split("-")[1]) for f in files.values()}
    assert drawn == set(range(CLASSES))
    assert main(["sample", str(model_dir), "--seeds", "0-5", "--class", "3,5",
                 "--out", str(tmp_path / "c")]) == 0
    assert {f.stem.split("-")[1] for f in (tmp_path / "c").glob("*.png")} <= {"3", "5"}


def test_generating_commands_take_device_auto(model_dir: Path, tmp_path: Path) -> None:
    # --device auto is CUDA where present, else the CPU, as for training.
    assert main(["sample", str(model_dir), "--num", "10", "--device", "auto", "--out",
                 str(tmp_path / "auto")]) == 0
    assert len(list((tmp_path / "auto").glob("*.png"))) == 10
    assert main(["interpolate", str(model_dir), "--rows", "1", "--steps", "2", "--device",
                 "auto", "--out", str(tmp_path / "walk.png")]) == 0
    assert (tmp_path / "walk.png").is_file()


def test_an_image_file_out_is_one_grid_and_other_files_are_refused(
        model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.png"
    assert main(["sample", str(model_dir), "--num", "20", "--out", str(out)]) == 0
    assert out.is_file() and Image.open(out).size == (2 * TILE + 2, CLASSES * TILE + 2)
    assert main(["sample", str(model_dir), "--num", "4", "--out", str(tmp_path / "x.tiff")]) == 2
    err = capsys.readouterr().err
    assert "a folder, or a file ending in .png, .jpg, .jpeg, .webp" in err
    assert not (tmp_path / "x.tiff").exists()


def test_grid_has_one_row_per_class(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["sample", str(model_dir), "--num", "20", "--grid", "--out", str(out)]) == 0
    width, height = Image.open(out).size
    assert (width, height) == (2 * TILE + 2, CLASSES * TILE + 2)
    assert main(["sample", str(model_dir), "--num", "6", "--grid", "--class", "1,4,5",
                 "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * TILE + 2, 3 * TILE + 2)


def test_a_num_short_of_whole_rows_is_rounded_up_so_every_class_has_its_row(
        model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    assert main(["sample", str(model_dir), "--num", "16", "--grid", "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * TILE + 2, CLASSES * TILE + 2)
    assert capsys.readouterr().out.strip() == (
        f"wrote a grid of 20 samples to {out} (--num 16 rounded up to 2 for each of 10 classes)")
    G = transgan.load_generator(model_dir)
    nine = generate(G, latents(20, G.latent_dim, 0), labels=torch.full((20,), 9))[-2:]
    tiles = _png(out)[-TILE - 1 : -1, 1:-1].reshape(TILE, 2, TILE)
    expected = ((nine.clamp(-1, 1) + 1) * 127.5).round()[:, 0]
    for column in range(2):  # the last row draws class 9 (each tile is a 4x enlargement)
        drawn = tiles[1:-1, column, 1:-1][::4, ::4][: expected.shape[-1], : expected.shape[-1]]
        assert torch.equal(drawn, expected[column])


def test_interpolation_rows_keep_their_class(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "walk.png"
    assert main(["interpolate", str(model_dir), "--rows", "2", "--steps", "3", "--class", "5",
                 "--out", str(out)]) == 0
    assert Image.open(out).size == (3 * TILE + 2, 2 * TILE + 2)


def test_an_empty_class_in_the_list_is_a_usage_error(
        model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(model_dir), "--class", "1,,2"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("transgan: error: argument --class")


@pytest.mark.parametrize("text", ["x", "-1", "10"])
def test_a_class_the_model_lacks_is_one_line_naming_its_classes(
        model_dir: Path, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(model_dir), "--class", text, "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"transgan: error: class '{text}' is not one of the model's 10 classes "
        "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)")
    assert not (tmp_path / "s").exists()


def test_class_of_an_unconditional_generator_is_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain"
    transgan.build_generator("digits", width=32, depths=[1, 1], latent_dim=16
                             ).save_pretrained(path)
    assert main(["sample", str(path), "--class", "1", "--out", str(tmp_path / "s")]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_server_draws_the_requested_class(model_dir: Path) -> None:
    server = SampleServer(transgan.load_generator(model_dir), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        def get(query: str) -> bytes:
            with urllib.request.urlopen(f"{server.url}{query}", timeout=30) as response:
                return response.read()

        info = json.loads(get("info"))
        assert info["conditional"] and info["classes"] == [str(k) for k in range(CLASSES)]
        two, three = get("sample.png?n=4&class=2"), get("sample.png?n=4&class=3")
        assert two != three and two == get("sample.png?n=4&class=2")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_every_class_gets_a_row_of_the_page(model_dir: Path) -> None:
    generator = transgan.load_generator(model_dir)
    server = SampleServer(generator, port=0)
    drawn: list[torch.Tensor] = []
    generator.register_forward_pre_hook(lambda module, args: drawn.append(args[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # (images asked, images a class row): whole rows, at least one image of every class
        for n, columns in ((64, 6), (16, 1), (4, 1)):
            for query in (f"sample.png?n={n}", f"interpolate.png?n={n}&t=0.5"):
                drawn.clear()
                with urllib.request.urlopen(f"{server.url}{query}", timeout=30) as response:
                    size = Image.open(io.BytesIO(response.read())).size
                assert size == (columns * TILE + 2, CLASSES * TILE + 2)
                assert torch.equal(torch.cat(drawn),
                                   torch.arange(CLASSES).repeat_interleave(columns))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

