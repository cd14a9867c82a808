"""Tests of transgan.data: digits, CIFAR-10 on a fake archive, folders, zips, flips and loaders."""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import write_files
from PIL import Image
from torch.utils.data import DataLoader

from transgan.data import DATA_SPECS_HELP, build_dataset, default_num_workers, load_digits_split
from transgan.data.specs import NAMED_SETS, PATH_SETS, is_digits_spec, may_download
from transgan.errors import DataError
from transgan.lazy import load

# ---------------------------------------------------------------- digits


@pytest.mark.parametrize("resolution", [16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_digits_shapes_and_range(resolution: int, channels: int) -> None:
    data = build_dataset("digits", resolution, channels)
    assert len(data) == 1797
    assert data.skipped == 0
    assert data.description == "digits: 1797 images"
    item = data[5]
    assert item.shape == (channels, resolution, resolution)
    assert item.dtype == torch.float32
    everything = torch.stack([data[i] for i in range(0, len(data), 7)])
    assert everything.min() >= -1.0 and everything.max() <= 1.0
    assert everything.min() < -0.99
    assert everything.max() > 0.7


def test_digits_grey_rgb_channels_are_equal() -> None:
    item = build_dataset("digits", 16, 3)[0]
    assert torch.equal(item[0], item[1]) and torch.equal(item[1], item[2])


def test_digits_downscale_stays_in_range() -> None:
    item = build_dataset("digits", 4, 1)[0]
    assert item.shape == (1, 4, 4)
    assert item.min() >= -1.0 and item.max() <= 1.0


def test_digits_splits_sizes_disjoint_and_deterministic() -> None:
    train_x, train_y = load_digits_split("train")
    test_x, test_y = load_digits_split("test")
    all_x, all_y = load_digits_split("all")
    assert train_x.shape == (1437, 8, 8) and test_x.shape == (360, 8, 8)
    assert len(train_y) == 1437 and len(test_y) == 360 and len(all_y) == 1797
    assert all_x.max() == 16 and all_x.min() == 0
    # Together the splits are the whole set, in order, so no image is in both.
    assert np.array_equal(np.concatenate([train_x, test_x]), all_x)
    assert np.array_equal(np.concatenate([train_y, test_y]), all_y)
    again_x, again_y = load_digits_split("train")
    assert np.array_equal(again_x, train_x) and np.array_equal(again_y, train_y)
    assert len(build_dataset("digits-train", 8, 1)) == 1437
    assert len(build_dataset("digits-test", 8, 1)) == 360
    with pytest.raises(DataError):
        load_digits_split("validation")


def test_digits_items_are_deterministic() -> None:
    first = build_dataset("digits", 16, 1)
    second = build_dataset("digits", 16, 1)
    assert torch.equal(first[100], second[100])


# ---------------------------------------------------------------- spec and argument errors


def test_unknown_spec_lists_accepted_forms() -> None:
    with pytest.raises(DataError) as info:
        build_dataset("imagenet", 32, 3)
    assert DATA_SPECS_HELP in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("resolution, channels", [(0, 3), (-8, 1), (16, 2), (16, 4), (16.0, 3)])
def test_bad_resolution_or_channels(resolution: int, channels: int) -> None:
    with pytest.raises(DataError):
        build_dataset("digits", resolution, channels)


# ---------------------------------------------------------------- cifar10


def _write_pickle(path: Path, payload: dict[str, object]) -> str:
    path.write_bytes(pickle.dumps(payload))
    return hashlib.md5(path.read_bytes()).hexdigest()


def _fake_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch, per_batch: int = 4) -> np.ndarray:
    """Write a small archive in torchvision's layout; point torchvision's md5s at its files.

    The real files are Python 2 pickles whose str keys load as str under encoding="latin1",
    so str keys here read back the same way.
    """
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_list = []
    first_batch = None
    for index in range(1, 6):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        if first_batch is None:
            first_batch = data
        labels = [int(x) for x in rng.integers(0, 10, size=per_batch)]
        name = f"data_batch_{index}"
        train_list.append([name, _write_pickle(folder / name, {"data": data, "labels": labels})])
    test_data = {"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)}
    test_md5 = _write_pickle(folder / "test_batch", {**test_data, "labels": [0] * per_batch})
    names = [f"class{i}" for i in range(10)]
    meta_md5 = _write_pickle(folder / "batches.meta", {"label_names": names})
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", test_md5]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": meta_md5})
    assert first_batch is not None
    return first_batch


