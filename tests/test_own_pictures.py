"""A folder of one's own pictures: the data decides the models, presets are fitted to the data
with a line saying how, and every problem is listed before the run directory exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from transgan import load_generator
from transgan.cli import build_parser, main
from transgan.cli.train import train_plan_from_args
from transgan.data.profile import DataProfile, profile_data
from transgan.train.data_choice import choose

# Small enough for a few steps a second: the chosen preset's models, made narrow and shallow.
SMALL = ["--gen", "width=32", "--gen", "depths=[1,0,0]", "--gen", "latent_dim=16",
         "--disc", "width=32", "--disc", "depth=1"]
SHORT = ["--images", "48", "--batch", "16", "--log-every", "48", "--sample-every", "48",
         "--checkpoint-every", "48", "--num-samples", "16", "--no-progress", "--device", "cpu"]


def _pictures(root: Path, count: int, *, gray: bool = False, seed: int = 0) -> Path:
    """``count`` smooth pictures of 40-72 px (colour, or gray stored as RGB), PNG and JPEG."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = (int(v) for v in rng.integers(40, 73, size=2))
        coarse = rng.integers(0, 256, size=(3, 3, 1 if gray else 3), dtype=np.uint8)
        coarse = np.repeat(coarse, 3, axis=2) if gray else coarse
        img = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        img.save(root / (f"{i:03d}.jpg" if i % 2 else f"{i:03d}.png"))
    return root


def _train(*argv: str) -> int:
    return main(["train", *argv, *SHORT])


def test_a_flat_folder_trains_unconditional_in_rgb_at_the_printed_resolution(
        tmp_path: Path) -> None:
    data = _pictures(tmp_path / "mine", 40)
    run = tmp_path / "run"
    assert _train("--data", f"folder:{data}", "--out", str(run), *SMALL) == 0
    log = (run / "log.txt").read_text()
    assert f"folder:{data}: 40 colour images of " in log
    assert "model chosen for the data: tiny-32, 32 px RGB (pictures of median side" in log
    assert "training tiny-32 on" in log and "| 32 px RGB, unconditional |" in log
    options = yaml.safe_load((run / "options.yaml").read_text())
    assert options["preset"] == "tiny-32" and options["conditional"] is False
    reals = Image.open(run / "samples" / "reals.png")
    assert reals.mode == "RGB"
    pixels = np.asarray(reals, dtype=np.int16)
    assert (pixels.max(-1) - pixels.min(-1)).max() > 50  # colour, not gray levels
    G = load_generator(run)
    assert (G.config.img_size, G.config.channels, G.num_classes) == (32, 3, 0)
    assert G(torch.randn(2, G.latent_dim)).shape == (2, 3, 32, 32)
    # The same command, longer, resumes the run: the data chooses the same models again.
    assert main(["train", "--data", f"folder:{data}", "--out", str(run), *SMALL, *SHORT[2:],
                 "--images", "96"]) == 0
    assert "resumed at 48 images" in (run / "log.txt").read_text()


def test_gray_pictures_get_grayscale_models_and_resolution_64_on_request(tmp_path: Path) -> None:
    data = _pictures(tmp_path / "gray", 20, gray=True)
    run = tmp_path / "run"
    assert _train("--data", f"folder:{data}", "--resolution", "64", "--out", str(run),
                  *SMALL, "--gen", "depths=[1,0,0,0]") == 0
    log = (run / "log.txt").read_text()
    assert "20 grayscale images" in log
    assert "model chosen for the data: tiny-64, 64 px grayscale (--resolution" in log
    assert "| 64 px grayscale, unconditional |" in log


def test_a_labelled_folder_trains_class_conditional_with_conditional(tmp_path: Path) -> None:
    for k, kind in enumerate(("apples", "pears")):
        _pictures(tmp_path / "fruit" / kind, 10, seed=k)
    run = tmp_path / "run"
    assert _train("--data", f"folder:{tmp_path / 'fruit'}", "--conditional", "--out", str(run),
                  *SMALL) == 0
    log = (run / "log.txt").read_text()
    assert "| 32 px RGB, 2 classes |" in log
    assert load_generator(run).num_classes == 2
    # Conditional runs collapse to one picture a class without mode seeking: on, and said.
    assert "--conditional: mode seeking 0.25 keeps the samples of each class varied" in log
    assert yaml.safe_load((run / "options.yaml").read_text())["mode_seeking"] == 0.25
    args = build_parser().parse_args(["train", "--data", f"folder:{tmp_path / 'fruit'}",
                                      "--conditional", "--mode-seeking", "0"])
    opts, _, fit = train_plan_from_args(args)
    assert opts.objective.mode_seeking == 0 and not any("mode seeking" in n for n in fit.notes)


def test_a_preset_is_built_for_the_datas_channels_with_a_line(tmp_path: Path) -> None:
    data = _pictures(tmp_path / "mine", 20)
    run = tmp_path / "run"
    assert _train("--preset", "digits-vit", "--data", f"folder:{data}", "--out", str(run),
                  "--gen", "width=32", "--disc", "width=32", "--disc", "depth=1") == 0
    log = (run / "log.txt").read_text()
    assert (f"preset digits-vit makes grayscale images; built for folder:{data}'s colour images "
            "instead (3 channels)") in log
    assert "are resized to digits-vit's 16 px" in log and "| 16 px RGB, unconditional |" in log
    assert load_generator(run).config.channels == 3


