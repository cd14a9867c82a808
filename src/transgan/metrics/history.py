"""Every evaluation of a run, kept: ``eval-history.jsonl`` beside its checkpoints gains one
record per ``transgan eval``, so a later evaluation never erases an earlier one, and a shared
model shows the evaluation of the most samples."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HISTORY_FILE = "eval-history.jsonl"


def append_evaluation(folder: Path, record: Mapping[str, Any]) -> Path:
    """Add ``record`` (with the time it was made) to ``folder``'s history file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HISTORY_FILE
    line = json.dumps({**record, "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    with open(path, "a") as handle:
        handle.write(line + "\n")
    return path


def evaluations(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """The evaluations recorded in ``folder``, oldest first, each with the file it is in:
    the history's records, then any ``metrics-*.json`` written before the history existed
    (by modification time). Unreadable files and lines are passed over."""
    found: list[tuple[str, dict[str, Any]]] = []
    history = folder / HISTORY_FILE
    if history.is_file():
        for line in history.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append((HISTORY_FILE, record))
    seen = {json.dumps(record.get("metrics"), sort_keys=True) for _, record in found}
    files = sorted(folder.glob("metrics-*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    for candidate in files:
        try:
            record = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and json.dumps(record.get("metrics"),
                                                   sort_keys=True) not in seen:
            found.append((candidate.name, record))
    return found


def _samples(record: Mapping[str, Any]) -> int:
    protocol = record.get("protocol")
    return int(protocol.get("num_samples") or 0) if isinstance(protocol, Mapping) else 0


def most_samples(folder: Path, images: int) -> tuple[str, dict[str, Any]] | None:
    """The evaluation at ``images`` trained images with the most samples (the newest of those
    with as many), and its file; None when there is none."""
    matching = [(i, name, record) for i, (name, record) in enumerate(evaluations(folder))
                if record.get("images_trained") == images]
    if not matching:
        return None
    _, name, record = max(matching, key=lambda item: (_samples(item[2]), item[0]))
    return name, record
