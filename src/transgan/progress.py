"""Progress of long work, readable wherever it goes: a bar on a terminal, and plain lines in
a log file or a pipe (a carriage-return bar there would become one long line of frames)."""

from __future__ import annotations

import math
import sys
import time
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

# Plain lines per piece of work off a terminal: one at every tenth, and the last.
PLAIN_LINES = 10


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, closed streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    """Seconds as H:MM:SS, hours unbounded: 3725 -> '1:02:05'; '?' when not finite."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_rate(per_second: float) -> str:
    """A speed with as many digits as it needs: 1,234 or 56.7 or 0.123."""
    return f"{per_second:,.0f}" if per_second >= 100 else f"{per_second:.3g}"


def format_speed(per_second: float, unit: str) -> str:
    """``412 img/s``, or below one unit a second the time a unit takes: ``36.1 s/preset``."""
    if 0 < per_second < 1:
        return f"{format_rate(1 / per_second)} s/{unit}"
    return f"{format_rate(per_second)} {unit}/s"


class Progress:
    """Counts done units of ``total``: a tqdm bar on a terminal; elsewhere a line such as
    ``features: 2,000/10,000 img (20%) | 412 img/s | ETA 0:00:19`` at every tenth."""

    def __init__(self, total: int, desc: str, unit: str = "img", enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.plain = enabled and not is_terminal(self.stream)
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream,
                        disable=not enabled or self.plain, dynamic_ncols=True)
        self.done = 0
        self.start = time.perf_counter()

    def update(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        self.bar.update(count)
        if self.plain and self.total > 0 and (
                self.done * PLAIN_LINES // self.total > before * PLAIN_LINES // self.total):
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        """The plain progress line of the work done so far."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        return (f"{self.desc}: {self.done:,}/{self.total:,} {self.unit} "
                f"({100 * self.done / self.total:.0f}%) | {format_speed(rate, self.unit)} | "
                f"ETA {format_duration(left)}")

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
