"""The trainer follows the official TransGAN recipe (EMA schedule) and logs mean losses."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN
from torch import nn

from transgan.cli import build_parser, train_options_from_args
from transgan.train import step
from transgan.train.losses import GANLoss, WGANGPEps
from transgan.train.training import Trainer


def _trainer(tmp_path: Path, *extra: str) -> Trainer:
    args = build_parser().parse_args(
        ["train", *TINY_RUN, "--out", str(tmp_path / "run"), "--precision", "fp32", *extra])
    opts, _ = train_options_from_args(args)
    return Trainer.from_options(opts)


def test_ema_updates_once_per_g_step_with_the_official_beta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # D batch 16, n_critic 2, and a G batch of 32 that must not enter the schedule.
    trainer = _trainer(tmp_path, "--images", "160", "--g-batch", "32")
    calls: list[tuple[int, float, bool]] = []
    real_update = step.update_ema

    def recording_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
        real_update(ema, model, beta)
        copied = all(torch.equal(e, m) for e, m in zip(ema.parameters(), model.parameters(),
                                                         strict=True))
        calls.append((trainer.built.counters.g_steps, beta, copied))

    monkeypatch.setattr(step, "update_ema", recording_update)
    trainer.run()
    assert trainer.built.counters.g_steps == 5
    assert [g for g, _, _ in calls] == [1, 2, 3, 4, 5]  # once per G step, after it
    # Official: cur_nimg = D batch x D iterations before the one the k-th G step follows
    # (n_critic x k); beta = 0.5 ** (D batch / min(500k, 0.1 x cur_nimg)).
    assert calls[0][1] == 0.0 and calls[0][2]  # first G step: the EMA becomes a copy of G
    for k in range(1, 5):
        expected = 0.5 ** (16 / min(500_000, 0.1 * 16 * 2 * k))
        assert calls[k][1] == pytest.approx(expected, rel=1e-12)
        assert not calls[k][2]


def test_logged_losses_are_means_over_every_d_step_and_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # n_critic 2, 2 accumulation chunks, a log line every 64 images: each line covers 2 G
    # steps, 4 D steps, 8 D chunks and 4 G chunks.
    trainer = _trainer(tmp_path, "--images", "128", "--accum", "2")
    d_chunks: list[float] = []
    g_chunks: list[float] = []
    main_loss, penalty, adversarial = WGANGPEps.d_main, WGANGPEps.d_regulariser, GANLoss.g_main

    def recording_main(*args, **kwargs):  # type: ignore[no-untyped-def]
        loss, stats = main_loss(*args, **kwargs)
        d_chunks.append(loss.item())
        return loss, stats

    def recording_penalty(*args, **kwargs):  # type: ignore[no-untyped-def]
        term, stats = penalty(*args, **kwargs)
        d_chunks[-1] += term.item()  # a chunk's D loss is its main loss plus its penalty
        return term, stats

    def recording_g(*args, **kwargs):  # type: ignore[no-untyped-def]
        loss, stats = adversarial(*args, **kwargs)
        g_chunks.append(loss.item())
        return loss, stats

    monkeypatch.setattr(WGANGPEps, "d_main", recording_main)
    monkeypatch.setattr(WGANGPEps, "d_regulariser", recording_penalty)
    monkeypatch.setattr(GANLoss, "g_main", recording_g)
    run = trainer.run()
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [64, 128]
    assert len(d_chunks) == 16 and len(g_chunks) == 8
    for i, record in enumerate(records):
        assert record["loss_d"] == pytest.approx(statistics.fmean(d_chunks[8 * i: 8 * i + 8]),
                                                 rel=1e-5, abs=1e-6)
        assert record["loss_g"] == pytest.approx(statistics.fmean(g_chunks[4 * i: 4 * i + 4]),
                                                 rel=1e-5, abs=1e-6)
