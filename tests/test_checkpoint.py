"""Checkpoint writing and safe loading."""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path

import pytest
import torch

from transgan.artifacts.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from transgan.cli import main
from transgan.errors import CheckpointError, DamagedCheckpointError


def _state() -> dict:
    return {
        "options": {"preset": "digits", "batch": 4},
        "generator_config": {"type": "transformer-g"},
        "discriminator_config": {"type": "transformer-d"},
        "G": {"w": torch.arange(6.0).view(2, 3)},
        "G_ema": {"w": torch.ones(2)},
        "rng": {"torch": torch.get_rng_state()},
    }


def test_round_trip_and_rotation(tmp_path: Path) -> None:
    for images in (100, 200, 300, 400):
        save_checkpoint(_state(), tmp_path, images, keep=2)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.pt")) == [
        "ckpt-000000000300.pt", "ckpt-000000000400.pt"]
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["format"] == CHECKPOINT_FORMAT
    assert torch.equal(state["G"]["w"], torch.arange(6.0).view(2, 3))
    assert find_checkpoint(tmp_path.parent / tmp_path.name) == tmp_path / "latest.pt"
    assert not list(tmp_path.glob(".*tmp*"))


def _overwrite(path: Path, offset: int, count: int = 4) -> None:
    """Overwrite ``count`` bytes of ``path`` at ``offset`` in place, each changed."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(count)
        handle.seek(offset)
        handle.write(bytes(b ^ 0x5A for b in old))


def test_a_changed_byte_in_a_tensor_is_caught_by_the_checksum(tmp_path: Path) -> None:
    save_checkpoint(_state(), tmp_path, 1, keep=1)
    path = tmp_path / "latest.pt"
    # The bytes of G's weight, as the archive stores them; torch itself checks nothing there.
    offset = path.read_bytes().index(torch.arange(6.0).numpy().tobytes())
    _overwrite(path, offset + 8)
    state = torch.load(path, weights_only=True)
    assert not torch.equal(state["G"]["w"], torch.arange(6.0).view(2, 3))
    with pytest.raises(DamagedCheckpointError, match="is damaged: its contents do not match"):
        load_checkpoint(path)


def test_checkpoints_from_before_checksums_still_load(tmp_path: Path) -> None:
    atomic_save({"format": CHECKPOINT_FORMAT, **_state()}, tmp_path / "old.pt")
    assert "checksum" not in load_checkpoint(tmp_path / "old.pt")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint(_state(), tmp_path, 1, keep=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a transgan checkpoint .a truncated or damaged"):
        load_checkpoint(path)


@pytest.mark.parametrize(("content", "kind"), [
    (b"", "an empty file"),
    (b"hello world\n", "a text file"),
    ("caf\u00e9 ".encode() * 300, "a text file"),  # the first KiB ends inside a character
    (bytes(range(256)) * 8, "not a PyTorch file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
    (b"PK\x03\x04garbage", "a truncated or damaged zip archive"),
    (pickle.dumps({"G": [1.0, 2.0]}), "a pickle of plain data, not a PyTorch save"),
])
def test_files_torch_did_not_save_say_what_they_are(
    tmp_path: Path, content: bytes, kind: str
) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(error.value) == f"{path} is not a transgan checkpoint ({kind})"


def test_zip_archives_torch_did_not_write_are_not_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/0.png", b"\x89PNG")
    with pytest.raises(CheckpointError, match="a zip archive that PyTorch did not write"):
        load_checkpoint(path)


def test_foreign_torch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"model": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a transgan checkpoint"):
        load_checkpoint(path)
    state = _state()
    del state["G_ema"]
    atomic_save({"format": CHECKPOINT_FORMAT, **state}, path)
    with pytest.raises(CheckpointError, match="lacks 'G_ema'"):
        load_checkpoint(path)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_does_not_run(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": CHECKPOINT_FORMAT, "G": _Exploit(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["sample", "eval", "convert"])
def test_commands_say_a_file_is_not_a_checkpoint(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"notes.txt": (b"step 1: train\n", "a text file"),
             "noise.bin": (random.Random(0).randbytes(4096), "not a PyTorch file"),
             "empty.pt": (b"", "an empty file")}
    for name, (content, kind) in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert main([command, str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err == f"transgan: error: {path} is not a transgan checkpoint ({kind})\n"
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    evil.write_bytes(pickle.dumps({"G": _Exploit(marker)}))
    assert main([command, str(evil), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"transgan: error: cannot load checkpoint {evil}: it contains objects other "
                   "than tensors and plain data; refused to load\n")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="no checkpoint in run directory"):
        find_checkpoint(tmp_path)


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    from transgan.artifacts.checkpoint import remove_stale_temporaries

    save_checkpoint(_state(), tmp_path, 1, keep=1)
    (tmp_path / ".latest.pt.tmp-4242").write_bytes(b"half a checkpoint")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not list(tmp_path.glob(".*tmp*")) and load_checkpoint(tmp_path / "latest.pt")
