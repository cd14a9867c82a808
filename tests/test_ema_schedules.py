"""Tests for the EMA helpers, the locality window schedule and the MT-CT switch-off."""

import pytest
import torch
from torch import nn

from transgan.errors import ScheduleError
from transgan.train.ema import ema_beta, make_ema, update_ema
from transgan.train.schedules import LocalitySchedule, mtct_active


def test_ema_beta_values() -> None:
    assert ema_beta(64, 10_000, 500_000, 0.1) == pytest.approx(0.5 ** (64 / 1000))
    assert ema_beta(64, 10_000, 500_000, None) == pytest.approx(0.5 ** (64 / 500_000))
    assert ema_beta(64, 10**9, 500_000, 0.1) == pytest.approx(0.5 ** (64 / 500_000))
    assert ema_beta(32, 0, 500_000, 0.1) == 0.0  # warm-up start: the EMA simply copies G
    assert ema_beta(100, 0, 100, None) == pytest.approx(0.5)


@pytest.mark.parametrize("d_iterations", [4, 40, 4_000, 78_124, 78_128, 400_000])
def test_ema_beta_official_numbers(d_iterations: int) -> None:
    # Official TransGAN (functions.py), CIFAR recipe: global D batch 64, ema_kimg 500,
    # ema_warmup 0.1; cur_nimg = 64 x D iterations before the one the G step follows.
    expected = 0.5 ** (64 / min(500_000, 0.1 * 64 * d_iterations))
    assert ema_beta(64, 64 * d_iterations, 500_000, 0.1) == pytest.approx(expected, rel=1e-12)
    # Past warm-up (64 x 78,125 x 0.1 = 500k) the half-life is 500k / 64 = 7812.5 G steps.
    if d_iterations >= 78_125:
        assert ema_beta(64, 64 * d_iterations, 500_000, 0.1) ** 7812.5 == pytest.approx(0.5)


class WithBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.norm = nn.BatchNorm1d(2)


def test_update_ema_lerp_and_buffers() -> None:
    torch.manual_seed(0)
    model = WithBuffer()
    ema = make_ema(model)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model.norm.running_mean.fill_(0.7)
        model.norm.num_batches_tracked.fill_(5)
    update_ema(ema, model, 0.9)
    model_state = model.state_dict()
    for name, _ in model.named_parameters():
        expected = 0.9 * before[name] + 0.1 * model_state[name]
        assert torch.allclose(ema.state_dict()[name], expected, atol=1e-6)
    assert torch.equal(ema.norm.running_mean, model.norm.running_mean)
    assert int(ema.norm.num_batches_tracked) == 5
    update_ema(ema, model, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters(), strict=True))


def test_make_ema_is_frozen_copy() -> None:
    model = nn.Linear(3, 2)
    ema = make_ema(model)
    assert ema is not model and not ema.training
    assert all(not p.requires_grad for p in ema.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters(), strict=True))


def test_official_cifar_schedule() -> None:
    schedule = LocalitySchedule.official()
    assert schedule.kind == "band"
    assert schedule.window_at(0) == 4
    assert schedule.window_at(22 * 50_000 - 1) == 4
    assert schedule.window_at(22 * 50_000) == 6
    assert schedule.window_at(32 * 50_000) == 8
    assert schedule.window_at(42 * 50_000) == 10
    assert schedule.window_at(60 * 50_000 - 1) == 10
    assert schedule.window_at(60 * 50_000) is None
    assert LocalitySchedule.official("official", 1000, kind="square").steps[0] == (22_000, 4)


def test_parse_schedule() -> None:
    parsed = LocalitySchedule.parse("1.1M:4,1.6M:6")
    assert parsed.steps == ((1_100_000, 4), (1_600_000, 6))
    assert parsed == LocalitySchedule.parse("1100000:4, 1600000:6")
    assert LocalitySchedule.parse("500k:2", kind="square").steps == ((500_000, 2),)
    for text in ("", "none", "None"):
        empty = LocalitySchedule.parse(text)
        assert empty.steps == () and empty.window_at(0) is None


@pytest.mark.parametrize(
    "text", ["abc", "1M", "1M:x", "1M:0", "2M:4,1M:6", "1M:4,1M:6", "1.5:3", "0:4", "1M:4,"]
)
def test_parse_rejects_bad_text(text: str) -> None:
    with pytest.raises(ScheduleError) as info:
        LocalitySchedule.parse(text)
    assert "\n" not in str(info.value)


def test_invalid_schedules() -> None:
    with pytest.raises(ScheduleError):
        LocalitySchedule(((10, 4),), kind="circle")
    with pytest.raises(ScheduleError):
        LocalitySchedule(((10, 4), (5, 6)))
    with pytest.raises(ScheduleError):
        LocalitySchedule(((10, -1),))
    with pytest.raises(ScheduleError):
        LocalitySchedule(((10,),))


def test_mtct_active() -> None:
    assert mtct_active(10**9, None)
    assert not mtct_active(0, 0)
    assert mtct_active(99, 100)
    assert not mtct_active(100, 100)
