"""Every README example that works on `make demo`'s output runs as written, on a short run of
the same preset; the other examples are named here with the reason they cannot run in a test."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent

# Lines (by their start) that are not run, and why; every other command line is run.
NOT_RUN = {
    "make demo": "the whole demo: a short run of its preset stands in for it",
    "make test": "the test suite itself",
    "make lint": "ruff, which `make test` runs",
    "transgan train": "a training run of minutes to days, or on data a test does not have",
    "torchrun": "needs 8 GPUs",
    "transgan prepare my-photos": "the user's own pictures",
    "transgan sample runs/mine": "the run of the user's pictures",
    "transgan sample runs/digits-cond": "a full default run (the block trains it first)",
    "transgan interpolate runs/digits-cond": "a full default run (the block trains it first)",
    "transgan eval runs/cifar-s": "a CIFAR-10 run and Inception weights",
    "transgan experiment": "experiments of many runs",
    "transgan models --memory": "traces every preset (minutes); tests/test_memory.py runs it "
                                "on the digits",
    "transgan report experiments": "an experiment's runs",
    "transgan serve": "serves until stopped (tests/test_serve.py covers the page)",
    "transgan convert": "a checkpoint of the official code",
    "transgan sample official": "a converted official checkpoint",
    "transgan eval official": "a converted official checkpoint and Inception weights",
}


def code_blocks() -> list[tuple[int, str, str]]:
    """(line, language, text) of every fenced code block of the README."""
    text = README.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1), m.group(2))
            for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def commands(block: str) -> list[str]:
    """The command lines of a bash block: continuations joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def skipped(command: str) -> bool:
    plain = command.removeprefix(".venv/bin/")
    return any(plain.startswith(prefix) for prefix in NOT_RUN)


def test_every_example_is_run_or_named() -> None:
    ran = [c for _, lang, block in code_blocks() if lang == "bash" for c in commands(block)
           if not skipped(c)]
    assert len(ran) >= 10  # the sample, interpolate, eval, export and models examples
    assert all(c.split()[0] in ("transgan", ".venv/bin/transgan") for c in ran), ran


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as the repository after `make demo`, with a short run of its preset."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / ".venv").mkdir()
    (folder / ".venv" / "bin").symlink_to(BIN)
    run(folder, "transgan train --out runs/demo --images 512 --no-progress")
    return folder


def run(folder: Path, command: str) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(shlex.split(command), cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"


def test_readme_examples_run_as_written(demo_folder: Path) -> None:
    for line, lang, block in code_blocks():
        if lang == "bash":
            for command in commands(block):
                if not skipped(command):
                    run(demo_folder, command)
        elif lang == "python":
            done = subprocess.run([sys.executable, "-c", block], cwd=demo_folder,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"README line {line}:\n{done.stderr[-2000:]}"
    # The demo is conditional: each seed's file says the class the seed drew.
    assert sorted(p.name for p in (demo_folder / "picks").iterdir())[-1].startswith("seed0040-")
    assert (demo_folder / "runs" / "demo" / "truncation.png").is_file()
    assert (demo_folder / "digits-model" / "config.json").is_file()
