"""``--layers`` globs over qualified names such as ``transformer.h.0.mlp``.

``*`` and ``?`` stay within one dotted level (``transformer.h.*`` is the blocks, not their
submodules), ``**`` crosses any number of levels, none included (``**.mlp`` is every
``mlp``; ``a.**.c`` matches ``a.c`` and ``a.b.c``), ``[seq]`` and ``[!seq]`` are character
classes, and a name without wildcards matches only itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from ndt.errors import NdtError


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    parts, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**.", index):
            parts.append(r"(?:.*\.)?")  # any number of leading levels, none included
            index += 3
            continue
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        if char == "*":
            parts.append(r"[^.]*")
        elif char == "?":
            parts.append(r"[^.]")
        elif char == "[" and "]" in pattern[index + 2 :]:
            end = pattern.index("]", index + 2)
            body = pattern[index + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            parts.append(f"[{'^' if negate else ''}{body}]")
            index = end + 1
            continue
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts))


def layer_matches(name: str, pattern: str) -> bool:
    """Whether a qualified module name matches a ``--layers`` glob (see the module doc)."""
    return _glob(pattern).fullmatch(name) is not None


def match_layers(
    available: Sequence[str],
    patterns: Iterable[str] | str | None,
    *,
    option: str = "layer pattern",
) -> list[str]:
    """The names in `available` that match any of `patterns`, in the order of `available`.

    Args:
        available: Qualified layer names, in model order.
        patterns: Globs (see the module doc) or exact names; None keeps every name.
        option: How the error names a pattern (``--layers``, ``layer pattern``).

    Raises:
        NdtError: if a pattern matches no name (listing a few that exist).
    """
    available = list(available)
    if patterns is None:
        return available
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    for pattern in patterns:
        if not any(layer_matches(name, pattern) for name in available):
            shown = ", ".join(available[:8]) + (", ..." if len(available) > 8 else "")
            raise NdtError(f"{option} {pattern!r} matches no layer; the layers are {shown}")
    return [name for name in available if any(layer_matches(name, p) for p in patterns)]
