"""Start-up time of the command line against `import torch`, measured side by side.

Runs each command several times in fresh interpreters, alternating them so that a busy
machine slows all alike, and prints the median wall time of each and its ratio to
`import torch`. Target: `transgan --help` at most a quarter of `import torch`.

    .venv/bin/python benchmarks/startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "transgan --help": [str(BIN / "transgan"), "--help"],
    "transgan train --help": [str(BIN / "transgan"), "train", "--help"],
    "transgan sample (argument error)": [str(BIN / "transgan"), "sample"],
    "transgan train --batch 0 (value error)": [str(BIN / "transgan"), "train", "--batch", "0"],
    "transgan --version": [str(BIN / "transgan"), "--version"],
}
TARGET = 0.25


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # warm the file cache once
        wall_time(command)
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(wall_time(command))
    torch_time = statistics.median(times["python -c 'import torch'"])
    width = max(map(len, COMMANDS))
    print(f"{'command'.ljust(width)}  median s   x import torch   ({args.repeats} runs each)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name.ljust(width)}  {median:8.3f}   {median / torch_time:14.3f}")
    ratio = statistics.median(times["transgan --help"]) / torch_time
    verdict = "met" if ratio <= TARGET else "missed"
    print(f"transgan --help takes {ratio:.3f} of import torch's time: target <= {TARGET} {verdict}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
