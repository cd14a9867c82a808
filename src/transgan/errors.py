"""Every error transgan raises on purpose, under two bases the command line catches.

A :class:`UserError` is a mistake the user can fix (an option, a file, a data set): the
command prints its one-line message and exits with status 2. A :class:`RunFailure` is work
that started and could not finish (a diverged run, an unwritable run directory, a failed
worker): one line and status 1. This module imports nothing, so that the command line can
name the errors without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so a message prints as a single line."""
    return " ".join(str(text).split())


def first_line(exc: BaseException, fallback: str | None = None) -> str:
    """The first line of ``exc``'s message, for a one-line error about a failure of another
    library; ``fallback`` (default: the exception's type name) when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else fallback or type(exc).__name__


class UserError(ValueError):
    """A mistake in what the user asked for; one line naming it (and its fix), exit 2."""


class RunFailure(RuntimeError):
    """Work that started and could not finish; one line, exit 1."""


class UsageError(UserError):
    """A bad argument of a command (other than a training option)."""


class OptionsError(UserError):
    """An invalid training option or config file."""


class RunProblems(OptionsError):
    """Every problem found in a run's options and data before it starts, each one line
    that names its fix; ``problems`` lists them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(self.problems[0] if count == 1
                         else f"{count} problems: " + " | ".join(self.problems))


class RunDirectoryBusy(OptionsError):
    """Another live process trains in the run directory."""


class ConfigError(UserError):
    """An invalid model option."""


class DataError(UserError):
    """A problem with a data spec or its files."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class MetricError(UserError):
    """A problem with an evaluation request."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class CheckpointError(UserError):
    """A checkpoint that cannot be used; names the file and the reason."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint whose contents no longer match the checksum saved with them."""


class ForeignCheckpointError(CheckpointError):
    """A readable file that is not a transgan checkpoint (e.g. one of the official code)."""


class ConversionError(CheckpointError):
    """An official checkpoint that cannot be converted."""


class OnnxExportError(CheckpointError):
    """A generator that cannot be exported to ONNX, or whose export does not match PyTorch."""


class AugmentError(UserError):
    """A bad augmentation policy or parameter set."""


class LossError(UserError):
    """An unknown loss name or an invalid loss weight."""


class ScheduleError(UserError):
    """An invalid schedule definition or text."""


class DeviceError(UserError):
    """A device name that does not parse, or names a device this machine lacks."""


class TrainingDiverged(RunFailure):
    """Training cannot continue: non-finite values persisted."""


class RunDirectoryError(RunFailure):
    """The run directory cannot be written (full disk, permissions)."""


class BenchError(RunFailure):
    """A measured configuration failed in its worker process."""


class ParameterError(UserError):
    """A bad query parameter of the sampling server; the one-line body of a 400."""


class BusyError(RunFailure):
    """The sampling server's queue is full or a request's turn did not come in time; a 503."""


class ExperimentStopped(RunFailure):
    """A signal stopped the experiment; its runs kept their checkpoints (exit 130)."""


class ExperimentFailed(RunFailure):
    """A run of an experiment failed (in a worker: the other runs stopped with their
    checkpoints; as a Slurm job waited for: it left the queue unfinished)."""
