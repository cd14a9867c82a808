"""What `transgan bench` reports from its measurements: the ratios between configurations,
the table it prints and the JSON it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def finite_difference_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The finite-difference penalty against the exact one (cycle time, aten operators, step
    memory), and, where measured, checkpointing against the plain finite-difference path."""
    fd, exact = runs["finite_difference"], runs["default"]
    ratios = {
        "fd_train_img_per_s": fd["train_img_per_s"],
        "fd_time_ratio": fd["seconds_per_cycle"] / exact["seconds_per_cycle"],
        "fd_ops_ratio": fd["aten_ops_per_cycle"] / exact["aten_ops_per_cycle"],
        "fd_step_memory_ratio": fd["step_memory_bytes"] / exact["step_memory_bytes"],
    }
    if "fd_checkpointed" in runs:
        checkpointed = runs["fd_checkpointed"]
        ratios.update({
            "fd_checkpointed_train_img_per_s": checkpointed["train_img_per_s"],
            "fd_checkpointed_step_memory_ratio": (checkpointed["step_memory_bytes"]
                                                  / fd["step_memory_bytes"]),
            "fd_checkpointed_tensor_memory_ratio": (checkpointed["step_tensor_bytes"]
                                                    / fd["step_tensor_bytes"]),
            "fd_checkpointed_time_ratio": (checkpointed["seconds_per_cycle"]
                                           / fd["seconds_per_cycle"]),
        })
    return ratios


def checkpointing_ratios(plain: dict[str, Any], checkpointed: dict[str, Any]) -> dict[str, Any]:
    """Activation checkpointing against the plain default path: step memory (above the memory
    in use before the run, and of live tensors) and cycle time, as ratios."""
    return {
        "checkpointed_train_img_per_s": checkpointed["train_img_per_s"],
        "checkpointed_step_memory_ratio": (checkpointed["step_memory_bytes"]
                                           / plain["step_memory_bytes"]),
        "checkpointed_tensor_memory_ratio": (checkpointed["step_tensor_bytes"]
                                             / plain["step_tensor_bytes"]),
        "checkpointed_time_ratio": (checkpointed["seconds_per_cycle"]
                                    / plain["seconds_per_cycle"]),
    }


def format_table(result: dict[str, Any]) -> str:
    """Human-readable summary of :func:`run_bench`'s result."""
    gib = 1024**3
    runs = result["runs"]

    def memory(run: dict[str, Any]) -> tuple[str, str, str, str]:
        return (f"{run['peak_memory_bytes'] / gib:.2f} GiB",
                f"{run['step_memory_bytes'] / gib:.2f} GiB",
                f"{run['step_tensor_bytes'] / gib:.2f} GiB", f"{run['aten_ops_per_cycle']:,}")

    rows = [
        ("configuration", "train img/s", "sample img/s", "peak memory", "step memory",
         "step tensors", "aten ops/cycle"),
        ("default (SDPA)", f"{result['train_img_per_s']:.2f}", f"{result['sample_img_per_s']:.1f}",
         *memory(runs["default"])),
        (f"lazy reg k={result['lazy_reg']}", f"{result['lazy_train_img_per_s']:.2f}", "",
         *memory(runs["lazy"])),
        ("naive (official-style)", f"{result['naive_train_img_per_s']:.2f}",
         f"{result['naive_sample_img_per_s']:.1f}", *memory(runs["naive"])),
    ]
    if "checkpointed" in runs:
        rows.append(("activation checkpointing",
                     f"{result['checkpointed_train_img_per_s']:.2f}", "",
                     *memory(runs["checkpointed"])))
    if "finite_difference" in runs:
        rows.append(("finite-difference penalty", f"{result['fd_train_img_per_s']:.2f}", "",
                     *memory(runs["finite_difference"])))
    if "fd_checkpointed" in runs:
        rows.append(("finite-difference + checkpointing",
                     f"{result['fd_checkpointed_train_img_per_s']:.2f}", "",
                     *memory(runs["fd_checkpointed"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{result['preset']} batch {result['batch']} {result['loss']} on {result['device']} "
             f"({result['machine']}, {result['threads']} threads, torch {result['torch']}, "
             f"{result['precision']}{', compiled' if result['compile'] else ''})"]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.append(
        f"speed-up vs naive: {result['speedup_vs_naive']:.2f}x (lazy reg: "
        f"{result['lazy_speedup_vs_naive']:.2f}x); memory vs naive: "
        f"{result['memory_ratio_vs_naive']:.0%} of the peak, "
        f"{result['step_memory_ratio_vs_naive']:.0%} of the step memory (peak above the "
        "memory in use before the models were built)"
    )
    lines.append(
        f"FLOP utilisation: {result['flop_utilisation']:.1%} (lazy reg "
        f"{result['lazy_flop_utilisation']:.1%}) of a measured matmul peak of "
        f"{result['matmul_peak_flops'] / 1e9:.0f} GFLOP/s; "
        f"{result['flops_per_cycle'] / 1e9:.1f} GFLOP per training cycle"
    )
    if "checkpointed" in runs:
        lines.append(
            f"activation checkpointing: {result['checkpointed_step_memory_ratio']:.0%} of the "
            f"step memory ({result['checkpointed_tensor_memory_ratio']:.0%} of the step's "
            f"tensors) at {result['checkpointed_time_ratio']:.2f}x the cycle time")
    if "finite_difference" in runs:
        lines.append(
            f"finite-difference penalty against the exact one: {result['fd_time_ratio']:.2f}x "
            f"the cycle time, {result['fd_ops_ratio']:.0%} of the aten ops, "
            f"{result['fd_step_memory_ratio']:.0%} of the step memory")
    if "fd_checkpointed" in runs:
        lines.append(
            f"finite-difference with activation checkpointing: "
            f"{result['fd_checkpointed_step_memory_ratio']:.0%} of its step memory "
            f"({result['fd_checkpointed_tensor_memory_ratio']:.0%} of the step's tensors) at "
            f"{result['fd_checkpointed_time_ratio']:.2f}x its cycle time")
    if result["precision_matmul_peak_flops"] != result["matmul_peak_flops"]:
        lines.append(
            f"  of the {result['precision']} matmul peak measured beside it "
            f"({result['precision_matmul_peak_flops'] / 1e9:.0f} GFLOP/s): "
            f"{result['flop_utilisation_of_precision_peak']:.1%}"
        )
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
