"""The two consoles: results go to stdout, progress, warnings and errors to stderr."""

from __future__ import annotations

import json
import math

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_json(data: object) -> None:
    """Print `data` as JSON on stdout, NaN written as null, nothing else on the line."""
    print(json.dumps(_finite(data), indent=2, default=str))


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def fmt(value: float, digits: int = 4) -> str:
    """Format a metric value for a table; NaN shows as 'nan'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.{digits}g}"
