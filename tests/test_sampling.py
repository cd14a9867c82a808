"""Sample grids (layout against torchvision's make_grid, grayscale, enlargement), seed ranges
and truncated latents, through the library and ``transgan sample`` / ``interpolate``."""

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torchvision.utils import make_grid

import transgan
from transgan.cli import main
from transgan.cli.parsing import seed_list, truncation_list
from transgan.sampling import (
    enlarge_small,
    generate,
    grid_image,
    grid_tensor,
    latents,
    seed_latents,
    to_uint8,
    truncate,
)


@pytest.mark.parametrize(("n", "nrow"), [(2, 1), (5, 3), (6, 3), (4, 8)])
def test_grid_matches_torchvision_layout(n: int, nrow: int) -> None:
    torch.manual_seed(0)
    images = torch.rand(n, 3, 64, 64) * 2 - 1
    expected = make_grid(to_uint8(images), nrow=nrow, padding=2, pad_value=255)
    assert torch.equal(grid_tensor(images, nrow), expected)


def test_gray_grid_keeps_one_channel_and_enlarges_small_tiles() -> None:
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    grid = grid_tensor(images, nrow=2)
    tile = enlarge_small(images).shape[-1]
    assert tile >= 64
    assert grid.shape == (1, 2 * (tile + 2) + 2, 2 * (tile + 2) + 2)
    assert grid_image(images).mode == "L"


# ---- seeds and truncation ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained digits generator saved as a model folder."""
    path = tmp_path_factory.mktemp("sampling") / "model"
    torch.manual_seed(0)
    transgan.build_generator("digits", width=32, depths=[1, 1], latent_dim=16).save_pretrained(path)
    return path


TILE = 64  # 16 px samples are enlarged to 64 px tiles


