"""Faults provoked on purpose: non-finite steps, divergence, signals and hard kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, free_port

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import build_parser as cli_parser
from transgan.cli import main, train_options_from_args
from transgan.errors import TrainingDiverged
from transgan.train.training import Trainer


def _trainer(tmp_path: Path, images: int, *extra: str) -> Trainer:
    args = cli_parser().parse_args(
        ["train", *TINY_RUN, "--out", str(tmp_path / "run"), "--images", str(images),
         "--checkpoint-every", "64", "--nonfinite-limit", "3", *extra])
    opts, _ = train_options_from_args(args)
    return Trainer.from_options(opts)


def _poison_once(trainer: Trainer, at_d_step: int) -> None:
    """Fill D's weights with NaN right before D step ``at_d_step``."""
    original = trainer.built.step.d_step

    def d_step(real: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        if trainer.built.counters.d_steps == at_d_step and trainer.built.counters.rollbacks == 0:
            with torch.no_grad():
                trainer.built.D.head.weight.fill_(float("nan"))
        return original(real, labels)

    trainer.built.step.d_step = d_step  # type: ignore[method-assign]


def test_nonfinite_steps_are_skipped_then_rolled_back(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 192)
    _poison_once(trainer, at_d_step=6)  # after the checkpoint at 64 images (4 D steps)
    trainer.run()
    c = trainer.built.counters
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
        next(trainer.built.G.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="G weights are not finite"):
        trainer.save()
    assert latest.read_bytes() == before


def _spawn(run: Path, images: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "transgan.cli", "train", *TINY_RUN, "--out", str(run),
           "--images", str(images), "--checkpoint-every", "64"]
    path = os.pathsep.join(p for p in (str(Path("tests").resolve()),
                                       os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
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
    # Stopped, not finished: 128 + SIGTERM, after the checkpoint.
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
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
    assert done >= 64  # a temporary file of an interrupted write may remain until the rerun
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", str(done + 64)]) == 0
    assert not list((run / "checkpoints").glob(".*tmp*"))
    records = [line for line in (run / "stats.jsonl").read_text().splitlines() if line]
    assert len(records) == len({r.split(",")[0] for r in records}), "duplicate stats records"


def test_disk_full_gives_a_clear_error_and_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", "64"]) == 0
    latest = run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()

    def full_disk(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", "128"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("transgan: cannot write to the run directory")
    assert "No space left on device" in err[-1]
    assert latest.read_bytes() == before
    assert not list((run / "checkpoints").glob(".*tmp*"))
    assert not (run / ".lock").exists()  # released on the error too


def test_unwritable_run_directory_is_refused_before_work(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", *TINY_RUN, "--out", str(blocker / "run"), "--images", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not writable" in err[0]


def test_exported_safetensors_round_trip(tmp_path: Path) -> None:
    from safetensors import safe_open

    from transgan.artifacts.loading import load_generator
    from transgan.sampling import latents

    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", "64"]) == 0
    out = tmp_path / "g.safetensors"
    assert main(["export", str(run), "--out", str(out)]) == 0
    with safe_open(str(out), framework="pt") as handle:
        assert handle.metadata()["format"] == "transgan-generator-v1"
    from_ckpt = load_generator(run)
    from_export = load_generator(out)
    z = latents(4, from_ckpt.latent_dim, seed=1)
    assert torch.equal(from_ckpt(z), from_export(z))
    assert main(["sample", str(out), "--num", "2", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*.png"))) == 2
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    assert main(["sample", str(tmp_path / "bad.safetensors")]) == 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find worker processes")
def test_dead_rank_ends_the_whole_job(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(free_port()), "-m", "transgan.cli", "train", *TINY_RUN,
           "--out", str(run), "--images", "100000", "--checkpoint-every", "64"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for(run / "checkpoints" / "latest.pt", proc)
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    start = time.time()
    proc.communicate(timeout=120)
    assert proc.returncode != 0 and time.time() - start < 120
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["counters"]["images"] >= 64



def _flip_middle(path: Path) -> None:
    """Overwrite 4 bytes in the middle of ``path`` in place (a disk or copy fault)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        old = handle.read(4)
        handle.seek(size // 2)
        handle.write(bytes(b ^ 0xFF for b in old))


def test_a_damaged_checkpoint_is_named_and_resume_takes_the_newest_intact_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = ["train", *TINY_RUN, "--out", str(run), "--checkpoint-every", "64"]
    assert main([*args, "--images", "128"]) == 0
    latest = run / "checkpoints" / "latest.pt"
    _flip_middle(latest)  # ckpt-...128.pt is the same file (a hard link): damaged too
    capsys.readouterr()
    assert main(["sample", str(run), "--num", "2", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(latest) in err[0] and "damaged" in err[0], err
    assert main([*args, "--images", "192"]) == 0
    err = capsys.readouterr().err
    assert "resuming from ckpt-000000000064.pt, the newest intact checkpoint" in err
    assert load_checkpoint(latest)["counters"]["images"] == 192
    files = {path.stat().st_ino: path for path in (run / "checkpoints").glob("*.pt")}
    for path in files.values():  # each file once: latest.pt and its numbered link are one
        _flip_middle(path)
    assert main([*args, "--images", "256"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no numbered checkpoint beside it is intact" in err[0], err


def test_a_stopped_and_resumed_run_logs_the_records_of_an_uninterrupted_one(
        tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    args = ["train", *TINY_RUN, "--deterministic", "--checkpoint-every", "10000"]
    assert main([*args, "--out", str(straight), "--images", "256"]) == 0
    trainer = _trainer(tmp_path, 256, "--deterministic", "--checkpoint-every", "10000")
    original = trainer.built.step.cycle

    def cycle(next_batch):  # type: ignore[no-untyped-def]
        stats = original(next_batch)
        if trainer.built.counters.images == 96:  # halfway through the second 64-image window
            trainer.stop_signal = signal.SIGINT
        return stats

    trainer.built.step.cycle = cycle  # type: ignore[method-assign]
    trainer.run()
    run = tmp_path / "run"
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["counters"]["images"] == 96
    assert main([*args, "--out", str(run), "--images", "256"]) == 0
    def records(folder: Path) -> list[dict]:
        clock = ("time", "img_per_s")  # the wall clock's, not the training's
        return [{k: v for k, v in json.loads(line).items() if k not in clock}
                for line in (folder / "stats.jsonl").read_text().splitlines()]

    assert records(run) == records(straight) and len(records(run)) == 4


def test_periodic_evaluation_leaves_the_training_alone(
        tmp_path: Path, digits_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluation draws random numbers, more with a cold cache (it computes the reference
    statistics then): a run's weights are the same with it, warm or cold, and without it."""
    cold = tmp_path / "cache"
    cold.mkdir()
    for classifier in digits_cache.glob("digits-classifier-*"):
        (cold / classifier.name).write_bytes(classifier.read_bytes())
    monkeypatch.setenv("TRANSGAN_CACHE", str(cold))
    args = ["train", *TINY_RUN, "--deterministic", "--images", "96"]
    evaluating = ["--eval-every", "32", "--eval-num", "50"]
    for name, extra in (("cold", evaluating), ("warm", evaluating), ("none", [])):
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
    assert any((cold / "reference-stats").iterdir())
    weights = {name: load_checkpoint(tmp_path / name / "checkpoints" / "latest.pt")
               for name in ("cold", "warm", "none")}
    for model in ("G", "D", "G_ema"):
        for key, tensor in weights["none"][model].items():
            assert torch.equal(weights["cold"][model][key], tensor), f"{model}.{key}"
            assert torch.equal(weights["warm"][model][key], tensor), f"{model}.{key}"