def test_cifar10_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first_batch = _fake_cifar10(tmp_path, monkeypatch)
    data = build_dataset("cifar10", 32, 3, root=tmp_path, download=False)
    assert len(data) == 20
    assert data.skipped == 0
    item = data[0]
    assert item.shape == (3, 32, 32)
    # Rows of the archive are planes R, G, B of 32x32 each, row-major.
    planes = first_batch[0].reshape(3, 32, 32)
    for channel, row, col in [(0, 0, 0), (1, 5, 7), (2, 31, 31)]:
        expected = planes[channel, row, col] / 127.5 - 1.0
        assert item[channel, row, col].item() == pytest.approx(expected, abs=1e-6)

    assert data.num_classes == 10 and data.class_names == [f"class{i}" for i in range(10)]
    assert data.labels is not None and len(data.labels) == 20
    test_set = build_dataset("cifar10-test", 32, 3, root=tmp_path, download=False)
    assert len(test_set) == 4 and test_set.labels == [0] * 4
    small_grey = build_dataset("cifar10", 16, 1, root=tmp_path, download=False)
    assert small_grey[0].shape == (1, 16, 16)
    assert small_grey[0].min() >= -1.0 and small_grey[0].max() <= 1.0


def test_cifar10_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cifar10(tmp_path, monkeypatch)
    monkeypatch.setenv("TRANSGAN_DATA", str(tmp_path))
    assert len(build_dataset("cifar10", 32, 3, download=False)) == 20