def _pixels(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def test_seed_list_reads_ranges_in_order() -> None:
    assert seed_list("0-3,40") == [0, 1, 2, 3, 40]
    assert seed_list("7") == [7]
    assert seed_list(" 9-9 , 2") == [9, 2]
    for bad in ("5-2", "a", "", "1,,2", "-3", "3-", "1-2-3", "1,2,1", "0-3,2", "0-2000000"):
        with pytest.raises(argparse.ArgumentTypeError):
            seed_list(bad)


def test_truncation_list_reads_psi_and_none() -> None:
    assert truncation_list("0.5,0.7,1,none") == [0.5, 0.7, 1.0, None]
    for bad in ("0", "-1", "nan", "inf", "x", "0.5,0.5", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            truncation_list(bad)


@pytest.mark.parametrize("psi", [0.05, 0.5, 1.0, 2.0])
def test_truncated_latents_follow_the_truncated_normal(psi: float) -> None:
    z = latents(500, 64, seed=3, truncation=psi)
    assert z.dtype == torch.float32 and z.abs().max() <= psi
    fit = stats.kstest(z.double().flatten().numpy(), stats.truncnorm(-psi, psi).cdf)
    assert fit.pvalue > 1e-3
    plain = latents(500, 64, seed=3)
    # The same draws mapped monotonically: signs and order kept, nothing changed without psi.
    assert torch.equal(z.sign(), plain.sign())
    assert torch.equal(z[0].argsort(), plain[0].argsort())
    assert torch.equal(latents(500, 64, seed=3, truncation=None), plain)
    assert torch.allclose(truncate(plain, 40.0), plain)


def test_a_seeds_latent_does_not_depend_on_the_other_seeds() -> None:
    alone = seed_latents([40], 16, truncation=0.7)
    listed = seed_latents([0, 1, 2, 40], 16, truncation=0.7)
    assert torch.equal(listed[3], alone[0])
    assert torch.equal(alone, latents(1, 16, seed=40, truncation=0.7))


def test_sample_seeds_names_files_by_seed_and_each_is_reproducible(
    model_dir: Path, tmp_path: Path
) -> None:
    assert main(["sample", str(model_dir), "--seeds", "0-3,40", "--out", str(tmp_path / "a")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png",
                     "seed0040.png"]
    assert main(["sample", str(model_dir), "--seeds", "40", "--out", str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(_pixels(tmp_path / "b" / "seed0040.png"),
                                  _pixels(tmp_path / "a" / "seed0040.png"))
    # One seed is the same sample as `--seed S --num 1`.
    assert main(["sample", str(model_dir), "--seed", "40", "--num", "1",
                 "--out", str(tmp_path / "c")]) == 0
    np.testing.assert_array_equal(_pixels(tmp_path / "c" / "000000.png"),
                                  _pixels(tmp_path / "b" / "seed0040.png"))


def test_sample_seeds_grid_is_in_seed_order(model_dir: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    assert main(["sample", str(model_dir), "--seeds", "3,1", "--out", str(grid)]) == 0
    G = transgan.load_generator(model_dir)
    expected = grid_image(generate(G, seed_latents([3, 1], G.latent_dim)), nrow=2)
    np.testing.assert_array_equal(_pixels(grid), np.array(expected))


def _exit_code(argv: list[str]) -> int:
    """``transgan`` 's exit status, whether argparse or the command refused."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--seeds", "5-2"], "the seed range 5-2 runs backwards"),
    (["--seeds", "a"], "expected seeds like 0-35,40"),
    (["--seeds", ""], "expected seeds like 0-35,40"),
    (["--seeds", "0-3", "--num", "4"], "leave out --seed and --num"),
    (["--seeds", "0-3", "--seed", "1"], "leave out --seed and --num"),
    (["--truncation", "0"], "the truncation PSI must be > 0"),
])
def test_bad_seeds_and_truncation_are_one_line_errors(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
    message: str,
) -> None:
    out = tmp_path / "s"
    assert _exit_code(["sample", str(model_dir), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("transgan: error:") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_sample_truncation_draws_bounded_latents_and_changes_the_samples(
    model_dir: Path, tmp_path: Path
) -> None:
    for name, extra in (("plain", []), ("psi", ["--truncation", "0.5"])):
        argv = ["sample", str(model_dir), "--seeds", "0-7", *extra, "--out", str(tmp_path / name)]
        assert main(argv) == 0
    G = transgan.load_generator(model_dir)
    z = seed_latents(range(8), G.latent_dim, truncation=0.5)
    assert z.abs().max() <= 0.5 < seed_latents(range(8), G.latent_dim).abs().max()
    expected = to_uint8(generate(G, z))[:, 0].numpy()
    files = sorted((tmp_path / "psi").iterdir())
    assert [f.name for f in files] == [f"seed{s:04d}.png" for s in range(8)]
    for file, image in zip(files, expected, strict=True):
        np.testing.assert_array_equal(_pixels(file), image)
        assert not np.array_equal(_pixels(file), _pixels(tmp_path / "plain" / file.name))


def test_interpolate_seeds_walk_from_seed_to_seed(model_dir: Path, tmp_path: Path) -> None:
    strip = tmp_path / "walk.png"
    argv = ["interpolate", str(model_dir), "--seeds", "3,7,9", "--steps", "3",
            "--truncation", "0.8", "--out", str(strip)]
    assert main(argv) == 0
    assert main(["sample", str(model_dir), "--seeds", "3,7,9", "--truncation", "0.8",
                 "--out", str(tmp_path / "ends")]) == 0
    ends = [_pixels(tmp_path / "ends" / f"seed{s:04d}.png") for s in (3, 7, 9)]
    grid, tile = _pixels(strip), TILE + 2

    def step(row: int, column: int) -> np.ndarray:
        """The 16 px image at (row, column) of the strip, whose tiles are 4x enlarged."""
        top, left = 2 + row * tile, 2 + column * tile
        return grid[top : top + TILE : 4, left : left + TILE : 4]

    # Row 0 walks 3 -> 7 and row 1 walks 7 -> 9: their ends are the seeds' samples.
    for row, column, end in ((0, 0, 0), (0, 2, 1), (1, 0, 1), (1, 2, 2)):
        np.testing.assert_array_equal(step(row, column), ends[end])
    assert _exit_code(["interpolate", str(model_dir), "--seeds", "3", "--out", str(strip)]) == 2
    assert _exit_code(["interpolate", str(model_dir), "--seeds", "1,2", "--rows", "2",
                       "--out", str(strip)]) == 2
