#!/usr/bin/env bash
# GPU check (one H100/H200): a short bf16 training run through the CLI with --cuda-graphs,
# then transgan-s, transgan-xl and transgan-v2-cifar10 at batch 128, eager, compiled and
# CUDA-graphed side by side (img/s, bf16 FLOP utilisation, memory, kernel launches, whether
# the weights match the eager run's), and a profile of transgan-xl's step.
# Results go to ${OUT:-benchmarks/results}; gpu_check.py exits 1 if weights do not match.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -m transgan.cli train --preset transgan-s --data digits --images 4096 --batch 64 \
    --precision bf16 --device cuda --out "$out/smoke-run" --no-progress \
    --log-every 1024 --sample-every 2048 --checkpoint-every 2048 --cuda-graphs
$py -m transgan.cli sample "$out/smoke-run" --num 16 --grid --out "$out/smoke-grid.png" \
    --device cuda
$py benchmarks/gpu_check.py --json "$out/gpu_check.json" "$@"
# Where transgan-xl's step spends its GPU time (phases and top kernels).
$py benchmarks/profile_step.py --preset transgan-xl --batch 128 --device cuda \
    --precision bf16 --json "$out/profile_xl.json"
