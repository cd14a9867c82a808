"""The fast training step against the reference step, compiled G against eager, no host syncs,
and non-finite steps skipped on the device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_step, weights_after_cycles
from torch.utils._python_dispatch import TorchDispatchMode

from transgan.train.step import GANStep, StepImpl


def _cycle(step: GANStep, real: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # DiffAugment draws from the global generator
    stats: dict[str, torch.Tensor] = {}
    for part in step.cycle(lambda: real):
        stats.update(part)
    return stats


@pytest.mark.parametrize(("loss", "lazy"), [("wgangp-eps", 1), ("logistic-r1", 1),
                                           ("wgangp-eps", 3)])
def test_fast_step_matches_reference_step(tmp_path: Path, loss: str, lazy: int) -> None:
    fast = tiny_step(loss=loss, lazy_reg=lazy)
    ref = tiny_step(loss=loss, lazy_reg=lazy, impl=StepImpl.reference())
    assert fast.fused and not ref.fused
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    for seed in range(3):
        fast_stats, ref_stats = _cycle(fast, real, seed), _cycle(ref, real, seed)
    assert fast_stats.keys() == ref_stats.keys()
    for key, value in fast_stats.items():
        torch.testing.assert_close(value, ref_stats[key], rtol=1e-4, atol=1e-5, msg=key)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(fast, name).state_dict(), getattr(ref, name).state_dict()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=f"{name}.{key}")
    assert not torch.equal(next(fast.G.parameters()), next(tiny_step().G
                                                           .parameters()))


class _NoHostReads(TorchDispatchMode):
    """Fails on any tensor-to-Python conversion (.item(), bool(), float()): a device sync."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        if func is torch.ops.aten._local_scalar_dense.default:
            raise AssertionError("the training step read a tensor value on the host")
        return func(*args, **(kwargs or {}))


def test_training_step_never_reads_tensor_values(tmp_path: Path) -> None:
    # diffaugment params: cutout on every batch, so no coin (a CPU-side draw) is read either.
    trainer = tiny_step(augment_params="diffaugment", mtct=True)
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    with _NoHostReads():
        _cycle(trainer, real, seed=0)
    reference = tiny_step(augment_params="diffaugment", impl=StepImpl.reference())
    with pytest.raises(AssertionError, match="read a tensor value"), _NoHostReads():
        _cycle(reference, real, seed=0)


@pytest.mark.parametrize("impl", [StepImpl(), StepImpl.reference()], ids=["fused", "reference"])
def test_nonfinite_step_is_skipped(tmp_path: Path, impl: StepImpl) -> None:
    trainer = tiny_step(impl=impl)
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    _cycle(trainer, real, seed=0)
    assert not trainer.check_health() and trainer.counters.skipped == 0
    before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    adam_before = {k: v.clone() for k, v in trainer.opt_d.state[trainer.D.head.weight].items()}
    bad = real.clone()
    bad[0] = float("nan")  # a whole image: no augmentation can crop it away
    for _ in range(3):
        trainer.d_step(bad)
    for key, value in trainer.D.state_dict().items():
        assert torch.equal(value, before[key]), key
    for key, value in trainer.opt_d.state[trainer.D.head.weight].items():
        assert torch.equal(value, adam_before[key]), key
    trainer.opts.runtime.nonfinite_limit = 3
    assert trainer.check_health() and trainer.counters.skipped == 3
    trainer.d_step(real)  # a finite step ends the streak and applies again
    assert not trainer.check_health() and trainer.counters.skipped == 3
    assert not torch.equal(trainer.D.head.weight, before["head.weight"])


REAL = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_compiled_step_matches_eager_and_repeats_exactly() -> None:
    eager = weights_after_cycles(tiny_step(), REAL)
    compiled = weights_after_cycles(tiny_step(compile=True), REAL)
    step = tiny_step(compile=True)
    assert step.G_fwd is not step.G and step.D_fwd is not step.D  # both compiled
    for key, value in eager.items():
        torch.testing.assert_close(compiled[key], value, rtol=1e-4, atol=1e-5, msg=key)
    again = weights_after_cycles(tiny_step(compile=True), REAL)
    assert all(torch.equal(again[key], value) for key, value in compiled.items())
    moved = [key for key, value in tiny_step().G.state_dict().items()
             if not torch.equal(value, eager[f"G.{key}"])]
    assert moved  # the cycles trained: equal weights are not the untouched initial ones
