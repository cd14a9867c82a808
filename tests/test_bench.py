"""The benchmark command runs end to end in quick mode and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from transgan.cli import main

KEYS = (
    "train_img_per_s", "naive_train_img_per_s", "speedup_vs_naive", "sample_img_per_s",
    "flop_utilisation", "matmul_peak_flops", "peak_memory_bytes", "naive_peak_memory_bytes",
    "lazy_train_img_per_s", "precision_matmul_peak_flops", "flop_utilisation_of_precision_peak",
    "step_memory_bytes", "naive_step_memory_bytes", "step_memory_ratio_vs_naive",
)


def test_bench_quick_writes_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--preset", "digits", "--batch", "8", "--device", "cpu", "--quick",
                 "--lazy", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(result[key], float | int) and result[key] > 0, key
    assert 0 < result["flop_utilisation"] < 1.5
    assert result["precision"] == "fp32"  # the digits recipe's precision
    assert result["flop_utilisation_of_precision_peak"] == result["flop_utilisation"]
    assert result["flops_per_cycle"] > 1e6
    for run in result["runs"].values():
        assert 0 < run["step_memory_bytes"] < run["peak_memory_bytes"]
    printed = capsys.readouterr().out
    assert "speed-up vs naive" in printed and "FLOP utilisation" in printed


def test_profile_step_script_reports_phases_and_ops(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    script = Path(__file__).parents[1] / "benchmarks" / "profile_step.py"
    subprocess.run([sys.executable, str(script), "--preset", "digits", "--batch", "8",
                    "--cycles", "1", "--precision", "fp32", "--json", str(out)],
                   check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert {"transgan.d_step", "transgan.g_step", "transgan.optimizer",
            "transgan.penalty_forward"} <= result["phases_ms"].keys()
    assert result["ms_per_cycle"] > 0 and len(result["top_ops"]) >= 10
    assert abs(sum(op["share"] for op in result["top_ops"]) - 1) < 0.5


def test_bench_user_errors_are_one_line(capsys) -> None:
    assert main(["bench", "--device", "nodevice", "--quick"]) == 2
    assert main(["bench", "--preset", "digits", "--batch", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("transgan: error: ") for line in err)


def test_bench_worker_failure_is_one_line(capsys) -> None:
    # digits has 1,797 images, fewer than one batch: the worker fails while building.
    assert main(["bench", "--preset", "digits", "--batch", "4096", "--device", "cpu",
                 "--quick"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fewer than one batch" in err[0]
