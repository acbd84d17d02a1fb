"""Public names of a package imported on first use, so that importing the package (and
`ndt --help`) stays fast: a package's ``__init__`` maps each name to its module and sets
``__getattr__ = lazy_names(__name__, NAMES)``."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` (PEP 562) that imports ``names[name]`` when `name` is
    first read from `package`."""

    def __getattr__(name: str) -> object:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
