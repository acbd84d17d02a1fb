"""The precisions a replay's forward passes may run in, by name (light: for `--dtype`'s
choices without importing torch; `ndt.models.loading.DTYPES` maps them to torch dtypes)."""

from __future__ import annotations

#: The `--dtype` names, each a torch dtype's name.
DTYPE_NAMES: tuple[str, ...] = ("float32", "float64", "bfloat16", "float16")
