"""Long unattended runs: checkpoints by wall time (rank 0's clock) and plain progress lines."""

from __future__ import annotations

import datetime
import io
import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY_RUN, free_port

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import build_parser as cli_parser
from transgan.cli import main, train_options_from_args
from transgan.train.monitor import Monitor, format_duration, progress_line, setup_logging
from transgan.train.training import Trainer, planned_end

# Checkpoints by time only; the fake clocks below count one second per image.
TIMED = [*TINY_RUN, "--checkpoint-every", "1000000000", "--checkpoint-minutes", "0.5",
         "--deterministic"]


class Crash(Exception):
    """Stands for a hard kill at a chosen moment."""


def _trainer(run: Path, images: int, *extra: str) -> Trainer:
    args = cli_parser().parse_args(["train", *TIMED, "--out", str(run), "--images",
                                    str(images), *extra])
    return Trainer.from_options(train_options_from_args(args)[0])


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    return {key: state[key] for key in ("G", "D", "G_ema")}


def test_timed_checkpoint_is_written_on_time_and_resumes_exactly(tmp_path: Path) -> None:
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    assert main(["train", *TIMED, "--out", str(straight), "--images", "128"]) == 0
    trainer = _trainer(pieces, 128)

    def clock() -> float:  # the process dies after 40 images
        if trainer.built.counters.images > 40:
            raise Crash
        return float(trainer.built.counters.images)

    trainer.clock = clock
    with pytest.raises(Crash):
        trainer.run()
    # Cycles of 32 images: 32 is the first end of a cycle 30 s after the start, before the
    # first log line at 64, so the checkpoint also carries the stats since the start.
    assert sorted(p.name for p in (pieces / "checkpoints").glob("ckpt-*.pt")) == [
        "ckpt-000000000032.pt"]
    assert load_checkpoint(pieces / "checkpoints" / "latest.pt")["counters"]["images"] == 32
    # --checkpoint-minutes may change on resume.
    assert main(["train", *TIMED, "--out", str(pieces), "--images", "128",
                 "--checkpoint-minutes", "5"]) == 0
    a, b = _weights(straight), _weights(pieces)
    for model in a:
        for name, tensor in a[model].items():
            assert torch.equal(tensor, b[model][name]), f"{model}.{name}"
    assert _logged(pieces) == _logged(straight)


def _logged(run: Path) -> list[tuple[int, float, float]]:
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return [(r["images"], r["loss_d"], r["loss_g"]) for r in records]


def _rank_clock(trainer: Trainer, rank: int) -> float:
    """Rank 0: one second per image, so with one minute due at 64 images; rank 1 would say
    the opposite at every cycle (due at 32 and 96, not at 64)."""
    images = trainer.built.counters.images
    if rank == 0:
        return float(images)
    return 1000.0 * images if (images // 32) % 2 else 0.0


def _rank_main(rank: int, run: str, port: int, results: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    # A short timeout: ranks that disagree fail here instead of hanging the test.
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    try:
        trainer = _trainer(Path(run), 128, "--checkpoint-minutes", "1",
                           "--keep-checkpoints", "10")
        trainer.clock = lambda: _rank_clock(trainer, rank)
        saved: list[int] = []
        save = trainer.save

        def recording_save() -> None:
            saved.append(trainer.built.counters.images)
            save()

        trainer.save = recording_save  # type: ignore[method-assign]
        trainer.run()
        Path(results, f"rank{rank}.json").write_text(json.dumps(saved))
    finally:
        dist.destroy_process_group()


def test_rank_0_decides_when_to_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    mp.spawn(_rank_main, args=(str(run), free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == [64, 128]
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.pt")) == [
        f"ckpt-{n:012d}.pt" for n in (64, 128)]


def test_stderr_to_a_file_gets_plain_lines(tmp_path: Path, monkeypatch) -> None:
    err = tmp_path / "err.txt"
    with open(err, "w") as handle:
        monkeypatch.setattr(sys, "stderr", handle)
        assert main(["train", *TINY_RUN, "--progress", "--log-every", "32",
                     "--out", str(tmp_path / "run"), "--images", "48"]) == 0
        setup_logging(None, verbose=False)  # the logger lets go of the file
    text = err.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    progress = [line for line in lines if " img/s | " in line]
    assert [line.split(" | ")[0] for line in progress] == [
        "32/64 images (50.0%)", "64/64 images (100.0%)"]
    assert all("loss_d " in line and "loss_g " in line and " | ETA " in line
               for line in progress)
    assert progress[-1].endswith("ETA 0:00:00")
    # 48 asked, trained in whole cycles of 16 x 2: the total shown is what is trained.
    assert "training to 64 images: --images 48 rounded up to whole cycles of 32" in lines
    assert lines[-1].startswith("done: 64 images in 0:0")


def test_planned_end_rounds_up_to_whole_cycles() -> None:
    assert planned_end(0, 1000, 32) == 1024
    assert planned_end(0, 1024, 32) == 1024
    assert planned_end(96, 100, 64) == 160  # a resumed run continues from where it is
    assert planned_end(2048, 1000, 32) == 2048  # finished already


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "plain"), [(_Terminal(), False), (io.StringIO(), True)])
def test_bar_on_a_terminal_lines_elsewhere(tmp_path: Path, stream: io.StringIO,
                                           plain: bool) -> None:
    monitor = Monitor(tmp_path, 1000, 0, True, stream=stream)
    assert monitor.plain is plain and monitor.bar.disable is plain
    monitor.log(500, {"loss_d": 1.0, "loss_g": 2.0})
    monitor.close()
    assert ("\r" not in stream.getvalue()) is plain
    assert (" | ETA " in stream.getvalue()) is plain


def test_progress_line_and_durations() -> None:
    assert format_duration(3725.4) == "1:02:05"
    assert format_duration(40 * 3600) == "40:00:00"
    assert format_duration(float("inf")) == "?"
    line = progress_line(1_280_000, 128_000_000, 1333.4, 95_040.0,
                         {"loss_d": -0.51234, "loss_g": 0.25})
    assert line == ("1,280,000/128,000,000 images (1.0%) | 1,333 img/s | "
                    "loss_d -0.512 loss_g 0.250 | ETA 26:24:00")
