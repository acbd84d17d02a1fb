"""The two consoles: results go to stdout, progress, warnings and errors to stderr."""

from __future__ import annotations

import math

from rich.console import Console

from ndt.io.json_text import to_json

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_json(data: object) -> None:
    """Print `data` as standard JSON on stdout (NaN written as null)."""
    print(to_json(data))


def fmt(value: float, digits: int = 4) -> str:
    """Format a metric value for a table; NaN shows as 'nan'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.{digits}g}"


def count(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1: "1 checkpoint", "6 checkpoints"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
