"""Standard JSON text for results: NaN and infinities as null, numpy scalars as numbers.

Imports nothing heavy, so that the command line can print JSON without loading numpy.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping


def json_ready(value: object) -> object:
    """`value` with NaN and infinities as None, numpy scalars as Python ones, recursively,
    so that ``json.dumps`` writes standard JSON."""
    # A numpy scalar can only exist once numpy is imported: no need to import it here.
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def to_json(value: object, indent: int | None = 2) -> str:
    """Standard JSON for `value` (see `json_ready`); other objects are written as strings."""
    return json.dumps(json_ready(value), indent=indent, default=str)
