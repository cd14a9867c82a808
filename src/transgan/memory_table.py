"""Will a preset fit a card? Each preset's training-step peak memory in bf16 at its official
batch sizes, traced with fake tensors, and the smallest ``--accum`` that fits GPUs of common
sizes, with and without activation checkpointing (``transgan models --memory``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transgan.models.build import discriminator_config, generator_config
from transgan.progress import Progress
from transgan.train.memory import (
    GIB,
    accum_choices,
    last_fitting,
    micro_options,
    traced_cycle_peak,
)
from transgan.train.options import TrainOptions
from transgan.train.recipes import options_for

CARDS_GB = (8, 12, 16, 24, 40, 80)
# What a card's memory holds besides the step's tensors: the CUDA context, cuBLAS and
# attention workspaces, the caching allocator's slack.
CARD_RESERVE_GIB = 1.0


@dataclass(frozen=True)
class PresetMemory:
    """One preset's step memory at its official batches, plain and checkpointed: the peak
    in bytes at the official micro-batch, and per card the smallest --accum that fits
    (None: not even one image per micro-batch)."""

    preset: str
    batch: int
    g_batch: int
    accum: int
    peak: dict[str, int]
    accum_for: dict[str, dict[int, int | None]]


class StepTracer:
    """Traced peaks of one preset's step per micro-batch (cached): ``opts`` are its official
    options in bf16, with or without activation checkpointing."""

    def __init__(self, opts: TrainOptions) -> None:
        self.opts = opts
        self.g_cfg = generator_config(opts.preset, **opts.generator)
        self.d_cfg = discriminator_config(opts.preset, **opts.discriminator)
        self.peaks: dict[int, int] = {}

    def peak(self, accum: int) -> int:
        if accum not in self.peaks:
            self.peaks[accum] = traced_cycle_peak(
                self.g_cfg, self.d_cfg, micro_options(self.opts, accum), "bf16")
        return self.peaks[accum]

    def smallest_accum(self, budget: float, choices: Sequence[int]) -> int | None:
        """The smallest of ``choices`` (ascending) whose micro-batch fits ``budget`` bytes: the
        first when it fits (a preset that fits a card whole is traced once), else a search."""
        if self.peak(choices[0]) <= budget:
            return choices[0]
        largest_first = list(reversed(choices))
        last = last_fitting(len(largest_first),
                            lambda i: self.peak(largest_first[i]) <= budget)
        return None if last is None else largest_first[last]


def preset_memory(preset: str) -> PresetMemory:
    """The memory row of ``preset``: its recipe's batches, in bf16."""
    official = options_for(preset, {"precision": "bf16", "device": "cpu"})
    choices = accum_choices(official, 1)
    peak: dict[str, int] = {}
    accum_for: dict[str, dict[int, int | None]] = {}
    for label, checkpointing in (("plain", False), ("checkpointed", True)):
        tracer = StepTracer(official.replace(activation_checkpointing=checkpointing))
        peak[label] = tracer.peak(official.accum)
        accum_for[label] = {card: tracer.smallest_accum((card - CARD_RESERVE_GIB) * GIB, choices)
                            for card in CARDS_GB}
    return PresetMemory(preset, official.batch, official.g_batch or official.batch,
                        official.accum, peak, accum_for)


def memory_rows(presets: Sequence[str], progress: bool = True) -> list[PresetMemory]:
    """The memory rows of ``presets``, with a progress line per preset."""
    rows = []
    with Progress(len(presets), "memory", unit="presets", enabled=progress) as bar:
        for name in presets:
            rows.append(preset_memory(name))
            bar.update(1)
    return rows


def _accum_cell(row: PresetMemory, card: int) -> str:
    cells = [row.accum_for[label][card] for label in ("plain", "checkpointed")]
    return "/".join("-" if a is None else str(a) for a in cells)


def format_memory_table(rows: Sequence[PresetMemory]) -> str:
    """The table: peaks in GiB, then per card 'accum plain/checkpointed' ('-': never fits)."""
    header = ("preset", "batch D/G", "accum", "peak GiB", "ckpt GiB",
              *(f"{card} GB" for card in CARDS_GB))
    lines = [tuple(header)]
    for row in rows:
        lines.append((row.preset, f"{row.batch}/{row.g_batch}", str(row.accum),
                      f"{row.peak['plain'] / GIB:.2f}", f"{row.peak['checkpointed'] / GIB:.2f}",
                      *(_accum_cell(row, card) for card in CARDS_GB)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in lines]
    return "\n".join([
        "training-step peak in bf16 at each preset's official batches (one process), traced "
        "with fake tensors;",
        f"per card: the smallest --accum that fits (card - {CARD_RESERVE_GIB:g} GiB), plain/"
        "with --activation-checkpointing, '-' = never",
        *table])


def write_memory_json(rows: Sequence[PresetMemory], path: Path) -> None:
    """The rows as JSON, peaks in bytes."""
    data: dict[str, Any] = {row.preset: dataclasses.asdict(row) for row in rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cards_gb": list(CARDS_GB), "reserve_gib": CARD_RESERVE_GIB,
                                "presets": data}, indent=2) + "\n")
