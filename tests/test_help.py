"""Help tells the truth and comes fast: the defaults shown are those a run uses, and help and
argument errors never load torch (each command imports what it uses when it runs)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from transgan.cli.command_line import COMMANDS, build_parser
from transgan.cli.train import default_text, train_options_from_args
from transgan.models.presets import DEFAULT_PRESET, get_preset
from transgan.train.options import OPTION_NAMES

# Runs every command's --help and a usage error in one fresh interpreter and reports, for
# each, its exit status and whether torch had been imported by then.
PROBE = """
import json, sys
from transgan.cli.command_line import main
results = []
for argv in json.loads(sys.argv[1]):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    results.append([argv, status, "torch" in sys.modules])
print(json.dumps(results))
"""


def command_names() -> list[str]:
    names = [module.__name__.rsplit(".", 1)[1] for module in COMMANDS]
    return [name for name in names if name != "eval"] + ["eval", "report"]


def test_help_and_argument_errors_do_not_import_torch() -> None:
    argvs = [["--help"], ["--version"], ["no-such-command"]]
    argvs += [[name, "--help"] for name in command_names()]
    argvs += [["models"]]  # the listing too: its counts need no models built
    argvs += [["train", "--no-such-option"], ["sample"], ["eval"], ["prepare", "x"],
              ["train", "--images", "lots"], ["convert", "c.pth", "--out", "o", "--weights", "x"],
              # Value errors that need no data are found before torch loads.
              ["train", "--batch", "0"], ["train", "--preset", "nope"],
              ["train", "--device", "tpu"],
              ["train", "--conditional", "--batch", "0", "--images", "-5"]]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], capture_output=True,
                          text=True, check=True)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == len(argvs)
    for argv, status, torch_loaded in results:
        expected = 0 if argv[-1] in ("--help", "--version", "models") else 2
        assert status == expected, argv
        assert not torch_loaded, f"transgan {' '.join(argv)} imported torch"


def test_every_value_error_is_listed_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    from transgan.cli import main

    assert main(["train", "--conditional", "--batch", "0", "--images", "-5", "--lr-g", "0",
                 "--beta1", "1"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "transgan: error: 4 problems, nothing was started:"
    assert set(lines[1:]) == {"  - --images must be positive, got -5",
                              "  - --batch must be positive, got 0",
                              "  - --lr-g must be positive, got 0.0",
                              "  - Adam betas must be in [0, 1)"}


def test_running_a_command_still_finds_its_modules() -> None:
    # The models listing imports torch inside the command; it must still run from the CLI.
    done = subprocess.run([sys.executable, "-m", "transgan.cli", "models"], capture_output=True,
                          text=True, check=True)
    assert "transgan-s" in done.stdout and "tiny-32" in done.stdout


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_train_help_shows_the_defaults_a_run_without_options_uses() -> None:
    used = train_options_from_args(build_parser().parse_args(["train"]))[0]
    recipe = get_preset(DEFAULT_PRESET).recipe
    for name in OPTION_NAMES:
        note = default_text(name)
        value = used.value(name)
        if note is None:
            assert value is None or name in ("generator", "discriminator"), name
            continue
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        assert note.startswith(f"default: {shown}"), (name, note)
        assert ("recipe" in note) == (name in recipe), (name, note)


def test_train_help_says_which_defaults_the_preset_sets(capsys) -> None:
    text = help_text(capsys, "train")
    assert re.search(r"--images IMAGES .*?\(default: 60000, set by preset digits-conditional's "
                     r"recipe; general default 128000000\)", text)
    assert re.search(r"--conditional, --no-conditional .*?\(default: true, set by", text)
    assert re.search(r"--loss LOSS .*?\(default: wgangp-eps\)", text)
    assert "128000000)" not in text.split("--images")[0]


@pytest.mark.parametrize("command", ["sample", "interpolate", "serve", "eval", "bench"])
def test_every_option_with_a_value_shows_its_default(command: str, capsys) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = help_text(capsys, command).split(" options: ", 1)[1]
    for action in sub._actions:
        if action.option_strings and action.nargs != 0 and action.default is not None:
            flag = action.option_strings[-1]
            after = text.split(f"{flag} ", 1)[1].split(" --", 1)[0]
            assert "default" in after, (command, flag, after)


def test_every_command_takes_the_same_device_argument(capsys) -> None:
    from transgan.train.choices import DEVICE_HELP

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    defaults = {}
    for name, sub in commands.items():
        device = next((a for a in sub._actions if "--device" in a.option_strings), None)
        if device is None:
            continue
        assert device.help.startswith(DEVICE_HELP), name
        defaults[name] = device.default
        shown = help_text(capsys, name).split("--device DEVICE ", 1)[1]
        default = "auto" if name in ("train", "experiment", "bench") else "cpu"
        assert shown.startswith(f"{' '.join(DEVICE_HELP.split())} (default: {default})"), name
    assert defaults == {"train": argparse.SUPPRESS, "sample": "cpu", "interpolate": "cpu",
                        "serve": "cpu", "bench": "auto", "experiment": None, "eval": "cpu"}


def test_first_line_of_a_foreign_error() -> None:
    from transgan.errors import first_line

    assert first_line(RuntimeError("  bad header\n  at byte 8\n")) == "bad header"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError(""), "unreadable") == "unreadable"
