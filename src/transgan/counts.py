"""Whole-number counts as people write them: 60000, 60_000, 6e4, 60k, 1.1M."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

SUFFIXES: dict[str, int] = {"k": 1_000, "m": 1_000_000}


def parse_count(text: str) -> int:
    """``text`` as an exact integer; ValueError with a one-line message otherwise.

    Decimal arithmetic keeps "1.1M" exact (1_100_000), where a float would round.
    """
    number = text.strip()
    multiplier = 1
    if number and number[-1].lower() in SUFFIXES:
        multiplier = SUFFIXES[number[-1].lower()]
        number = number[:-1]
    try:
        amount = Decimal(number) * multiplier
    except InvalidOperation:
        raise ValueError(f"expected a number, got '{text.strip()}'") from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(f"expected a whole number, got '{text.strip()}'")
    return int(amount)
