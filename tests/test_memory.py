"""Step memory: activation checkpointing is exact, live-tensor tracking and tracing measure
what a cycle holds, --memory-budget picks the micro-batch that fits, and the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY_OPTIONS, TINY_RUN, tiny_step, weights_after_cycles

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import main
from transgan.models.build import discriminator_config, generator_config
from transgan.models.cnn import CNNDiscriminator
from transgan.models.configs import CNNDiscriminatorConfig
from transgan.nn.blocks import TransformerBlock, set_activation_checkpointing
from transgan.train.memory import (
    GIB,
    LiveTensorBytes,
    cycle_peak_bytes,
    last_fitting,
    traced_cycle_peak,
)
from transgan.train.recipes import options_for

REAL = torch.rand(16, 1, 16, 16) * 2 - 1
NOISY_D = {**TINY_OPTIONS["discriminator"], "noise": True}


def _weights_after_cycles(checkpointing: bool, **updates: Any) -> dict[str, torch.Tensor]:
    return weights_after_cycles(tiny_step(activation_checkpointing=checkpointing, **updates),
                                REAL)


@pytest.mark.parametrize("updates", [
    {},  # WGAN-GP: the penalty's double backward through recomputed blocks
    {"mtct": True, "discriminator": NOISY_D},  # MT-CT and D's noise injection
    {"loss": "logistic-r1", "augment_p": "0.5"},  # R1 through a random augmentation
], ids=["wgangp", "mtct-noise", "r1"])
def test_activation_checkpointing_trains_exactly_the_same(updates: dict[str, Any]) -> None:
    plain = _weights_after_cycles(False, **updates)
    checkpointed = _weights_after_cycles(True, **updates)
    assert plain.keys() == checkpointed.keys()
    for name, value in plain.items():
        assert torch.equal(value, checkpointed[name]), name


def test_checkpointed_blocks_are_recomputed(monkeypatch) -> None:
    calls = {"n": 0}
    forward = TransformerBlock._forward

    def counted(self, *args):
        calls["n"] += 1
        return forward(self, *args)

    monkeypatch.setattr(TransformerBlock, "_forward", counted)
    counts = []
    for checkpointing in (False, True):
        calls["n"] = 0
        _weights_after_cycles(checkpointing)
        counts.append(calls["n"])
    assert counts[1] > counts[0]
    # Sampling without gradients is never checkpointed.
    step = tiny_step(activation_checkpointing=True)
    calls["n"] = 0
    with torch.no_grad():
        step.G(torch.randn(2, step.G.latent_dim))
    assert calls["n"] == sum(1 for m in step.G.modules() if isinstance(m, TransformerBlock))


def test_checkpointing_state_is_set_per_block() -> None:
    step = tiny_step()
    blocks = [m for m in step.D.modules() if isinstance(m, TransformerBlock)]
    assert set_activation_checkpointing(step.D, True) == len(blocks) > 0
    assert all(block.checkpointing for block in blocks)
    assert set_activation_checkpointing(step.D, False) == len(blocks)
    assert not any(block.checkpointing for block in blocks)
    cnn = CNNDiscriminator(CNNDiscriminatorConfig(img_size=16, channels=1, width=16))
    assert set_activation_checkpointing(cnn, True) == 0


def test_live_tensor_bytes_counts_new_storages_while_alive() -> None:
    with LiveTensorBytes() as tracker:
        a = torch.zeros(1000, 250)  # 1,000,000 bytes
        view = a.t()
        a.add_(1)
        assert tracker.live == 1_000_000
        b = a * 2
        assert tracker.live == tracker.peak == 2_000_000
        del b
        assert tracker.live == 1_000_000
        del a, view
        assert tracker.live == 0 and tracker.peak == 2_000_000


def test_trace_equals_the_measured_cycle() -> None:
    """Fake tensors give the bytes a real cycle holds (within a few optimizer scalars); with
    n_critic D steps one is traced and the stats the others keep are added, byte for byte."""
    gaps = []
    for n_critic in (1, 3):
        updates = {**TINY_OPTIONS, "precision": "fp32", "augment_params": "diffaugment",
                   "n_critic": n_critic}
        opts = options_for("digits-vit", updates)
        measured = cycle_peak_bytes(tiny_step(**updates), lambda: REAL)
        traced = traced_cycle_peak(generator_config("digits-vit", **opts.generator),
                                   discriminator_config("digits-vit", **opts.discriminator), opts,
                                   "fp32")
        assert traced == pytest.approx(measured, rel=1e-4)
        gaps.append(traced - measured)
    assert gaps[0] == gaps[1]


@pytest.mark.parametrize("answer", [None, 0, 1, 5, 6, 17, 99])
def test_last_fitting_finds_the_boundary_without_probing_far_past_it(answer) -> None:
    probed: list[int] = []

    def fits(i: int) -> bool:
        probed.append(i)
        return answer is not None and i <= answer

    assert last_fitting(100, fits) == answer
    assert max(probed) <= 2 * (answer or 0) + 1


def _run_weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    return {**{f"G.{k}": v for k, v in state["G"].items()},
            **{f"D.{k}": v for k, v in state["D"].items()}}


def _plain_step_bytes() -> int:
    return cycle_peak_bytes(tiny_step(), lambda: REAL)


def test_memory_budget_picks_the_micro_batch_and_trains_as_by_hand(tmp_path: Path,
                                                                   capsys) -> None:
    plain = _plain_step_bytes()
    budget = plain / 2 / GIB
    budgeted = tmp_path / "budget"
    assert main(["train", *TINY_RUN, "--images", "64", "--out", str(budgeted),
                 "--memory-budget", f"{budget:.6f}"]) == 0
    log = (budgeted / "log.txt").read_text()
    line = next(line for line in log.splitlines() if "--memory-budget" in line)
    accum = int(line.split("(--accum ")[1].split(")")[0])
    assert accum > 1 and f"micro-batch {16 // accum} " in line
    saved = load_checkpoint(budgeted / "checkpoints" / "latest.pt")["options"]
    assert saved["accum"] == accum
    # The micro-batch it picked stays within the budget, measured.
    step = tiny_step(accum=accum)
    assert cycle_peak_bytes(step, lambda: REAL) <= budget * GIB
    by_hand = tmp_path / "by-hand"
    assert main(["train", *TINY_RUN, "--images", "64", "--out", str(by_hand),
                 "--accum", str(accum)]) == 0
    a, b = _run_weights(budgeted), _run_weights(by_hand)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_memory_budget_nothing_fits_is_one_line(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--images", "64", "--out", str(run),
                 "--memory-budget", "0.0001"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing fits" in err and "1 image(s)" in err
    assert not run.exists()
    assert main(["train", *TINY_RUN, "--out", str(run), "--memory-budget", "-1"]) == 2
    assert "--memory-budget must be a positive number" in capsys.readouterr().err


def test_resume_keeps_the_accumulation_a_budget_picked(tmp_path: Path) -> None:
    run = tmp_path / "run"
    budget = f"{_plain_step_bytes() / 2 / GIB:.6f}"
    assert main(["train", *TINY_RUN, "--images", "64", "--out", str(run),
                 "--memory-budget", budget]) == 0
    accum = load_checkpoint(run / "checkpoints" / "latest.pt")["options"]["accum"]
    assert main(["train", *TINY_RUN, "--images", "128", "--out", str(run),
                 "--memory-budget", budget]) == 0
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["options"]["accum"] == accum and state["counters"]["images"] == 128
    assert "resuming with the run's own --accum" in (run / "log.txt").read_text()


def test_models_memory_table(tmp_path: Path, capsys) -> None:
    out = tmp_path / "memory.json"
    assert main(["models", "--memory", "--presets", "digits", "--no-progress",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("digits "))
    data = json.loads(out.read_text())["presets"]["digits"]
    assert (data["batch"], data["g_batch"], data["accum"]) == (32, 32, 1)
    assert 0 < data["peak"]["checkpointed"] < data["peak"]["plain"] < GIB
    assert f"{data['peak']['plain'] / GIB:.2f}" in row
    # The digits models fit every card whole.
    assert all(a == 1 for label in data["accum_for"].values() for a in label.values())
    assert row.split()[-6:] == ["1/1"] * 6


def test_models_memory_user_errors(capsys) -> None:
    assert main(["models", "--memory", "--presets", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["models", "--presets", "digits"]) == 2
    assert "go with --memory" in capsys.readouterr().err
