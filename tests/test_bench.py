"""The benchmark: it times the trainer's own step, counts FLOPs right, and the lazy
regularisation it reports does less work; user errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from transgan.bench import (
    BenchConfig,
    FlopCount,
    trained_weights,
    training_cycle,
    update_disagreement,
)
from transgan.cli import main


def test_flop_count_of_a_matrix_product() -> None:
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    with FlopCount() as counter:
        a @ b
        torch.relu(a)  # no FLOP formula: not counted
    assert counter.flops == 2 * 3 * 5 * 7
    assert counter.ops == 2  # every dispatched operator is counted


def test_ops_of_a_backward_pass_are_counted() -> None:
    w = torch.randn(5, 7, requires_grad=True)
    with FlopCount() as forward_only:
        (torch.randn(3, 5) @ w).sum()
    with FlopCount() as both:
        (torch.randn(3, 5) @ w).sum().backward()
    assert both.ops > forward_only.ops >= 3


def test_a_cycle_is_one_training_cycle_of_the_trainer() -> None:
    cfg = BenchConfig(preset="digits", batch=8, device="cpu", precision="fp32")
    with training_cycle(cfg) as (trainer, cycle):
        before = trainer.G.latent_to_tokens.weight.clone()
        cycle()
        c, n_critic = trainer.counters, trainer.opts.n_critic
        assert (c.images, c.d_steps, c.g_steps) == (8 * n_critic, n_critic, 1)
        assert not torch.equal(trainer.G.latent_to_tokens.weight, before)


def test_update_disagreement_is_relative_to_the_move() -> None:
    start = {"w": torch.zeros(4)}
    a = {"w": torch.ones(4)}  # moved by 2
    assert update_disagreement(start, a, {"w": torch.tensor([1.2, 1.0, 1.0, 1.0])}) == (
        pytest.approx(0.1))
    assert update_disagreement(start, a, a) == 0.0
    with pytest.raises(ValueError, match="did not move"):
        update_disagreement(start, start, a)


def test_the_weights_check_sees_float_rounding_and_nothing_else() -> None:
    cfg = BenchConfig(preset="digits", batch=8, device="cpu", precision="fp32")
    start, weights = trained_weights(cfg, cycles=2)
    assert update_disagreement(start, weights, trained_weights(cfg, cycles=2)[1]) == 0.0
    # The naive attention and the reference step reorder sums only.
    _, naive = trained_weights(BenchConfig(**{**cfg.__dict__, "attention": "naive",
                                              "reference_step": True}), cycles=2)
    assert 0.0 < update_disagreement(start, weights, naive) < 1e-3
    _, bf16 = trained_weights(BenchConfig(**{**cfg.__dict__, "precision": "bf16"}), cycles=2)
    assert update_disagreement(start, weights, bf16) > 10 * update_disagreement(
        start, weights, naive)


def test_bench_quick_writes_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--preset", "digits-vit", "--batch", "8", "--device", "cpu", "--quick",
                 "--lazy", "2", "--activation-checkpointing", "--loss", "rpgan",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert result["precision"] == "fp32"  # the digits recipe's precision
    assert result["loss"] == "rpgan" and {run["loss"] for run in runs.values()} == {"rpgan"}
    assert (runs["finite_difference"]["penalty"], runs["default"]["penalty"]) == (
        "finite-difference", "exact")
    # No double backward: far fewer operators than the exact penalty, and a twin pass's FLOPs.
    assert result["fd_ops_ratio"] < 0.8
    assert result["fd_ops_ratio"] == pytest.approx(
        runs["finite_difference"]["aten_ops_per_cycle"] / result["aten_ops_per_cycle"])
    assert runs["fd_checkpointed"]["activation_checkpointing"]
    assert result["fd_checkpointed_tensor_memory_ratio"] < 1
    assert result["fd_time_ratio"] > 0 and result["fd_checkpointed_time_ratio"] > 0
    # The penalty on every second D step only: fewer FLOPs per cycle than on every one.
    assert runs["lazy"]["flops_per_cycle"] < runs["default"]["flops_per_cycle"]
    assert result["flops_per_cycle"] == runs["default"]["flops_per_cycle"]
    for run in runs.values():
        assert 0 < run["step_memory_bytes"] < run["peak_memory_bytes"]
        assert isinstance(run["aten_ops_per_cycle"], int) and run["aten_ops_per_cycle"] > 100
    assert result["aten_ops_per_cycle"] == runs["default"]["aten_ops_per_cycle"]
    # The lazy run skips the penalty's double backward on every second D step.
    assert runs["lazy"]["aten_ops_per_cycle"] < runs["default"]["aten_ops_per_cycle"]
    # Checkpointing recomputes the blocks: more operators, no more live tensors.
    assert runs["checkpointed"]["aten_ops_per_cycle"] > runs["default"]["aten_ops_per_cycle"]
    assert 0 < result["checkpointed_tensor_memory_ratio"] <= 1
    assert result["checkpointed_time_ratio"] > 0 and result["checkpointed_step_memory_ratio"] > 0
    printed = capsys.readouterr().out
    assert "activation checkpointing:" in printed
    assert "finite-difference penalty against the exact one" in printed
    assert f"{result['train_img_per_s']:.2f}" in printed and "speed-up vs naive" in printed
    assert f"{result['aten_ops_per_cycle']:,}" in printed


def test_profile_step_script_reports_phases_and_ops(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    script = Path(__file__).parents[1] / "benchmarks" / "profile_step.py"
    subprocess.run([sys.executable, str(script), "--preset", "digits-vit", "--batch", "8",
                    "--cycles", "1", "--precision", "fp32", "--json", str(out)],
                   check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert {"transgan.d_step", "transgan.g_step", "transgan.optimizer",
            "transgan.penalty_forward"} <= result["phases_ms"].keys()
    assert result["ms_per_cycle"] > 0 and len(result["top_ops"]) >= 10
    assert abs(sum(op["share"] for op in result["top_ops"]) - 1) < 0.5


def test_bench_user_errors_are_one_line(capsys) -> None:
    assert main(["bench", "--device", "nodevice", "--quick"]) == 2
    assert main(["bench", "--preset", "digits-vit", "--batch", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("transgan: error: ") for line in err)


def test_bench_worker_failure_is_one_line(capsys) -> None:
    # digits has 1,797 images, fewer than one batch: the worker fails while building.
    assert main(["bench", "--preset", "digits-vit", "--batch", "4096", "--device", "cpu",
                 "--quick"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fewer than one batch" in err[0]
