"""Options shared by several commands, and the bounds of numeric options, checked when the
command line is parsed (usage error, exit 2).

Integers use Typer's ``min=``/``max=``; floats go through `real`, which also refuses NaN
and the infinities (Click's FloatRange lets NaN through, as every comparison with it is
false).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Annotated

import typer

#: ``--trust-code`` of the commands that build a model an ndt.toml names.
TrustCode = Annotated[
    bool,
    typer.Option(
        "--trust-code",
        help="Run the model factory that ndt.toml names even if you never trusted it "
        "(see `ndt trust`).",
    ),
]
#: Seeds are numpy's: 0 <= seed < 2**32.
SEED_MAX = 2**32 - 1
#: torch's intra-op threads: more than a few per core only oversubscribes (and very large
#: counts crash OpenMP).
THREADS_MAX = 4 * (os.cpu_count() or 1)
#: Surrogates per curve: 19 gives p >= 0.05 at best; a million is 8 MB per curve point.
N_SURROGATES_MIN, N_SURROGATES_MAX = 19, 10**6


def real(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[float | None], float | None]:
    """A callback accepting finite floats in the interval [low, high] (open where asked)."""
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    interval = f"{left}{'-inf' if low is None else f'{low:g}'}, "
    interval += f"{'inf' if high is None else f'{high:g}'}{right}"

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or below or above:
            raise typer.BadParameter(f"{value:g} is not a finite number in {interval}.")
        return value

    return check