def test_cifar10_missing_offline_names_folder(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        build_dataset("cifar10", 32, 3, root=root, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert str(root / "cifar-10-batches-py") in message
    assert "https://" in message


def test_stl10_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import STL10

    folder = tmp_path / STL10.base_folder
    folder.mkdir()
    rng = np.random.default_rng(2)
    unlabeled = rng.integers(0, 256, size=(3, 3, 96, 96), dtype=np.uint8)
    contents = {
        "train_X.bin": rng.integers(0, 256, size=2 * 3 * 96 * 96, dtype=np.uint8).tobytes(),
        "train_y.bin": bytes([1, 2]),
        "unlabeled_X.bin": unlabeled.tobytes(),
        "test_X.bin": rng.integers(0, 256, size=3 * 96 * 96, dtype=np.uint8).tobytes(),
        "test_y.bin": bytes([1]),
    }
    md5s = {}
    for name, content in contents.items():
        (folder / name).write_bytes(content)
        md5s[name] = hashlib.md5(content).hexdigest()
    monkeypatch.setattr(STL10, "train_list", [[n, md5s[n]] for n in list(contents)[:3]])
    monkeypatch.setattr(STL10, "test_list", [[n, md5s[n]] for n in list(contents)[3:]])

    data = build_dataset("stl10", 48, 3, root=tmp_path, download=False)
    assert len(data) == 3 and data[0].shape == (3, 48, 48)
    assert data[0].min() >= -1.0 and data[0].max() <= 1.0
    full = build_dataset("stl10", 96, 3, root=tmp_path, download=False)
    # The binary files store each plane column-major; torchvision transposes it back.
    expected = unlabeled[1, 2, 10, 40] / 127.5 - 1.0
    assert full[1][2, 40, 10].item() == pytest.approx(expected, abs=1e-6)
    assert data.labels is None
    with pytest.raises(DataError, match="unlabeled split has no class labels; use stl10-train"):
        data.labelled()
    train = build_dataset("stl10-train", 48, 1, root=tmp_path, download=False)
    # The label file counts from 1; torchvision and transgan count from 0.
    assert len(train) == 2 and train.labels == [0, 1] and train.class_names[1] == "bird"


def test_stl10_missing_offline_names_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        build_dataset("stl10", 48, 3, root=tmp_path, download=False)
    assert str(tmp_path / "stl10_binary") in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- folders and zips

READABLE = 8
UNREADABLE = 4


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _image_files() -> dict[str, bytes]:
    """Relative name -> bytes: 8 readable images of assorted modes, 4 bad ones, 1 text file."""
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8), "RGB")
    jpeg = _encode(photo, "JPEG")
    rgba = np.zeros((30, 30, 4), dtype=np.uint8)
    rgba[:, :15] = (255, 0, 0, 255)  # left half opaque red, right half fully transparent
    palette = Image.fromarray(rng.integers(0, 256, size=(33, 33, 3), dtype=np.uint8)).convert("P")
    sixteen = Image.fromarray(np.full((24, 24), 32768, dtype=np.uint16))
    assert sixteen.mode == "I;16"
    grey = Image.fromarray(rng.integers(0, 256, size=(36, 36), dtype=np.uint8), "L")
    odd = Image.fromarray(rng.integers(0, 256, size=(37, 50, 3), dtype=np.uint8), "RGB")
    return {
        "photo.jpg": jpeg,
        "sub/grey.png": _encode(grey, "PNG"),
        "sub/alpha.png": _encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "sub/deeper/palette.png": _encode(palette, "PNG"),
        "sub/deeper/sixteen.png": _encode(sixteen, "PNG"),
        "odd_size.PNG": _encode(odd, "PNG"),
        "bitmap.bmp": _encode(photo, "BMP"),
        "web.webp": _encode(photo, "WEBP"),
        "bad/corrupt.png": rng.integers(0, 256, size=500, dtype=np.uint8).tobytes(),
        "bad/truncated.jpg": jpeg[: len(jpeg) // 2],
        "bad/empty.jpg": b"",
        "bad/text.png": b"this is not an image at all\n",
        "notes.txt": b"ignored: not an image extension\n",
    }


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/", b"")
        for name, content in files.items():
            archive.writestr(f"images/{name}", content)
    return path


def _check_image_set(data: Any) -> None:
    assert len(data) == READABLE
    assert data.skipped == UNREADABLE
    assert f"{READABLE} images ({UNREADABLE} unreadable skipped)" in data.description
    loader = DataLoader(data, batch_size=3, num_workers=2)
    batches = list(loader)
    assert sum(len(batch) for batch in batches) == READABLE
    stacked = torch.cat(batches)
    assert stacked.shape[1:] == (3, 32, 32)
    assert stacked.dtype == torch.float32
    assert stacked.min() >= -1.0 and stacked.max() <= 1.0


def test_folder_reads_good_images_and_skips_bad(tmp_path: Path) -> None:
    root = write_files(tmp_path / "images", _image_files())
    data = build_dataset(f"folder:{root}", 32, 3)
    _check_image_set(data)
    assert sorted(data.unreadable) == [
        "bad/corrupt.png",
        "bad/empty.jpg",
        "bad/text.png",
        "bad/truncated.jpg",
    ]


def test_folder_conversions(tmp_path: Path) -> None:
    root = write_files(tmp_path / "images", _image_files())
    data = build_dataset(f"folder:{root}", 32, 3)
    items = {key: data[index] for index, key in enumerate(data.keys)}

    # 16-bit mid-grey stays mid-grey (32768 / 65535 -> 128 / 255), not clipped to white.
    sixteen = items["sub/deeper/sixteen.png"]
    assert sixteen.abs().max() < 0.02

    # Transparent pixels become white, opaque red stays red.
    alpha = items["sub/alpha.png"]
    assert torch.allclose(alpha[:, :, -1], torch.ones(3, 32))
    assert alpha[0, 16, 0] == pytest.approx(1.0)
    assert alpha[1, 16, 0] == pytest.approx(-1.0)

    grey = items["sub/grey.png"]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])

    single = build_dataset(f"folder:{root}", 16, 1)
    assert single[0].shape == (1, 16, 16)


