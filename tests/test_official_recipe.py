"""The trainer follows the official TransGAN recipe: EMA schedule and logged losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN
from torch import nn

from transgan.cli import build_parser, train_options_from_args
from transgan.train import loop
from transgan.train.loop import Trainer


def _trainer(tmp_path: Path, *extra: str) -> Trainer:
    args = build_parser().parse_args(
        ["train", *TINY_RUN, "--out", str(tmp_path / "run"), "--precision", "fp32", *extra])
    opts, _ = train_options_from_args(args)
    return Trainer(opts)


def test_ema_updates_once_per_g_step_with_the_official_beta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # D batch 16, n_critic 2, and a G batch of 32 that must not enter the schedule.
    trainer = _trainer(tmp_path, "--images", "160", "--g-batch", "32")
    calls: list[tuple[int, float, bool]] = []
    real_update = loop.update_ema

    def recording_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
        real_update(ema, model, beta)
        copied = all(torch.equal(e, m) for e, m in zip(ema.parameters(), model.parameters(),
                                                         strict=True))
        calls.append((trainer.counters.g_steps, beta, copied))

    monkeypatch.setattr(loop, "update_ema", recording_update)
    trainer.run()
    assert trainer.counters.g_steps == 5
    assert [g for g, _, _ in calls] == [1, 2, 3, 4, 5]  # once per G step, after it
    # Official: cur_nimg = D batch x D iterations before the one the k-th G step follows
    # (n_critic x k); beta = 0.5 ** (D batch / min(500k, 0.1 x cur_nimg)).
    assert calls[0][1] == 0.0 and calls[0][2]  # first G step: the EMA becomes a copy of G
    for k in range(1, 5):
        expected = 0.5 ** (16 / min(500_000, 0.1 * 16 * 2 * k))
        assert calls[k][1] == pytest.approx(expected, rel=1e-12)
        assert not calls[k][2]
