"""Argument types and the parser class every ``transgan`` sub-command shares."""

from __future__ import annotations

import argparse
import math
from typing import Any, NoReturn

import yaml

from transgan.counts import parse_count
from transgan.train.choices import DEVICE_HELP

# Every form a generator can be read from (transgan.artifacts.loading.read_checkpoint).
GENERATOR_SOURCE_HELP = ("run directory, checkpoint (this library's or the official code's), "
                         "exported .safetensors, model folder or converted folder")


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, unless the option's help already says it
    (or there is none to say: no value, a plain switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        switch = action.nargs == 0  # store_true and the like: present or not
        if ("default" in text or default is None or default is argparse.SUPPRESS or switch
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


# Options of other GAN trainers (stylegan2-ada-pytorch, lightweight-gan) that users type out of
# habit, and what says the same here.
FOREIGN_FLAGS = {
    "--kimg": "--images N (real images, not thousands)",
    "--outdir": "--out RUN_DIR",
    "--mirror": "--hflip",
    "--gpus": "torchrun --nproc_per_node N -m transgan.cli train ...",
    "--snap": "--checkpoint-every N (images)",
    "--cfg": "--preset",
    "--image-size": "--resolution",
    "--image_size": "--resolution",
    "--num-train-steps": "--images N",
    "--results_dir": "--out RUN_DIR",
    "--batch-size": "--batch",
    "--batch_size": "--batch",
}


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one ``transgan: error:`` line, exit status 2, and
    whose help shows every option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hints = [f"{flag}: use {ours}" for flag, ours in FOREIGN_FLAGS.items()
                 if message.startswith("unrecognized arguments:")
                 and any(word.split("=")[0] == flag for word in message.split()[2:])]
        hint = f"; {'; '.join(hints)}" if hints else ""
        self.exit(2, f"transgan: error: {message}{hint} (see '{self.prog} --help')\n")


def add_device_argument(parser: argparse.ArgumentParser, default: str | None,
                        default_text: str = "") -> None:
    """``--device``, the one definition every command shares (``transgan train`` has it from
    its option table, with the same help); checked before the command runs. ``default`` None
    leaves the device to the runs, whose default ``default_text`` says."""
    note = f" (default: {default_text})" if default_text else ""
    parser.add_argument("--device", default=default, help=DEVICE_HELP + note)


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a YAML value, e.g. ``depths=[2,2]``; dashes in KEY become '_'."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key.replace("-", "_"), yaml.safe_load(value)


def count(text: str) -> int:
    """A whole number written as 60000, 60_000, 6e4, 60k or 1.1M."""
    try:
        return parse_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def class_list(text: str) -> list[str]:
    """``3``, ``0,2,4`` or ``square,circle``: classes of a class-conditional generator by index
    or name, resolved once the generator is loaded (:func:`transgan.sampling.resolve_classes`)."""
    classes = [part.strip() for part in text.split(",")]
    if not all(classes):
        raise argparse.ArgumentTypeError(
            f"expected a class (name or index) or a comma-separated list, got '{text}'")
    return classes


CLASS_HELP = ("class of a class-conditional generator by name or index, or a comma-separated "
              "list (default: all classes in turn, one per row)")


# Seeds one `--seeds` may name; a slip such as 0-1000000000 is refused before any work.
MAX_SEEDS = 1_000_000
# The largest seed a torch.Generator takes as a signed 64-bit number (as `transgan serve`).
MAX_SEED = 2**63 - 1


def seed_list(text: str) -> list[int]:
    """``0-35,40``: seeds and inclusive ranges of seeds, in the order written, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            lo = int(first)
            hi = int(last) if dash else lo
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected seeds like 0-35,40 (whole numbers >= 0), got '{text}'") from None
        if hi < lo:
            raise argparse.ArgumentTypeError(f"the seed range {part.strip()} runs backwards")
        if hi > MAX_SEED:
            raise argparse.ArgumentTypeError(f"seeds go up to {MAX_SEED}, got {hi}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds, got more in '{text}'")
        seeds.extend(range(lo, hi + 1))
    seen: set[int] = set()
    for seed in seeds:
        if seed in seen:
            raise argparse.ArgumentTypeError(f"seed {seed} is given more than once in '{text}'")
        seen.add(seed)
    return seeds


def truncation(text: str) -> float | None:
    """PSI > 0 (latents truncated at |z| <= PSI), or ``none`` for plain normal latents."""
    if text.strip().lower() == "none":
        return None
    try:
        psi = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a truncation PSI > 0 or 'none', got '{text}'") from None
    if not (math.isfinite(psi) and psi > 0):
        raise argparse.ArgumentTypeError(f"the truncation PSI must be > 0, got '{text}'")
    return psi


def truncation_list(text: str) -> list[float | None]:
    """``0.5,0.7,1,none``: truncations to evaluate in turn, each once."""
    values = [truncation(part) for part in text.split(",")]
    if len(set(values)) < len(values):
        raise argparse.ArgumentTypeError(f"a truncation is given more than once in '{text}'")
    return values


TRUNCATION_HELP = ("truncation trick (BigGAN): draw each latent component from a normal "
                   "truncated at |z| <= PSI; smaller PSI, less variety and more typical "
                   "samples. 1.0 truncates at one standard deviation (it is not 'off' as in "
                   "StyleGAN); omit it or give 'none' for plain normal latents")
