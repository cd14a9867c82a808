"""The benchmark command runs end to end in quick mode and reports every figure."""

from __future__ import annotations

import json
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
