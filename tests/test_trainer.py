"""The GAN step and the run state on their own: accumulation, learning-rate decay, the G
batch, flips apart from latents, the run-directory lock and a short run's stats line."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, tiny_step
from torch import Tensor, nn

from transgan.cli import main
from transgan.errors import RunDirectoryBusy
from transgan.train.schedules import cosine
from transgan.train.state import LOCK_NAME, RunLock
from transgan.train.step import GANStep


def _reals(seed: int, n: int = 16) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 1, 16, 16, generator=generator) * 2 - 1 for _ in range(6)]


def _train(step: GANStep, reals: list[torch.Tensor]) -> None:
    batches = iter(reals)
    for _ in range(len(reals) // step.opts.n_critic):
        step.cycle(batches.__next__)


def test_accumulation_gives_the_weights_of_one_batch(tmp_path: Path) -> None:
    # No augmentation (its draws depend on the chunking); R1 covers the penalty path.
    common = {"loss": "logistic-r1", "augment": "none"}
    one, four = tiny_step(**common), tiny_step(**common, accum=4)
    for step in (one, four):
        _train(step, _reals(0))
    for name in ("G", "D", "G_ema"):
        a, b = getattr(one, name).state_dict(), getattr(four, name).state_dict()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=f"{name}.{key}")
    assert not torch.equal(one.D.head.weight, tiny_step(**common).D.head.weight)


def test_the_linear_lr_schedule_decays_to_zero(tmp_path: Path) -> None:
    step = tiny_step(lr_schedule="linear", lr_end_ratio=0.0, images=128, lr_g=1e-3, lr_d=2e-3)
    for images, scale in ((0, 1.0), (32, 0.75), (96, 0.25), (128, 0.0), (160, 0.0)):
        step.counters.images = images
        step.apply_schedules()
        assert step.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * scale)
        assert step.opt_d.param_groups[0]["lr"] == pytest.approx(2e-3 * scale)
    before = {k: v.clone() for k, v in step.D.state_dict().items()}
    step.d_step(_reals(1)[0])  # at the end of the run: a step of size zero
    assert all(torch.equal(v, before[k]) for k, v in step.D.state_dict().items())
    fixed = tiny_step(images=128)
    fixed.counters.images = 96
    fixed.apply_schedules()
    assert fixed.opt_g.param_groups[0]["lr"] == fixed.opts.optim.lr_g


def test_cosine_follows_r3gans_formula() -> None:
    assert cosine(0, 2e-4, 5e-5, 100) == 2e-4
    assert cosine(50, 2e-4, 5e-5, 100) == pytest.approx((2e-4 + 5e-5) / 2)
    assert cosine(25, 0.9, 0.99, 100) == pytest.approx(0.9 + (1 - (1 + math.sqrt(0.5)) / 2)
                                                       * 0.09)
    assert cosine(100, 2e-4, 5e-5, 100) == cosine(1_000, 2e-4, 5e-5, 100) == 5e-5


def test_cosine_schedules_set_the_step() -> None:
    step = tiny_step(loss="rpgan", images=1_000, schedule_images=400, lr_g=2e-4, lr_d=4e-4,
                     lr_schedule="cosine", beta2_schedule="cosine", gamma_schedule="cosine",
                     augment_p_schedule="cosine", augment_p="0.55", beta2=0.99)
    for images in (0, 100, 200, 400, 800):
        step.counters.images = images
        step.apply_schedules()
        lr_scale = cosine(images, 1.0, 0.25, 400)
        assert step.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * lr_scale)
        assert step.opt_d.param_groups[0]["lr"] == pytest.approx(4e-4 * lr_scale)
        assert step.opt_d.param_groups[0]["betas"] == (0.0, pytest.approx(
            cosine(images, 0.9, 0.99, 400)))
        assert step.gamma_scale == pytest.approx(cosine(images, 1.0, 0.1, 400))
        assert float(step.augment.p) == pytest.approx(cosine(images, 0.0, 0.55, 400), abs=1e-7)
    stats = step.schedule_stats()
    assert set(stats) == {"lr_g", "beta2", "gamma_scale", "augment_p"}
    assert stats["beta2"] == pytest.approx(0.99)


def test_gamma_schedule_scales_the_penalty(monkeypatch) -> None:
    step = tiny_step(loss="rpgan", images=1_000, gamma_schedule="cosine", lazy_reg=2)
    scales: list[float] = []
    regulariser = type(step.loss).d_regulariser

    def recorded(self, *args, scale: float = 1.0, **kwargs):
        scales.append(scale)
        return regulariser(self, *args, scale=scale, **kwargs)

    monkeypatch.setattr(type(step.loss), "d_regulariser", recorded)
    step.counters.images = 500
    step.cycle(lambda: _reals(1)[0])
    assert scales == [pytest.approx(2 * cosine(500, 1.0, 0.1, 1_000))]


def test_rpgan_g_step_draws_a_real_batch_of_its_own() -> None:
    step = tiny_step(loss="rpgan")
    drawn: list[int] = []

    def batch() -> Tensor:
        drawn.append(1)
        return _reals(1)[0]

    step.cycle(batch)
    assert len(drawn) == step.opts.n_critic + 1
    plain = tiny_step()
    drawn.clear()
    plain.cycle(batch)
    assert len(drawn) == plain.opts.n_critic


def test_g_batch_sizes_the_g_step_only(tmp_path: Path) -> None:
    step = tiny_step(g_batch=48)
    sizes: list[int] = []
    step.G.register_forward_hook(lambda _m, args, _out: sizes.append(args[0].shape[0]))
    _train(step, _reals(2)[:2])
    assert sizes == [16, 16, 48]  # two D steps on the D batch, then the G step
    assert step.counters.images == 32  # the images count D's real batches


def test_flips_leave_the_latents_alone(tmp_path: Path) -> None:
    plain, flipped = tiny_step(), tiny_step(hflip=True)
    for step in (plain, flipped):
        _train(step, _reals(3)[:4])
    assert torch.equal(plain.latents(16), flipped.latents(16))
    real = _reals(4)[0]
    out, _ = flipped.real_batch(real)
    is_flipped = [torch.equal(o, r.flip(-1)) for o, r in zip(out, real, strict=True)]
    assert 0 < sum(is_flipped) < 16
    assert all(f or torch.equal(o, r) for f, o, r in zip(is_flipped, out, real, strict=True))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_run_directory_lock(tmp_path: Path) -> None:
    host = socket.gethostname()
    lock = RunLock(tmp_path)
    lock.acquire()
    assert (tmp_path / LOCK_NAME).read_text().split() == [str(os.getpid()), host]
    with pytest.raises(RunDirectoryBusy, match=f"in use by process {os.getpid()} on {host}"):
        RunLock(tmp_path).acquire()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
    (tmp_path / LOCK_NAME).write_text(f"{_dead_pid()} {host}\n")
    taken = RunLock(tmp_path)
    taken.acquire()  # the owner is gone: taken over
    assert (tmp_path / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    taken.release()


def test_a_second_training_in_a_run_directory_is_refused(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(f"{os.getppid()} {socket.gethostname()}\n")  # a live process
    args = ["train", *TINY_RUN, "--out", str(run), "--images", "32"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by process {os.getppid()}" in err[0]
    assert not (run / "stats.jsonl").exists() and not (run / "checkpoints").exists()
    (run / LOCK_NAME).write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    assert main(args) == 0
    assert not (run / LOCK_NAME).exists()  # released at the end


def test_a_run_shorter_than_the_log_interval_writes_its_stats(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--out", str(run), "--images", "32"]) == 0
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [32]
    assert isinstance(records[0]["loss_d"], float) and records[0]["g_step"] == 1


def test_step_state_round_trip(tmp_path: Path) -> None:
    step = tiny_step()
    _train(step, _reals(5)[:2])
    other = tiny_step()
    other.load_state_dict(step.state_dict())
    for name in ("G", "D", "G_ema"):
        for (key, a), b in zip(getattr(step, name).state_dict().items(),
                               getattr(other, name).state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{name}.{key}"
    assert isinstance(other.G, nn.Module) and other.opt_d.state_dict()["state"]


def test_the_step_runs_on_its_own_without_a_trainer(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from transgan import build_discriminator, build_generator
    from transgan.train.distributed import DistInfo
    from transgan.train.recipes import options_for
    from transgan.train.state import Counters

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    G = build_generator("digits", width=32, depths=[1, 1], latent_dim=16)
    D = build_discriminator("digits", width=32, depth=1, patch=4)
    opts = options_for("digits", {"batch": 8, "n_critic": 2})
    counters = Counters()
    step = GANStep(G, D, opts, DistInfo(0, 0, 1, torch.device("cpu")), "fp32", counters)
    before = {k: v.clone() for k, v in D.state_dict().items()}
    reals = iter(_reals(1, n=8))
    stats = step.cycle(reals.__next__)
    assert len(stats) == 3 and all(torch.isfinite(s["d_loss"]) for s in stats[:2])
    assert (counters.images, counters.d_steps, counters.g_steps) == (16, 2, 1)
    assert any(not torch.equal(v, before[k]) for k, v in D.state_dict().items())
    # The first G step copies G into its EMA (the official schedule).
    assert all(torch.equal(a, b) for a, b in zip(G.parameters(), step.G_ema.parameters(),
                                                 strict=True))
    assert list(tmp_path.iterdir()) == []  # no run directory, no files
