"""Adaptive augmentation: the probability DiffAugment applies, and the controller that moves it."""

from __future__ import annotations

import torch

from transgan.train.ada import AdaController, AdaSettings
from transgan.train.augment import DiffAugment


def test_p_zero_leaves_every_sample_and_p_one_augments_every_sample() -> None:
    x = torch.rand(16, 1, 8, 8) + 1.0
    assert torch.equal(DiffAugment("color,translation", p=0.0)(x), x)
    torch.manual_seed(0)
    out = DiffAugment("color", p=1.0)(x)
    assert all(not torch.equal(out[i], x[i]) for i in range(16))


def test_p_augments_about_that_fraction_of_samples() -> None:
    torch.manual_seed(0)
    x = torch.rand(4000, 1, 4, 4) + 1.0
    out = DiffAugment("color", p=0.3)(x)
    changed = (out != x).flatten(1).any(dim=1).float().mean().item()
    assert abs(changed - 0.3) < 0.03


def test_fixed_policy_without_p_is_unchanged_by_the_option() -> None:
    x = torch.rand(8, 3, 8, 8)
    torch.manual_seed(3)
    a = DiffAugment("translation,cutout,color")(x)
    torch.manual_seed(3)
    b = DiffAugment("translation,cutout,color", p=None)(x)
    assert torch.equal(a, b)


def _controller(interval: int = 2, speed: int = 100) -> AdaController:
    return AdaController(AdaSettings(target=0.6, interval=interval, speed=speed), batch=10,
                         device=torch.device("cpu"))


def test_p_rises_while_d_is_sure_of_the_reals_and_falls_when_not() -> None:
    ada = _controller()
    for _ in range(4):  # two adjustments of 2 x 10 / 100 = 0.2 each
        ada.observe(torch.tensor(0.9))
    assert abs(float(ada.p) - 0.4) < 1e-6
    assert abs(float(ada.rt) - 0.9) < 1e-6
    for _ in range(2):
        ada.observe(torch.tensor(0.1))
    assert abs(float(ada.p) - 0.2) < 1e-6


def test_p_moves_only_every_interval_and_stays_in_the_unit_interval() -> None:
    ada = _controller(interval=3, speed=10)
    ada.observe(torch.tensor(1.0))
    ada.observe(torch.tensor(1.0))
    assert float(ada.p) == 0.0
    ada.observe(torch.tensor(1.0))
    assert float(ada.p) == 1.0  # 3 x 10 / 10 = 3, clamped
    for _ in range(3):
        ada.observe(torch.tensor(-1.0))
    assert float(ada.p) == 0.0


def test_rt_is_the_mean_over_the_interval() -> None:
    ada = _controller(interval=2)
    ada.observe(torch.tensor(1.0))
    ada.observe(torch.tensor(0.0))
    assert abs(float(ada.rt) - 0.5) < 1e-6
    assert float(ada.p) == 0.0  # 0.5 < target 0.6: p would fall, stays at 0


def test_state_round_trip_continues_exactly() -> None:
    a, b = _controller(interval=3), _controller(interval=3)
    for value in (0.9, 0.8, 0.7, 0.95):
        a.observe(torch.tensor(value))
    b.load_state_dict(a.state_dict())
    for value in (0.9, 0.2, 0.99):
        a.observe(torch.tensor(value))
        b.observe(torch.tensor(value))
    assert torch.equal(a.p, b.p) and torch.equal(a.rt, b.rt)
