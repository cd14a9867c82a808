"""Faults provoked on purpose: non-finite steps, divergence, signals and hard kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN

from transgan.cli import build_parser as cli_parser
from transgan.cli import main, train_options_from_args
from transgan.train.checkpoint import load_checkpoint
from transgan.train.loop import Trainer, TrainingDiverged


def _trainer(tmp_path: Path, images: int, *extra: str) -> Trainer:
    args = cli_parser().parse_args(
        ["train", *TINY_RUN, "--out", str(tmp_path / "run"), "--images", str(images),
         "--checkpoint-every", "64", "--nonfinite-limit", "3", *extra])
    opts, _ = train_options_from_args(args)
    return Trainer(opts)


def _poison_once(trainer: Trainer, at_d_step: int) -> None:
    """Fill D's weights with NaN right before D step ``at_d_step``."""
    original = trainer.d_step

    def d_step(real: torch.Tensor) -> dict:
        if trainer.counters.d_steps == at_d_step and trainer.counters.rollbacks == 0:
            with torch.no_grad():
                trainer.D.head.weight.fill_(float("nan"))
        return original(real)

    trainer.d_step = d_step  # type: ignore[method-assign]


def test_nonfinite_steps_are_skipped_then_rolled_back(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 192)
    _poison_once(trainer, at_d_step=6)  # after the checkpoint at 64 images (4 D steps)
    trainer.run()
    c = trainer.counters
    assert c.images == 192 and c.rollbacks == 1 and c.skipped >= 3
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert state["counters"]["rollbacks"] == 1
    for weights in (state["G"], state["D"], state["G_ema"]):
        assert all(torch.isfinite(t).all() for t in weights.values())
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "rolled back to the checkpoint at 64 images" in log


def test_divergence_without_checkpoint_stops_with_a_message(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 192)
    _poison_once(trainer, at_d_step=1)
    with pytest.raises(TrainingDiverged, match="no checkpoint to return to"):
        trainer.run()
    assert not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_nonfinite_model_is_never_written(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 64)
    trainer.run()
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    with torch.no_grad():
        next(trainer.G.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="G weights are not finite"):
        trainer.save()
    assert latest.read_bytes() == before


def _spawn(run: Path, images: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "transgan.cli", "train", *TINY_RUN, "--out", str(run),
           "--images", str(images), "--checkpoint-every", "64"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path("tests").resolve())}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_writes_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _spawn(run, 100_000)
    _wait_for(run / "stats.jsonl", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert f"Resume with: transgan train --out {run}" in err
    stopped_at = load_checkpoint(run / "checkpoints" / "latest.pt")["counters"]["images"]
    assert 0 < stopped_at < 100_000
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", str(stopped_at + 64)]) == 0
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["counters"]["images"] == \
        stopped_at + 64


@pytest.mark.parametrize("delay", [0.0, 0.37])
def test_sigkill_keeps_the_last_checkpoint_and_rerun_finishes(tmp_path: Path, delay) -> None:
    run = tmp_path / "run"
    proc = _spawn(run, 100_000)
    _wait_for(run / "checkpoints" / "latest.pt", proc)
    time.sleep(delay)  # 0: during or right after the first checkpoint write
    proc.kill()
    proc.communicate(timeout=60)
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    done = state["counters"]["images"]
    assert done >= 64 and not list((run / "checkpoints").glob(".*tmp*"))
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", str(done + 64)]) == 0
    records = [line for line in (run / "stats.jsonl").read_text().splitlines() if line]
    assert len(records) == len({r.split(",")[0] for r in records}), "duplicate stats records"
