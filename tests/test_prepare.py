"""Tests of `transgan prepare` and of training data read from its archives (zip:PATH)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_files
from PIL import Image

from transgan.cli import main
from transgan.data import PreparedZipDataset, build_dataset, default_num_workers

RES = 8


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _solid(value: int, size: int = 12) -> Image.Image:
    return Image.new("RGB", (size, size), (value, 255 - value, 7))


def _class_folders(root: Path) -> Path:
    """cats/ and dogs/ with every kind of awkward file; the expected counts are in the test."""
    rgba = np.zeros((12, 12, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:, 6:, 3] = 255  # right half opaque red, left half transparent (-> white)
    sixteen = Image.fromarray(np.full((12, 12), 65535 // 4, dtype=np.uint16))
    assert sixteen.mode == "I;16"
    photo = _png(_solid(10, 16))
    return write_files(root, {
        "cats/a.png": photo,
        "cats/b_copy.png": photo,  # duplicate of a.png: dropped
        "cats/grey.png": _png(Image.new("L", (12, 12), 200)),
        "cats/rgba.png": _png(Image.fromarray(rgba, "RGBA")),
        "cats/tiny.png": _png(_solid(50, 5)),  # smaller than RES: upscaled
        "cats/wide.png": _png(_solid(90, 10).resize((20, 10))),
        "dogs/deep.png": _png(sixteen),
        "dogs/truncated.png": _png(_solid(120, 40))[:60],  # cut off: unreadable
        "dogs/text.jpg": b"not an image",  # unreadable
        "dogs/z.png": _png(_solid(200)),
        "dogs/notes.txt": b"not an image extension: ignored",
    })


def _prepare(*args: str) -> int:
    return main(["prepare", *args])


def test_prepare_counts_converts_and_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _class_folders(tmp_path / "src")
    out = tmp_path / "data.zip"
    assert _prepare(str(src), "--out", str(out), "--resolution", str(RES),
                    "--labels", "subfolders") == 0
    summary = capsys.readouterr().out.strip()
    assert summary == (f"wrote 7 images ({RES} px RGB, 2 classes) to {out}; skipped 2 "
                       f"unreadable; dropped 1 duplicates; upscaled 1 smaller than {RES} px; "
                       "converted 1 16-bit, 1 grayscale, 1 transparent")
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        meta = json.loads(archive.read("dataset.json"))
        images = {n: Image.open(io.BytesIO(archive.read(n))) for n in names if n.endswith(".png")}
    assert names == [f"00000/img0000000{i}.png" for i in range(7)] + ["dataset.json"]
    # Sorted source order: cats/a, grey, rgba, tiny, wide, then dogs/deep, z.
    assert meta["labels"] == [[f"00000/img0000000{i}.png", c] for i, c in
                              enumerate([0, 0, 0, 0, 0, 1, 1])]
    assert meta["class_names"] == ["cats", "dogs"]
    assert all(img.size == (RES, RES) and img.mode == "RGB" for img in images.values())
    rgba = np.asarray(images["00000/img00000002.png"])
    assert (rgba[:, 0] == 255).all() and tuple(rgba[4, -1]) == (255, 0, 0)

    # The 5 px picture is upscaled to RES, its solid colour kept.
    tiny = np.asarray(images["00000/img00000003.png"], dtype=np.int16)
    assert np.abs(tiny - np.array([50, 205, 7])).max() <= 1

    data = build_dataset(f"zip:{out}", RES, 3)
    assert isinstance(data, PreparedZipDataset)
    assert data.labels == [0, 0, 0, 0, 0, 1, 1] and data.num_classes == 2
    assert data.class_names == ["cats", "dogs"]
    assert default_num_workers(data) == 0
    # Pixel values survive: the solid colour (10, 245, 7) of a.png, 16-bit 1/4 grey -> 64.
    expected = torch.tensor([10, 245, 7], dtype=torch.float32) / 127.5 - 1
    assert torch.allclose(data[0][:, 3, 3], expected)
    assert torch.allclose(data[5], torch.full((3, RES, RES), 64 / 127.5 - 1))
    assert data.description == f"zip:{out}: 7 images, 2 classes"


def test_prepare_min_size_skips_and_the_report_lists_every_file(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _class_folders(tmp_path / "src")
    out, report = tmp_path / "data.zip", tmp_path / "report.csv"
    assert _prepare(str(src), "--out", str(out), "--resolution", "16", "--min-size", "8",
                    "--report", str(report)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # 12 and 10 px pictures are upscaled to 16; the 5 px one is below --min-size 8.
    assert lines[0] == (f"wrote 6 images (16 px RGB) to {out}; skipped 2 unreadable, "
                        "1 smaller than 8; dropped 1 duplicates; upscaled 5 smaller than 16 px; "
                        "converted 1 16-bit, 1 grayscale, 1 transparent")
    assert lines[1] == f"12 files not written as they were are listed in {report}"
    with report.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "outcome", "detail"]
    listed = {(name, outcome): detail for name, outcome, detail in rows[1:]}
    assert listed[("cats/tiny.png", "skipped")] == "5x5, smaller than --min-size 8"
    assert listed[("cats/b_copy.png", "dropped")] == "duplicate of an earlier file"
    assert listed[("dogs/text.jpg", "skipped")] == "unreadable or truncated"
    assert listed[("cats/grey.png", "converted")] == "grayscale to RGB"
    assert listed[("cats/wide.png", "upscaled")] == "20x10 to 16x16"
    assert len(rows) == 13 and ("cats/a.png", "upscaled") not in listed  # 16 px already


def test_prepare_crop_none_channels_one_and_unlabelled(tmp_path: Path) -> None:
    src = _class_folders(tmp_path / "src")
    out = tmp_path / "grey.zip"
    assert _prepare(str(src), "--out", str(out), "--resolution", str(RES), "--crop", "none",
                    "--channels", "1") == 0
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("dataset.json")) == {"labels": None}
    data = build_dataset(f"zip:{out}", RES, 1)
    assert len(data) == 6  # wide.png is not square; tiny.png is upscaled
    assert data.labels is None and data.num_classes == 0
    assert data[0].shape == (1, RES, RES)
    # A prepared archive read at another size or channel count is converted once at load.
    assert build_dataset(f"zip:{out}", 4, 3)[0].shape == (3, 4, 4)


def test_prepare_from_zip_with_label_file_is_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "src.zip"
    with zipfile.ZipFile(source, "w") as archive:
        for i in range(3):
            archive.writestr(f"imgs/{i}.png", _png(_solid(40 * i)))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": [["imgs/0.png", 2], ["imgs/1.png", 0],
                                             ["imgs/2.png", 5]]}))
    outs = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for out in outs:
        assert _prepare(str(source), "--out", str(out), "--resolution", "4",
                        "--labels", str(labels)) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    data = build_dataset(f"zip:{outs[0]}", 4, 3)
    assert data.labels == [2, 0, 5] and data.num_classes == 6
    assert not list(tmp_path.glob("*.partial"))


def _mismatched_labels(tmp_path: Path) -> list[str]:
    src = write_files(tmp_path / "src", {"a.png": _png(_solid(1)), "b.png": _png(_solid(2))})
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": [["a.png", 0], ["c.png", 1]]}))
    return [str(src), "--labels", str(labels)]


def _empty_class(tmp_path: Path) -> list[str]:
    src = write_files(tmp_path / "src", {"cats/a.png": _png(_solid(1))})
    (src / "dogs").mkdir()
    return [str(src), "--labels", "subfolders"]


def _loose_image(tmp_path: Path) -> list[str]:
    src = write_files(tmp_path / "src", {"cats/a.png": _png(_solid(1)), "b.png": _png(_solid(2))})
    return [str(src), "--labels", "subfolders"]


def _unwritable(tmp_path: Path) -> list[str]:
    src = write_files(tmp_path / "src", {"a.png": _png(_solid(1))})
    not_a_folder = write_files(tmp_path, {"file.txt": b"text"}) / "file.txt"
    return [str(src), "--out", str(not_a_folder / "data.zip")]


@pytest.mark.parametrize(("make", "message"), [
    (_mismatched_labels, "does not match the images: 1 have no label (first: b.png)"),
    (_empty_class, "class folder 'dogs' has no images"),
    (_loose_image, "1 images are not in a class folder (first: b.png)"),
    (lambda tmp: [str(tmp / "missing")], "source does not exist"),
    (_unwritable, "cannot write"),
])
def test_bad_input_is_one_line_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture, make, message: str
) -> None:
    args = make(tmp_path)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out.zip")]
    assert _prepare(*args, "--resolution", "4") == 2
    err = capsys.readouterr().err
    assert err.startswith("transgan: error: ") and message in err
    assert err.count("\n") == 1
    assert not list(tmp_path.rglob("*.zip*"))


def test_prepared_archive_with_mismatched_dataset_json(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("00000/img00000000.png", _png(_solid(3)))
        opened.writestr("dataset.json", json.dumps({"labels": [["other.png", 0]]}))
    assert main(["train", "--data", f"zip:{archive}", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "dataset.json does not match the images (first mismatch: 00000/img00000000.png)" in err


def test_train_on_a_prepared_zip(tmp_path: Path, tiny_run_args: list[str]) -> None:
    files = {f"d{i // 8}/{i}.png": _png(_solid(7 * i, 16)) for i in range(16)}
    src = write_files(tmp_path / "src", files)
    out = tmp_path / "data.zip"
    assert _prepare(str(src), "--out", str(out), "--resolution", "16",
                    "--labels", "subfolders") == 0
    run = tmp_path / "run"
    assert main(["train", *tiny_run_args, "--data", f"zip:{out}", "--out", str(run),
                 "--images", "32"]) == 0
    assert "(16 images, 0 unreadable skipped)" in (run / "log.txt").read_text()