def test_no_data_keeps_the_conditional_digits_demo() -> None:
    opts, _, fit = train_plan_from_args(build_parser().parse_args(["train"]))
    assert (opts.preset, opts.conditional, fit) == ("digits-conditional", True, None)
    opts, _, fit = train_plan_from_args(build_parser().parse_args(["train", "--data", "digits"]))
    assert (opts.preset, opts.conditional) == ("digits", False) and fit is not None


@pytest.mark.parametrize(("argv", "message"), [
    (["--conditional"], "--conditional needs class labels, but folder:"),
    (["--preset", "digits-conditional"], "or train without classes: --no-conditional"),
    (["--batch", "64"], "the data holds 40 usable images, fewer than one batch of 64: add "
                        "pictures or use --batch 32 or less"),
    (["--resolution", "48"], "--resolution 48: the models chosen for data on a CPU are 32 px "
                             "(tiny-32), 64 px (tiny-64); name a 48 px preset with --preset "
                             "(transgan-stl10, transgan-v2-stl10)"),
    (["--preset", "digits", "--resolution", "32"], "--resolution 32 does not match preset digits "
                                                   "(16 px)"),
])
def test_each_mismatch_is_one_line_with_its_fix_before_the_run_directory(
        argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _pictures(tmp_path / "mine", 40)
    run = tmp_path / "run"
    assert main(["train", "--data", f"folder:{data}", "--out", str(run), "--device", "cpu",
                 *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("transgan: error: ") and message in err and err.count("\n") == 1
    assert not run.exists()


def test_every_problem_is_listed_at_once(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = _pictures(tmp_path / "mine", 20)
    run = tmp_path / "run"
    assert main(["train", "--data", f"folder:{data}", "--out", str(run), "--device", "cpu",
                 "--conditional", "--lr-g", "0"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "transgan: error: 3 problems, nothing was started:"
    assert lines[1] == "  - --lr-g must be positive, got 0.0"
    assert lines[2].startswith("  - the data holds 20 usable images, fewer than one batch of 32")
    assert lines[3].startswith("  - --conditional needs class labels") and len(lines) == 4
    assert not run.exists()


def test_the_profile_reads_colour_size_and_labels(tmp_path: Path) -> None:
    colour = profile_data(f"folder:{_pictures(tmp_path / 'colour', 9)}")
    assert colour is not None and (colour.count, colour.channels, colour.labelled) == (9, 3, False)
    assert 40 <= colour.side <= 72
    gray = profile_data(f"folder:{_pictures(tmp_path / 'gray', 5, gray=True)}")
    assert gray is not None and gray.channels == 1  # gray levels stored as RGB JPEG and PNG
    _pictures(tmp_path / "kinds" / "a", 2)
    _pictures(tmp_path / "kinds" / "b", 2, gray=True)
    kinds = profile_data(f"folder:{tmp_path / 'kinds'}")
    assert kinds is not None and kinds.labelled and kinds.channels == 3 and kinds.count == 4
    assert profile_data(f"folder:{tmp_path / 'missing'}") is None
    assert profile_data("cifar10") == DataProfile(50000, 3, 32, True)


@pytest.mark.parametrize(("side", "device", "resolution", "preset"), [
    (56, "cpu", None, "tiny-32"), (20, "cpu", None, "tiny-32"), (500, "cpu", None, "tiny-32"),
    (56, "cpu", 64, "tiny-64"), (56, "cuda", None, "transgan-stl10"),
    (20, "cuda", None, "transgan-s"), (100, "cuda", None, "transgan-celeba64"),
    (300, "cuda", None, "transgan-v2-church256"), (300, "cuda", 128, "transgan-v2-celeba128"),
])
def test_the_preset_for_the_data(side: int, device: str, resolution: int | None,
                                 preset: str) -> None:
    fit = choose("folder:x", DataProfile(100, 3, side, False), device, resolution)
    assert fit.preset == preset and not fit.problems and fit.channels is None
    gray = choose("folder:x", DataProfile(100, 1, side, False), device, resolution)
    assert gray.preset == preset and gray.channels == 1


def test_a_bare_folder_or_zip_path_is_read_as_folder_or_zip(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transgan.data.specs import data_spec_from_path

    data = _pictures(tmp_path / "pics", 4)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics.zip").write_bytes(b"PK")
    (tmp_path / "digits").mkdir()  # a folder named like a data set does not shadow it
    assert data_spec_from_path("./pics") == "folder:./pics"
    assert data_spec_from_path("pics.zip") == "zip:pics.zip"
    assert data_spec_from_path("digits") == "digits"
    assert data_spec_from_path("folder:pics") == "folder:pics"
    assert data_spec_from_path("nowhere") == "nowhere"
    args = build_parser().parse_args(["train", "--data", str(data), "--out", "run"])
    opts, _, _ = train_plan_from_args(args)
    assert opts.data == f"folder:{data}" and opts.preset == "tiny-32"


def test_options_of_other_trainers_get_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "--kimg", "100", "--outdir", "runs", "--mirror=1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kimg: use --images N" in err[0], err
    assert "--outdir: use --out RUN_DIR" in err[0] and "--mirror: use --hflip" in err[0]
