"""Progress of eval, prepare and the readability scan: a bar on a terminal, plain lines in a
log file or pipe (never carriage-return frames)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from conftest import TINY_RUN
from PIL import Image

from transgan.cli import main
from transgan.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_at_every_tenth_off_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(1000, "features", "img", stream=stream) as progress:
        for _ in range(40):
            progress.update(25)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split(" | ")[0] for line in lines] == [
        f"features: {n:,}/1,000 img ({n // 10}%)" for n in range(100, 1001, 100)]
    assert lines[-1].endswith("ETA 0:00:00") and " img/s | " in lines[-1]


def test_a_bar_on_a_terminal_and_nothing_when_disabled() -> None:
    terminal, quiet = _Terminal(), io.StringIO()
    with Progress(10, "packing", "img", stream=terminal) as bar:
        bar.update(10)
    with Progress(10, "packing", "img", enabled=False, stream=quiet) as off:
        off.update(10)
    assert "\r" in terminal.getvalue() and "10/10" in terminal.getvalue()
    assert quiet.getvalue() == ""


def test_prepare_off_a_terminal_logs_plain_lines(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "pictures"
    src.mkdir()
    for index in range(20):
        Image.new("RGB", (16, 16), (index * 10, 0, 0)).save(src / f"{index:02d}.png")
    out = tmp_path / "data.zip"
    assert main(["prepare", str(src), "--out", str(out), "--resolution", "8"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    packing = [line for line in err.splitlines() if line.startswith("packing: ")]
    assert len(packing) == 10 and packing[-1].startswith("packing: 20/20 img (100%)")
    assert len(zipfile.ZipFile(out).namelist()) == 21


def test_eval_off_a_terminal_logs_plain_lines(tmp_path: Path, digits_cache: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--images", "32", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "digits-fid", "--num", "200",
                 "--out", str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if "/200 img (" in line]
    assert lines and lines[-1].split(" | ")[0].endswith("200/200 img (100%)")


def test_slow_work_says_the_time_a_unit_takes() -> None:
    from transgan.progress import format_speed

    assert format_speed(412.4, "img") == "412 img/s"
    assert format_speed(1 / 36.1, "preset") == "36.1 s/preset"
    assert format_speed(0.0, "img") == "0 img/s"
