"""Checkpoints: atomic writes, safe loading (weights only), rotation of numbered copies."""

from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from transgan.errors import (
    CheckpointError,
    DamagedCheckpointError,
    ForeignCheckpointError,
    first_line,
)

CHECKPOINT_FORMAT = "transgan-checkpoint-v1"
REQUIRED_KEYS = ("format", "options", "generator_config", "discriminator_config", "G", "G_ema")
# How torch.save files begin: a zip archive (PyTorch >= 1.6) or a binary pickle (older saves).
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
PICKLE_PROTOCOLS = range(2, 6)
# Pickle opcodes that name or call Python objects: how a pickle carries code.
CODE_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ",
                          "NEWOBJ_EX"})
# Files people mistake for checkpoints, told apart by their first bytes.
IMAGE_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
               b"RIFF": "a RIFF (e.g. WebP) file"}


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files left by a process killed while writing; returns how many."""
    stale = list(folder.glob(".*.pt.tmp-*")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _digest(value: Any, digest: Any) -> None:
    """Feed ``value`` (tensors, containers of them and plain data) into ``digest``, in an
    order that does not depend on how the mapping was built."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"map {len(value)};".encode())
        for key in sorted(value, key=repr):
            digest.update(f"{key!r}:".encode())
            _digest(value[key], digest)
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _digest(item, digest)
    else:
        digest.update(f"{value!r};".encode())


def payload_checksum(state: Mapping[str, Any]) -> str:
    """SHA-256 of a checkpoint's contents without its ``checksum`` entry: every tensor's dtype,
    shape and bytes and every plain value, so a changed byte anywhere in them shows."""
    digest = hashlib.sha256()
    _digest({key: value for key, value in state.items() if key != "checksum"}, digest)
    return digest.hexdigest()


def checkpoint_payload(state: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint file holds: the format tag, ``state`` and the checksum of both."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    payload["checksum"] = payload_checksum(payload)
    return payload


def save_checkpoint(state: dict[str, Any], folder: Path, images: int, keep: int) -> Path:
    """Write ``latest.pt`` atomically, link a numbered copy, and prune old numbered ones."""
    latest = folder / "latest.pt"
    payload = checkpoint_payload(state)
    atomic_save(payload, latest)
    numbered = folder / f"ckpt-{images:012d}.pt"
    numbered.unlink(missing_ok=True)
    try:
        os.link(latest, numbered)
    except OSError:
        atomic_save(payload, numbered)
    for old in sorted(folder.glob("ckpt-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return latest


def _numpy_scalar_types() -> list[Any]:
    """The numpy scalar reconstructors (plain numbers, no code), e.g. a saved numpy FID."""
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    dtypes = {type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32)}
    return [scalar, np.dtype, *dtypes]


def _is_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes; a character cut off at the end of ``head`` still counts."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return True


def _looks_like(head: bytes) -> str:
    """What a file that torch did not save looks like, from its first bytes."""
    if not head:
        return "an empty file"
    for magic, kind in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return kind
    return "a text file" if _is_text(head) else "not a PyTorch file"


def _not_a_torch_save(path: Path) -> str | None:
    """Why ``path`` cannot be a torch.save file (empty, text, an image, a damaged archive...),
    or None when it may be one; a pickle that carries code is for torch.load to refuse."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            return "a truncated or damaged zip archive"
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("data.pkl") for name in archive.namelist()):
                return "a zip archive that PyTorch did not write"
        return None
    if head.startswith(LEGACY_MAGIC):
        return None
    if len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS:
        return _pickle_kind(path)
    return _looks_like(head)


def _pickle_kind(path: Path) -> str | None:
    """None when the pickle in ``path`` names Python objects (torch.load refuses those, since
    that is how a pickle carries code), else what it is; its opcodes are read, never run."""
    with open(path, "rb") as handle:
        try:
            names = any(op.name in CODE_OPCODES for op, _, _ in pickletools.genops(handle))
        except ValueError:
            return "a truncated or damaged pickle"
    return None if names else "a pickle of plain data, not a PyTorch save"


def safe_torch_load(
    path: str | Path, map_location: str | torch.device = "cpu", numpy_scalars: bool = False
) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain data, never code.

    ``numpy_scalars`` also admits numpy numbers, which other training code often saves.
    Missing, truncated, foreign or malicious files raise :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        kind = _not_a_torch_save(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if kind is not None:
        raise CheckpointError(f"{path} is not a transgan checkpoint ({kind})")
    allowed = _numpy_scalar_types() if numpy_scalars else []
    try:
        # torch warns about pickle protocols it did not write; the error below says enough
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = first_line(exc, "unpickling failed")
        if "Weights only load failed" in reason or "Unsupported global" in str(exc):
            reason = "it contains objects other than tensors and plain data; refused to load"
        raise CheckpointError(f"cannot load checkpoint {path}: {reason}") from None
    except Exception as exc:  # arbitrary bytes fail the parser in arbitrary ways
        first = first_line(exc)
        raise CheckpointError(
            f"cannot load checkpoint {path}: truncated or not a checkpoint ({first})"
        ) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a transgan checkpoint with :func:`safe_torch_load` and check its format."""
    state = safe_torch_load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ForeignCheckpointError(f"{path} is not a transgan checkpoint")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks '{missing[0]}'")
    # Checkpoints written before checksums existed have none to check.
    if "checksum" in state and payload_checksum(state) != state["checksum"]:
        raise DamagedCheckpointError(f"checkpoint {path} is damaged: its contents do not match "
                                     "the checksum saved with them")
    return state


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/latest.pt``."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "latest.pt", path / "latest.pt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"no checkpoint in run directory {path}")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path