def test_small_folder_is_held_in_memory(tmp_path: Path) -> None:
    root = write_files(tmp_path / "images", _image_files())
    data = build_dataset(f"folder:{root}", 32, 3)
    assert data.in_memory and default_num_workers(data) == 0
    assert data.images.dtype == torch.uint8 and data.images.shape == (len(data), 3, 32, 32)
    before = data[0]
    (root / data.keys[0]).write_bytes(b"gone")  # the files are not read again
    assert torch.equal(data[0], before)


def test_folder_substitutes_file_broken_after_scan(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from transgan.data import images

    monkeypatch.setattr(images, "IN_MEMORY_BYTES", 0)  # read file by file, as large sets are
    root = write_files(tmp_path / "images", _image_files())
    data = build_dataset(f"folder:{root}", 32, 3)
    assert not data.in_memory and data.images is None
    index = data.keys.index("photo.jpg")
    (root / "photo.jpg").write_bytes(b"gone")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        item = data[index]
    assert item.shape == (3, 32, 32)
    assert torch.equal(item, data[(index + 1) % len(data)])
    assert any("unreadable" in str(w.message) for w in caught)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data path does not exist"):
        build_dataset(f"folder:{tmp_path / 'missing'}", 32, 3)

    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError) as info:
        build_dataset(f"folder:{empty}", 32, 3)
    assert str(empty) in str(info.value) and ".png" in str(info.value)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"junk")
    (broken / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="2 image files found, none readable"):
        build_dataset(f"folder:{broken}", 32, 3)


def test_zip_reads_good_images_and_skips_bad(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "images.zip", _image_files())
    data = build_dataset(f"zip:{archive}", 32, 3)
    _check_image_set(data)
    restored = pickle.loads(pickle.dumps(data))
    assert torch.equal(restored[0], data[0])


def test_zip_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data path does not exist"):
        build_dataset(f"zip:{tmp_path / 'missing.zip'}", 32, 3)
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a zip archive"):
        build_dataset(f"zip:{fake}", 32, 3)
    empty = _write_zip(tmp_path / "empty.zip", {"a.txt": b"text"})
    with pytest.raises(DataError, match="no image files"):
        build_dataset(f"zip:{empty}", 32, 3)


# ---------------------------------------------------------------- loaders


def test_file_datasets_default_to_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transgan.data import images

    monkeypatch.setattr(images, "IN_MEMORY_BYTES", 3 * 32 * 32)  # room for one image only
    root = write_files(tmp_path / "images", _image_files())
    assert default_num_workers(build_dataset(f"folder:{root}", 32, 3)) >= 1
    assert default_num_workers(build_dataset("digits-test", 8, 1)) == 0


def test_each_data_set_is_declared_once_and_its_loader_resolves() -> None:
    assert all(callable(load(named.loader)) for named in NAMED_SETS.values())
    assert all(callable(load(loader)) for loader in PATH_SETS.values())
    assert DATA_SPECS_HELP.startswith(" | ".join(NAMED_SETS))
    assert [name for name in NAMED_SETS if may_download(name)] == [
        "cifar10", "cifar10-test", "stl10", "stl10-train"]
    assert [name for name in NAMED_SETS if is_digits_spec(name.upper())] == [
        "digits", "digits-train", "digits-test"]
    test, everything = build_dataset("digits-test", 8, 1), build_dataset("digits", 8, 1)
    assert 0 < len(test) < len(everything) == 1797
